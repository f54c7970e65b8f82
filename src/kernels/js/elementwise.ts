import type { BinaryOp, UnaryOp } from '../backend.js';
import { allocF32Uninit, releaseOwned } from '../memory/storage.js';
import { broadcastStrides, odometerAt, outerRows, sameShape, sizeOf } from '../shape.js';
import { expandKernel, sumToShape } from './movement.js';

function apply(op: BinaryOp, a: Float32Array, ai: number, as: number, b: Float32Array, bi: number, bs: number, out: Float32Array, o: number, n: number): void {
  switch (op) {
    case 'add':
      for (let j = 0; j < n; j++, ai += as, bi += bs) out[o + j] = a[ai]! + b[bi]!;
      break;
    case 'sub':
      for (let j = 0; j < n; j++, ai += as, bi += bs) out[o + j] = a[ai]! - b[bi]!;
      break;
    case 'mul':
      for (let j = 0; j < n; j++, ai += as, bi += bs) out[o + j] = a[ai]! * b[bi]!;
      break;
    case 'div':
      for (let j = 0; j < n; j++, ai += as, bi += bs) out[o + j] = a[ai]! / b[bi]!;
      break;
  }
}

/**
 * `out = a ⊙ b` under numpy broadcasting; `outShape` must be the broadcast shape. `rowStart`/
 * `rowEnd` restrict the work to those outer rows of `outShape` (all dims but the last; for equal
 * shapes, to those elements), for splitting over threads.
 */
export function binaryKernel(op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], out: Float32Array, rowStart = 0, rowEnd = binaryRows(aShape, bShape, outShape)): void {
  if (sameShape(aShape, bShape)) {
    apply(op, a, rowStart, 1, b, rowStart, 1, out, rowStart, rowEnd - rowStart);
    return;
  }
  const nd = outShape.length;
  const sa = broadcastStrides(aShape, outShape);
  const sb = broadcastStrides(bShape, outShape);
  const inner = outShape[nd - 1]!;
  const idx = new Array<number>(nd).fill(0);
  let [pa, pb] = odometerAt(rowStart, outShape, idx, sa, sb) as [number, number];
  for (let r = rowStart, o = rowStart * inner; r < rowEnd; r++, o += inner) {
    apply(op, a, pa, sa[nd - 1]!, b, pb, sb[nd - 1]!, out, o, inner);
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      pa += sa[d]!;
      pb += sb[d]!;
      if (idx[d]! < outShape[d]!) break;
      pa -= sa[d]! * idx[d]!;
      pb -= sb[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
}

/** The range `binaryKernel` splits: elements for equal shapes, else outer rows of `outShape`. */
export function binaryRows(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]): number {
  return sameShape(aShape, bShape) ? sizeOf(outShape) : outerRows(outShape);
}

/** Error function, Abramowitz–Stegun 7.1.26 refined (|error| < 1.5e-7, below float32 epsilon). */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * ax);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-ax * ax);
  return sign * y;
}

const SQRT_2 = Math.SQRT2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_C = Math.sqrt(2 / Math.PI);

/** out = f(x) for a unary op; `param` is pow's exponent (ignored otherwise). */
export function unaryKernel(op: UnaryOp, x: Float32Array, out: Float32Array, param: number): void {
  const n = x.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) out[i] = -x[i]!; break;
    case 'exp': for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]!); break;
    case 'log': for (let i = 0; i < n; i++) out[i] = Math.log(x[i]!); break;
    case 'sqrt': for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!); break;
    case 'tanh': for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]!); break;
    case 'sigmoid':
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        out[i] = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
      }
      break;
    case 'relu': for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v > 0 ? v : 0; } break;
    case 'abs': for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]!); break;
    case 'pow':
      if (param === 2) for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v * v; }
      else for (let i = 0; i < n; i++) out[i] = Math.pow(x[i]!, param);
      break;
    case 'gelu': for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = 0.5 * v * (1 + erf(v / SQRT_2)); } break;
    case 'gelu-tanh':
      for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v))); }
      break;
  }
}

/** gx = g ⊙ f'(x), with y = f(x) as the forward stored it. */
export function unaryBackwardKernel(op: UnaryOp, x: Float32Array, y: Float32Array, g: Float32Array, gx: Float32Array, param: number): void {
  const n = x.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) gx[i] = g[i]! * -1; break;
    case 'exp': for (let i = 0; i < n; i++) gx[i] = g[i]! * y[i]!; break;
    case 'log': for (let i = 0; i < n; i++) gx[i] = g[i]! * (1 / x[i]!); break;
    case 'sqrt': for (let i = 0; i < n; i++) gx[i] = g[i]! * (0.5 / y[i]!); break;
    case 'tanh': for (let i = 0; i < n; i++) { const t = y[i]!; gx[i] = g[i]! * (1 - t * t); } break;
    case 'sigmoid': for (let i = 0; i < n; i++) { const s = y[i]!; gx[i] = g[i]! * (s * (1 - s)); } break;
    case 'relu': for (let i = 0; i < n; i++) gx[i] = g[i]! * (x[i]! > 0 ? 1 : 0); break;
    case 'abs': for (let i = 0; i < n; i++) { const v = x[i]!; gx[i] = g[i]! * (v > 0 ? 1 : v < 0 ? -1 : 0); } break;
    case 'pow':
      if (param === 2) for (let i = 0; i < n; i++) gx[i] = g[i]! * (2 * x[i]!);
      else for (let i = 0; i < n; i++) gx[i] = g[i]! * (param === 0 ? 0 : param * Math.pow(x[i]!, param - 1));
      break;
    case 'gelu':
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        gx[i] = g[i]! * (0.5 * (1 + erf(v / SQRT_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
      }
      break;
    case 'gelu-tanh':
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        const t = Math.tanh(GELU_C * (v + 0.044715 * v * v * v));
        gx[i] = g[i]! * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * v * v));
      }
      break;
  }
}

/**
 * The elementwise kernels `binaryBackward` is composed of, so a backend can hand it threaded
 * ones; each must compute every element exactly as the single-threaded kernel does.
 */
export interface BinaryBackwardParts {
  alloc(n: number): Float32Array;
  unary: typeof unaryKernel;
  mulInto: typeof mulInto;
  binary: typeof binaryKernel;
  divGradB: typeof divGradB;
  expand: typeof expandKernel;
  sumToShape: typeof sumToShape;
}

const SERIAL_PARTS: BinaryBackwardParts = { alloc: allocF32Uninit, unary: unaryKernel, mulInto, binary: binaryKernel, divGradB, expand: expandKernel, sumToShape };

/** gb = −g ⊙ a / (b ⊙ b): the divisor's gradient of a / b, all at the output shape. */
export function divGradB(g: Float32Array, a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = (-g[i]! * a[i]!) / (b[i]! * b[i]!);
}

/** Gradients of `binaryKernel` for g at outShape, each summed back to its operand's shape. */
export function binaryBackwardKernel(op: BinaryOp, g: Float32Array, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], needA: boolean, needB: boolean, parts: BinaryBackwardParts = SERIAL_PARTS): [Float32Array | null, Float32Array | null] {
  let ga: Float32Array | null = null;
  let gb: Float32Array | null = null;
  const n = g.length;
  const view = (t: Float32Array, shape: readonly number[]): Float32Array => {
    if (sameShape(shape, outShape)) return t;
    const out = parts.alloc(n);
    parts.expand(t, shape, outShape, out);
    return out;
  };
  const nShape = [n];
  /** An expanded copy is this function's alone: back to the arena once used (inside the backward sweep). */
  const done = (v: Float32Array, original: Float32Array): void => {
    if (v !== original) releaseOwned(v);
  };
  switch (op) {
    case 'add':
      if (needA) ga = g;
      if (needB) gb = g;
      break;
    case 'sub':
      if (needA) ga = g;
      if (needB) { gb = parts.alloc(n); parts.unary('neg', g, gb, 0); }
      break;
    case 'mul':
      if (needA) { const bv = view(b, bShape); ga = parts.alloc(n); parts.mulInto(g, bv, ga); done(bv, b); }
      if (needB) { const av = view(a, aShape); gb = parts.alloc(n); parts.mulInto(g, av, gb); done(av, a); }
      break;
    case 'div': {
      const bv = view(b, bShape);
      if (needA) { ga = parts.alloc(n); parts.binary('div', g, nShape, bv, nShape, nShape, ga); }
      if (needB) { const av = view(a, aShape); gb = parts.alloc(n); parts.divGradB(g, av, bv, gb); done(av, a); }
      done(bv, b);
      break;
    }
  }
  const reduce = (gv: Float32Array | null, shape: readonly number[]): Float32Array | null => {
    if (gv === null) return null;
    const r = parts.sumToShape(gv, outShape, shape);
    if (r !== gv && gv !== g) releaseOwned(gv);
    return r;
  };
  return [reduce(ga, aShape), reduce(gb, bShape)];
}

export function divScalar(x: Float32Array, d: number, out: Float32Array): void {
  for (let i = 0; i < x.length; i++) out[i] = x[i]! / d;
}

export function whereKernel(cond: Float32Array, a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = cond[i] !== 0 ? a[i]! : b[i]!;
}

export function selectGrad(cond: Float32Array, g: Float32Array, whenSet: boolean, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = (cond[i] !== 0) === whenSet ? g[i]! : 0;
}

export function mulInto(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i]! * b[i]!;
}

export function addInto(dst: Float32Array, src: Float32Array): void {
  for (let j = 0; j < dst.length; j++) dst[j] += src[j]!;
}

export function addRowVector(out: Float32Array, rows: number, cols: number, v: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) out[o + j] += v[j]!;
  }
}
