import { ShapeError, fmtShape } from '../../errors.js';
import { getBackend } from '../../kernels/backends.js';
import { broadcastShapes, normAxis, sameShape, sizeOf } from '../../kernels/shape.js';
import { Tensor, result } from '../tensor-core.js';

/** A view with a new shape (no copy). One dim may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const neg = s.filter((d) => d === -1).length;
  if (neg > 1) throw new ShapeError('reshape', `at most one dim may be -1, got ${fmtShape(shape)}`);
  if (neg === 1) {
    const known = s.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    if (known === 0 || x.size % known !== 0) throw new ShapeError('reshape', `cannot reshape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    s[s.indexOf(-1)] = x.size / known;
  }
  if (s.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(s) !== x.size) {
    throw new ShapeError('reshape', `cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`);
  }
  return result('reshape', x.data, s, [x], (g) => [g]);
}

/** Reorders dims: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const nd = x.ndim;
  const p = perm.map((a) => normAxis('permute', a, nd));
  if (p.length !== nd || new Set(p).size !== nd) {
    throw new ShapeError('permute', `permutation ${fmtShape(perm)} is not a permutation of ${nd} dims for shape ${fmtShape(x.shape)}`);
  }
  const outShape = p.map((a) => x.shape[a]!);
  const out = getBackend().allocUninit(x.size);
  getBackend().permute(x.data, x.shape, p, out);
  const inv = new Array<number>(nd);
  p.forEach((a, i) => (inv[a] = i));
  return result('permute', out, outShape, [x], (g) => {
    const gx = getBackend().allocUninit(x.size);
    getBackend().permute(g, outShape, inv, gx);
    return [gx];
  });
}

/** Swaps two dims (default: the last two). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const nd = x.ndim;
  const a = normAxis('transpose', dim0, nd);
  const b = normAxis('transpose', dim1, nd);
  const perm = [...Array(nd).keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** Elements [start, end) along `axis` (negative indices count from the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const ax = normAxis('slice', axis, x.ndim);
  const len = x.shape[ax]!;
  let s = start < 0 ? start + len : start;
  let e = end === undefined ? len : end < 0 ? end + len : end;
  if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > len || s > e) {
    throw new ShapeError('slice', `range [${start}, ${end ?? len}) is invalid for axis ${axis} of length ${len} (shape ${fmtShape(x.shape)})`);
  }
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1));
  const outShape = [...x.shape];
  outShape[ax] = e - s;
  const w = (e - s) * inner;
  const out = getBackend().allocUninit(outer * w);
  getBackend().copyBlocks(x.data, s * inner, len * inner, out, 0, w, w, outer);
  return result('slice', out, outShape, [x], (g) => {
    const gx = getBackend().alloc(x.size);
    getBackend().copyBlocks(g, 0, w, gx, s * inner, len * inner, w, outer);
    return [gx];
  });
}

/** Joins tensors along an existing axis; all other dims must agree. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat', 'needs at least one tensor');
  const first = tensors[0]!;
  const ax = normAxis('concat', axis, first.ndim);
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError('concat', `shapes ${tensors.map((u) => fmtShape(u.shape)).join(', ')} differ outside axis ${axis}`);
    }
  }
  const outer = sizeOf(first.shape.slice(0, ax));
  const inner = sizeOf(first.shape.slice(ax + 1));
  const total = tensors.reduce((s, t) => s + t.shape[ax]!, 0);
  const outShape = [...first.shape];
  outShape[ax] = total;
  const backend = getBackend();
  const out = backend.allocUninit(outer * total * inner);
  const row = total * inner;
  let off = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const w = t.shape[ax]! * inner;
    offsets.push(off);
    backend.copyBlocks(t.data, 0, w, out, off, row, w, outer);
    off += w;
  }
  return result('concat', out, outShape, [...tensors], (g) =>
    tensors.map((t, k) => {
      if (!t.requiresGrad) return null;
      const w = t.shape[ax]! * inner;
      const gt = getBackend().allocUninit(t.size);
      getBackend().copyBlocks(g, offsets[k]!, row, gt, 0, w, w, outer);
      return gt;
    }),
  );
}

/** Inserts a size-1 dim at `axis`. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.ndim + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

/** Removes a size-1 dim at `axis`. */
export function squeeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('squeeze', axis, x.ndim);
  if (x.shape[a] !== 1) throw new ShapeError('squeeze', `dim ${axis} of shape ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`);
  const s = [...x.shape];
  s.splice(a, 1);
  return reshape(x, s);
}

/** Joins same-shaped tensors along a new axis. */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('stack', 'needs at least one tensor');
  const s0 = tensors[0]!.shape;
  for (const t of tensors) {
    if (!sameShape(t.shape, s0)) throw new ShapeError('stack', `all tensors must have the same shape, got ${tensors.map((u) => fmtShape(u.shape)).join(', ')}`);
  }
  const a = normAxis('stack', axis, s0.length + 1);
  return concat(tensors.map((t) => unsqueeze(t, a)), a);
}

/** Broadcasts to `shape` (materialised copy; the gradient sums back). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const out = broadcastShapes('broadcastTo', x.shape, shape);
  if (!sameShape(out, shape)) throw new ShapeError('broadcastTo', `cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  if (sameShape(x.shape, shape)) return x;
  const data = getBackend().allocUninit(sizeOf(shape));
  getBackend().expand(x.data, x.shape, shape, data);
  return result('broadcastTo', data, shape, [x], (g) => [getBackend().sumToShape(g, shape, x.shape)]);
}

/** Alias of `broadcastTo` (PyTorch's name). */
export const expand = broadcastTo;
