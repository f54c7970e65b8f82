/**
 * Sparse × dense kernels over a compressed-row (CSR-like) weight: row i of the weight holds the
 * entries rowPtr[i] .. rowPtr[i+1] with values `val` at input columns `col`. The N:M weight's
 * forward uses its own rows; its input gradient uses the transposed structure.
 *
 * Both kernels register-block over 8 rows of the dense operand, packed transposed so the 8
 * values an entry multiplies sit in one cache line. Every output element is a float64 sum over
 * its entries in storage order, whatever the row split: bitwise identical for any thread count.
 */

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

export const GATHER_ROW_BLOCK = RB;

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

/** Ranks by |w| descending, then index ascending. NaN ranks lowest. */
function magnitude(v: number): number {
  const a = Math.abs(v);
  return a === a ? a : -1;
}

/**
 * Offsets (ascending) of the N kept weights of each group, written to `out` (rows × groups × n),
 * for rows [r0, r1). Selection keeps a sorted top-N list per group: O(M·N), no pattern
 * enumeration; each row is independent, so any row split gives the same offsets.
 */
export function nmKeepOffsets(data: Float32Array, rows: number, cols: number, n: number, m: number, out: Uint8Array, r0 = 0, r1 = rows): void {
  const groups = cols / m;
  const topIdx = new Int32Array(n);
  const topMag = new Float64Array(n);
  const kept = new Uint8Array(m);
  let q = r0 * groups * n;
  for (let r = r0; r < r1; r++) {
    for (let g = 0; g < groups; g++) {
      const base = r * cols + g * m;
      let size = 0;
      for (let j = 0; j < m; j++) {
        const mag = magnitude(data[base + j]!);
        // Strictly greater: an equal magnitude at a higher index never displaces a lower one.
        if (size === n && mag <= topMag[n - 1]!) continue;
        let pos = size < n ? size++ : n - 1;
        while (pos > 0 && topMag[pos - 1]! < mag) {
          topMag[pos] = topMag[pos - 1]!;
          topIdx[pos] = topIdx[pos - 1]!;
          pos--;
        }
        topMag[pos] = mag;
        topIdx[pos] = j;
      }
      // The chosen offsets in ascending order, without allocating per group.
      for (let t = 0; t < n; t++) kept[topIdx[t]!] = 1;
      for (let j = 0; j < m; j++) {
        if (kept[j] === 1) {
          out[q++] = j;
          kept[j] = 0;
        }
      }
    }
  }
}

export function nmGather(dense: Float32Array, n: number, m: number, indices: Uint8Array, values: Float32Array): void {
  for (let e = 0; e < values.length; e++) values[e] = dense[Math.floor(e / n) * m + indices[e]!]!;
}

export function nmScatter(values: Float32Array, n: number, m: number, indices: Uint8Array, dense: Float32Array): void {
  for (let e = 0; e < values.length; e++) dense[Math.floor(e / n) * m + indices[e]!] = values[e]!;
}

export function maskScale(keep: Float32Array, alpha: number): Float32Array {
  return Float32Array.from(keep, (k) => (k === 1 ? 1 : alpha));
}

export function prunedGrad(gw: Float32Array, keep: Float32Array, w: Float32Array, coef: number, lambda: number): void {
  for (let i = 0; i < gw.length; i++) {
    if (keep[i] === 0) gw[i] = coef * gw[i]! + lambda * w[i]!;
  }
}

export function countNonZero(x: Float32Array): number {
  let count = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== 0) count++;
  return count;
}

export function topMagnitudeMask(data: Float32Array, keep: number, out: Float32Array): void {
  const order = Array.from({ length: data.length }, (_v, i) => i);
  order.sort((a, b) => magnitude(data[b]!) - magnitude(data[a]!) || a - b);
  out.fill(0);
  for (let i = 0; i < keep; i++) out[order[i]!] = 1;
}

export interface KeepOffsetsArgs { data: Float32Array; rows: number; cols: number; n: number; m: number; out: Uint8Array }
/** Pool task: the kept offsets of weight rows [r0, r1). */
export function nmKeepOffsetsRows(a: KeepOffsetsArgs, r0: number, r1: number): void {
  nmKeepOffsets(a.data, a.rows, a.cols, a.n, a.m, a.out, r0, r1);
}
