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
