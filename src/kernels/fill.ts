/** Constant tensors models build from their shapes: attention masks and position encodings. */

/** [tq, tk] with 1 where key j lies in the future of query i (j > i + past). */
export function causalMaskFill(tq: number, tk: number, past: number, out: Float32Array): void {
  for (let i = 0; i < tq; i++) for (let j = i + past + 1; j < tk; j++) out[i * tk + j] = 1;
}

/** 1 where ids[i] is the padding id. */
export function equalsMaskFill(ids: ArrayLike<number>, value: number, out: Float32Array): void {
  for (let i = 0; i < ids.length; i++) if (ids[i] === value) out[i] = 1;
}

/** Sinusoidal position encodings [maxLen, dim] (Vaswani et al.). */
export function sinusoidalFill(maxLen: number, dim: number, out: Float32Array): void {
  for (let pos = 0; pos < maxLen; pos++) {
    for (let i = 0; i < dim / 2; i++) {
      const angle = pos / Math.pow(10000, (2 * i) / dim);
      out[pos * dim + 2 * i] = Math.sin(angle);
      out[pos * dim + 2 * i + 1] = Math.cos(angle);
    }
  }
}
