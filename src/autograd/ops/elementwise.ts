import { binaryKernel, erf, type BinaryOp } from '../../kernels/elementwise.js';
import { allocF32 } from '../../kernels/storage.js';
import { broadcastShapes, expandKernel, sameShape, sizeOf, sumToShape } from '../../kernels/shape.js';
import { currentScope, report } from '../flops.js';
import { Tensor, result } from '../tensor.js';

export type TensorLike = Tensor | number;

export function toTensor(x: TensorLike): Tensor {
  return typeof x === 'number' ? Tensor.scalar(x) : x;
}

function binary(op: BinaryOp, aIn: TensorLike, bIn: TensorLike): Tensor {
  const a = toTensor(aIn);
  const b = toTensor(bIn);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = allocF32(a.size === 0 || b.size === 0 ? 0 : sizeOf(shape));
  binaryKernel(op, a.data, a.shape, b.data, b.shape, shape, out);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', out.length);
  return result(op, out, shape, [a, b], (g) => {
    report(scope, 'backward-input', 'elementwise', g.length * ((a.requiresGrad ? 1 : 0) + (b.requiresGrad ? 1 : 0)));
    let ga: Float32Array | null = null;
    let gb: Float32Array | null = null;
    const local = (fn: (i: number) => number): Float32Array => {
      const r = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) r[i] = fn(i);
      return r;
    };
    // Operands read at output positions (broadcast views, materialised only when needed).
    const ax = (): Float32Array => expanded(a, shape);
    const bx = (): Float32Array => expanded(b, shape);
    switch (op) {
      case 'add':
        if (a.requiresGrad) ga = g;
        if (b.requiresGrad) gb = g;
        break;
      case 'sub':
        if (a.requiresGrad) ga = g;
        if (b.requiresGrad) gb = local((i) => -g[i]!);
        break;
      case 'mul': {
        if (a.requiresGrad) { const bv = bx(); ga = local((i) => g[i]! * bv[i]!); }
        if (b.requiresGrad) { const av = ax(); gb = local((i) => g[i]! * av[i]!); }
        break;
      }
      case 'div': {
        const bv = bx();
        if (a.requiresGrad) ga = local((i) => g[i]! / bv[i]!);
        if (b.requiresGrad) { const av = ax(); gb = local((i) => (-g[i]! * av[i]!) / (bv[i]! * bv[i]!)); }
        break;
      }
    }
    return [ga && sumToShape(ga, shape, a.shape), gb && sumToShape(gb, shape, b.shape)];
  });
}

function expanded(t: Tensor, shape: readonly number[]): Float32Array {
  if (sameShape(t.shape, shape)) return t.data;
  const out = new Float32Array(sizeOf(shape));
  expandKernel(t.data, t.shape, shape, out);
  return out;
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binary('add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('mul', a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => binary('div', a, b);

/**
 * A unary op from its forward f(x) and derivative f'(x, y) (y = f(x), so ops like exp and
 * tanh reuse their output).
 */
function unary(op: string, x: Tensor, f: (v: number) => number, df: (v: number, y: number) => number): Tensor {
  const n = x.size;
  const out = allocF32(n);
  const xd = x.data;
  for (let i = 0; i < n; i++) out[i] = f(xd[i]!);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', n);
  return result(op, out, x.shape, [x], (g) => {
    report(scope, 'backward-input', 'elementwise', 2 * n);
    const gx = new Float32Array(n);
    for (let i = 0; i < n; i++) gx[i] = g[i]! * df(xd[i]!, out[i]!);
    return [gx];
  });
}

export const neg = (x: Tensor): Tensor => unary('neg', x, (v) => -v, () => -1);
export const exp = (x: Tensor): Tensor => unary('exp', x, Math.exp, (_v, y) => y);
export const log = (x: Tensor): Tensor => unary('log', x, Math.log, (v) => 1 / v);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x, Math.sqrt, (_v, y) => 0.5 / y);
export const tanh = (x: Tensor): Tensor => unary('tanh', x, Math.tanh, (_v, y) => 1 - y * y);
export const sigmoid = (x: Tensor): Tensor =>
  unary('sigmoid', x, (v) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v))), (_v, y) => y * (1 - y));
export const relu = (x: Tensor): Tensor => unary('relu', x, (v) => (v > 0 ? v : 0), (v) => (v > 0 ? 1 : 0));
export const abs = (x: Tensor): Tensor => unary('abs', x, Math.abs, (v) => (v > 0 ? 1 : v < 0 ? -1 : 0));

/** x^p for a scalar exponent p. */
export function pow(x: Tensor, p: number): Tensor {
  if (p === 2) return unary('pow', x, (v) => v * v, (v) => 2 * v);
  return unary('pow', x, (v) => Math.pow(v, p), (v) => (p === 0 ? 0 : p * Math.pow(v, p - 1)));
}

const SQRT_2 = Math.SQRT2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU: exact (erf) by default, like PyTorch; `'tanh'` selects the tanh approximation. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  if (approximate === 'tanh') {
    return unary(
      'gelu',
      x,
      (v) => 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v))),
      (v) => {
        const u = GELU_C * (v + 0.044715 * v * v * v);
        const t = Math.tanh(u);
        return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * v * v);
      },
    );
  }
  return unary(
    'gelu',
    x,
    (v) => 0.5 * v * (1 + erf(v / SQRT_2)),
    (v) => 0.5 * (1 + erf(v / SQRT_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v),
  );
}
