/**
 * Reductions over the middle dim of a [outer, len, inner] view (any single axis maps to it).
 * Sums accumulate in float64.
 */
export function sumAxisKernel(x: Float32Array, outer: number, len: number, inner: number, out: Float32Array): void {
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    const base = o * len * inner;
    for (let l = 0; l < len; l++) {
      const row = base + l * inner;
      for (let i = 0; i < inner; i++) acc[i] += x[row + i]!;
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i]!;
  }
}

/** Max along the axis; `argmax` receives the first index of the maximum. NaN propagates. */
export function maxAxisKernel(x: Float32Array, outer: number, len: number, inner: number, out: Float32Array, argmax: Int32Array): void {
  for (let o = 0; o < outer; o++) {
    const base = o * len * inner;
    for (let i = 0; i < inner; i++) {
      let best = -Infinity;
      let bi = 0;
      for (let l = 0; l < len; l++) {
        const v = x[base + l * inner + i]!;
        if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
          best = v;
          bi = l;
        }
      }
      out[o * inner + i] = best;
      argmax[o * inner + i] = bi;
    }
  }
}

/** out[o, l, i] = g[o, i]: the backward of a sum along the middle dim. */
export function repeatAxis(g: Float32Array, outer: number, len: number, inner: number, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let l = 0; l < len; l++) out.set(g.subarray(o * inner, (o + 1) * inner), (o * len + l) * inner);
  }
}

/** out[o, argmax, i] = g[o, i]; other positions stay 0 (out starts zeroed). */
export function maxAxisBackward(g: Float32Array, argmax: Int32Array, outer: number, len: number, inner: number, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) out[(o * len + argmax[o * inner + i]!) * inner + i] = g[o * inner + i]!;
  }
}

export function columnSums(g: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(cols);
  columnSumsRange(g, rows, cols, out, 0, cols);
  return out;
}

/**
 * out[j] = Σ_r g[r, j] for columns [c0, c1), each summed in float64 in row order: a split over
 * columns gives every column the same sum as one thread would.
 */
export function columnSumsRange(g: Float32Array, rows: number, cols: number, out: Float32Array, c0: number, c1: number): void {
  const w = c1 - c0;
  const acc = new Float64Array(w);
  let r = 0;
  // Four rows per sweep, added one after another: the same order as row by row, a quarter of
  // the accumulator traffic.
  for (; r + 4 <= rows; r += 4) {
    const o0 = r * cols + c0;
    const [o1, o2, o3] = [o0 + cols, o0 + 2 * cols, o0 + 3 * cols];
    for (let j = 0; j < w; j++) {
      let s = acc[j]!;
      s += g[o0 + j]!;
      s += g[o1 + j]!;
      s += g[o2 + j]!;
      s += g[o3 + j]!;
      acc[j] = s;
    }
  }
  for (; r < rows; r++) {
    const o = r * cols + c0;
    for (let j = 0; j < w; j++) acc[j] += g[o + j]!;
  }
  for (let j = 0; j < w; j++) out[c0 + j] = acc[j]!;
}

/** acc + Σ x² (float64), continuing a running sum so several buffers add up in order. */
export function sumSquares(x: Float32Array, acc = 0): number {
  let sq = acc;
  for (let i = 0; i < x.length; i++) sq += x[i]! * x[i]!;
  return sq;
}

export function scaleInPlace(x: Float32Array, s: number): void {
  for (let j = 0; j < x.length; j++) x[j] *= s;
}
