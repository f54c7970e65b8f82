import { ShapeError, fmtShape } from '../../errors.js';
import { getBackend } from '../../kernels/backends.js';
import { normAxis, sizeOf } from '../../kernels/shape.js';
import { currentScope, report } from '../flops.js';
import { Tensor, result } from '../tensor-core.js';
import { reshape } from './shape.js';

/**
 * The axes a reduction runs over: one axis, a list (negative counts from the end), or undefined for all.
 */
export type Axes = number | readonly number[] | undefined;

function normAxes(op: string, x: Tensor, axes: Axes): number[] {
  if (axes === undefined) return [...Array(x.ndim).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const norm = list.map((a) => normAxis(op, a, x.ndim));
  if (new Set(norm).size !== norm.length) throw new ShapeError(op, `repeated axis in ${fmtShape(list)}`);
  return norm.sort((a, b) => b - a);
}

function split(x: Tensor, axis: number): [number, number, number] {
  return [sizeOf(x.shape.slice(0, axis)), x.shape[axis]!, sizeOf(x.shape.slice(axis + 1))];
}

function sumOne(x: Tensor, axis: number): Tensor {
  const [outer, len, inner] = split(x, axis);
  const out = getBackend().alloc(outer * inner);
  getBackend().sumAxis(x.data, outer, len, inner, out);
  // len − 1 additions per output element: a full reduction of n elements costs n − 1.
  report(currentScope(), 'forward', 'elementwise', outer * inner * Math.max(0, len - 1));
  const shape = [...x.shape];
  shape[axis] = 1;
  return result('sum', out, shape, [x], (g) => {
    const gx = getBackend().alloc(x.size);
    getBackend().repeatAxis(g, outer, len, inner, gx);
    return [gx];
  });
}

function finish(x: Tensor, y: Tensor, axes: number[], keepdim: boolean): Tensor {
  if (keepdim) return y;
  return reshape(y, x.shape.filter((_d, i) => !axes.includes(i)));
}

/** Sum over `axes` (all by default). */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('sum', x, axes);
  let y = x;
  for (const a of ax) y = sumOne(y, a);
  if (ax.length === 0) y = reshape(x, x.shape);
  return finish(x, y, ax, keepdim);
}

/** Mean over `axes` (all by default). */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('mean', x, axes);
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  if (count === 0) throw new ShapeError('mean', `mean over an empty axis of shape ${fmtShape(x.shape)}`);
  const s = sum(x, ax, keepdim);
  const out = getBackend().alloc(s.size);
  getBackend().divScalar(s.data, count, out);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', out.length);
  return result('mean', out, s.shape, [s], (g) => {
    report(scope, 'backward-input', 'elementwise', g.length);
    const gs = getBackend().alloc(g.length);
    getBackend().divScalar(g, count, gs);
    return [gs];
  });
}

function maxOne(x: Tensor, axis: number): Tensor {
  const [outer, len, inner] = split(x, axis);
  if (len === 0) throw new ShapeError('max', `max over an empty axis ${axis} of shape ${fmtShape(x.shape)}`);
  const out = getBackend().alloc(outer * inner);
  const arg = new Int32Array(outer * inner);
  getBackend().maxAxis(x.data, outer, len, inner, out, arg);
  report(currentScope(), 'forward', 'elementwise', x.size);
  const shape = [...x.shape];
  shape[axis] = 1;
  return result('max', out, shape, [x], (g) => {
    const gx = getBackend().alloc(x.size);
    getBackend().maxAxisBackward(g, arg, outer, len, inner, gx);
    return [gx];
  });
}

/** Max over `axes` (all by default); the gradient goes to the first maximal element. */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('max', x, axes);
  let y = x;
  for (const a of ax) y = maxOne(y, a);
  return finish(x, y, ax, keepdim);
}

/** Index of the maximum along one axis (not differentiable). */
export function argmax(x: Tensor, axis = -1): Int32Array {
  const a = normAxis('argmax', axis, x.ndim);
  const [outer, len, inner] = split(x, a);
  const out = getBackend().alloc(outer * inner);
  const arg = new Int32Array(outer * inner);
  getBackend().maxAxis(x.data, outer, len, inner, out, arg);
  return arg;
}
