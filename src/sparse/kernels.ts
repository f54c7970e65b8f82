/**
 * Sparse × dense kernels over a compressed-row (CSR-like) weight: row i of the weight holds the
 * entries rowPtr[i] .. rowPtr[i+1] with values `val` at input columns `col`. The N:M weight's
 * forward uses its own rows; its input gradient uses the transposed structure.
 *
 * Both kernels register-block over 8 rows of the dense operand, packed transposed so the 8
 * values an entry multiplies sit in one cache line. Every output element is a float64 sum over
 * its entries in storage order, whatever the row split: bitwise identical for any thread count.
 */
import { allocF32 } from '../kernels/storage.js';
import { defineTask, parallelRows } from '../kernels/threads/pool.js';

const RB = 8;
let xPack = new Float64Array(RB * 1024);

export interface GatherArgs {
  /** Dense operand [rows, inDim] (row-major). */
  x: Float32Array;
  inDim: number;
  rowPtr: Int32Array;
  col: Int32Array;
  val: Float32Array;
  /** Output [rows, outDim]; outDim = rowPtr.length − 1. */
  y: Float32Array;
  bias: Float32Array | null;
}

/** y[r, i] = Σ_e val[e]·x[r, col[e]] (+ bias[i]) for rows r in [r0, r1). */
export function sparseGatherRows(args: GatherArgs, r0: number, r1: number): void {
  const { x, inDim, rowPtr, col, val, y, bias } = args;
  const outDim = rowPtr.length - 1;
  if (xPack.length < RB * inDim) xPack = new Float64Array(RB * inDim);
  const xt = xPack;
  for (let rb = r0; rb < r1; rb += RB) {
    const nr = Math.min(RB, r1 - rb);
    for (let rr = 0; rr < RB; rr++) {
      if (rr < nr) {
        const off = (rb + rr) * inDim;
        for (let c = 0; c < inDim; c++) xt[c * RB + rr] = x[off + c]!;
      } else for (let c = 0; c < inDim; c++) xt[c * RB + rr] = 0;
    }
    const yBase = rb * outDim;
    for (let i = 0; i < outDim; i++) {
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      for (let e = rowPtr[i]!, end = rowPtr[i + 1]!; e < end; e++) {
        const v = val[e]!;
        const p = col[e]! * RB;
        a0 += v * xt[p]!; a1 += v * xt[p + 1]!; a2 += v * xt[p + 2]!; a3 += v * xt[p + 3]!;
        a4 += v * xt[p + 4]!; a5 += v * xt[p + 5]!; a6 += v * xt[p + 6]!; a7 += v * xt[p + 7]!;
      }
      const b = bias === null ? 0 : bias[i]!;
      const o = yBase + i;
      if (nr === RB) {
        y[o] = a0 + b; y[o + outDim] = a1 + b; y[o + 2 * outDim] = a2 + b; y[o + 3 * outDim] = a3 + b;
        y[o + 4 * outDim] = a4 + b; y[o + 5 * outDim] = a5 + b; y[o + 6 * outDim] = a6 + b; y[o + 7 * outDim] = a7 + b;
      } else {
        const acc = [a0, a1, a2, a3, a4, a5, a6, a7];
        for (let rr = 0; rr < nr; rr++) y[o + rr * outDim] = acc[rr]! + b;
      }
    }
  }
}

const GATHER = defineTask<GatherArgs>(import.meta.url, 'sparseGatherRows', sparseGatherRows);

/** Threaded `sparseGatherRows` over all `rows`. */
export function sparseGather(args: GatherArgs, rows: number): void {
  parallelRows(GATHER, args, rows, RB, 2 * rows * args.val.length);
}

export interface KeptGradArgs {
  /** dY transposed: [outDim, rows]. */
  dyT: Float32Array;
  /** X transposed: [inDim, rows]. */
  xT: Float32Array;
  rows: number;
  rowPtr: Int32Array;
  col: Int32Array;
  /** Output, one gradient per stored entry (compressed layout). */
  grad: Float32Array;
}

/** grad[e] = Σ_r dY[r, i]·X[r, col[e]] for the entries of weight rows i in [i0, i1). */
export function keptGradRows(args: KeptGradArgs, i0: number, i1: number): void {
  const { dyT, xT, rows, rowPtr, col, grad } = args;
  for (let i = i0; i < i1; i++) {
    const d = i * rows;
    const end = rowPtr[i + 1]!;
    let e = rowPtr[i]!;
    for (; e + 4 <= end; e += 4) {
      const c0 = col[e]! * rows, c1 = col[e + 1]! * rows, c2 = col[e + 2]! * rows, c3 = col[e + 3]! * rows;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let r = 0; r < rows; r++) {
        const g = dyT[d + r]!;
        s0 += g * xT[c0 + r]!; s1 += g * xT[c1 + r]!; s2 += g * xT[c2 + r]!; s3 += g * xT[c3 + r]!;
      }
      grad[e] = s0; grad[e + 1] = s1; grad[e + 2] = s2; grad[e + 3] = s3;
    }
    for (; e < end; e++) {
      const c = col[e]! * rows;
      let s = 0;
      for (let r = 0; r < rows; r++) s += dyT[d + r]! * xT[c + r]!;
      grad[e] = s;
    }
  }
}

const KEPT_GRAD = defineTask<KeptGradArgs>(import.meta.url, 'keptGradRows', keptGradRows);

/** Threaded `keptGradRows` over all weight rows. */
export function keptGrad(args: KeptGradArgs): void {
  const outDim = args.rowPtr.length - 1;
  parallelRows(KEPT_GRAD, args, outDim, 1, 2 * args.rows * args.col.length);
}

export interface TransposeArgs {
  src: Float32Array;
  rows: number;
  cols: number;
  dst: Float32Array;
}

/** dst[c, r] = src[r, c] for destination rows c in [c0, c1), in 32×32 tiles. */
export function transposeRows(args: TransposeArgs, c0: number, c1: number): void {
  const { src, rows, cols, dst } = args;
  const T = 32;
  for (let cb = c0; cb < c1; cb += T) {
    const ce = Math.min(cb + T, c1);
    for (let rb = 0; rb < rows; rb += T) {
      const re = Math.min(rb + T, rows);
      for (let c = cb; c < ce; c++) for (let r = rb; r < re; r++) dst[c * rows + r] = src[r * cols + c]!;
    }
  }
}

const TRANSPOSE = defineTask<TransposeArgs>(import.meta.url, 'transposeRows', transposeRows);

/** Threaded out-of-place transpose of a [rows, cols] matrix into dst [cols, rows]. */
export function transposeInto(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  parallelRows(TRANSPOSE, { src, rows, cols, dst }, cols, 32, 64 * rows * cols);
}

/** dX [rows, inDim] = dY [rows, outDim] · W, through W's transposed CSR (`t`). */
export function sparseInputGrad(dy: Float32Array, rows: number, outDim: number, inDim: number, t: { rowPtr: Int32Array; col: Int32Array; val: Float32Array }): Float32Array {
  const dx = allocF32(rows * inDim);
  sparseGather({ x: dy, inDim: outDim, rowPtr: t.rowPtr, col: t.col, val: t.val, y: dx, bias: null }, rows);
  return dx;
}

/** Weight gradient at the kept entries only (compressed layout): dYᵀ·X evaluated where W keeps a weight. */
export function keptWeightGrad(dy: Float32Array, x: Float32Array, rows: number, inDim: number, outDim: number, csr: { rowPtr: Int32Array; col: Int32Array }): Float32Array {
  const dyT = allocF32(rows * outDim);
  const xT = allocF32(rows * inDim);
  transposeInto(dy, rows, outDim, dyT);
  transposeInto(x, rows, inDim, xT);
  const grad = allocF32(csr.col.length);
  keptGrad({ dyT, xT, rows, rowPtr: csr.rowPtr, col: csr.col, grad });
  return grad;
}
