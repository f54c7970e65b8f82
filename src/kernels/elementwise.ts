import { broadcastStrides, sameShape, sizeOf } from './shape.js';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

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

/** `out = a ⊙ b` under numpy broadcasting; `outShape` must be the broadcast shape. */
export function binaryKernel(op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], out: Float32Array): void {
  if (sameShape(aShape, bShape)) {
    apply(op, a, 0, 1, b, 0, 1, out, 0, out.length);
    return;
  }
  const nd = outShape.length;
  const sa = broadcastStrides(aShape, outShape);
  const sb = broadcastStrides(bShape, outShape);
  const inner = outShape[nd - 1]!;
  const outer = inner === 0 ? 0 : sizeOf(outShape) / inner;
  const idx = new Array<number>(nd).fill(0);
  let pa = 0;
  let pb = 0;
  for (let r = 0, o = 0; r < outer; r++, o += inner) {
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

/** Error function, Abramowitz–Stegun 7.1.26 refined (|error| < 1.5e-7, below float32 epsilon). */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * ax);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-ax * ax);
  return sign * y;
}
