/** Row-wise softmax / log-softmax / layer-norm kernels over [rows, cols] views. */

/** Numerically stable softmax (log=false) or log-softmax (log=true) of each row. */
export function softmaxRows(x: Float32Array, rows: number, cols: number, out: Float32Array, logSpace: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j]! > mx) mx = x[o + j]!;
    if (mx === -Infinity) mx = 0; // a fully masked row: keep it finite-free of NaN from inf - inf
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[o + j]! - mx);
    if (logSpace) {
      const lse = mx + Math.log(s);
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j]! - lse;
    } else {
      const inv = 1 / s;
      for (let j = 0; j < cols; j++) out[o + j] = Math.exp(x[o + j]! - mx) * inv;
    }
  }
}

/** dx = y ⊙ (dy − Σ dy⊙y) for softmax output y. */
export function softmaxBackwardRows(y: Float32Array, dy: Float32Array, rows: number, cols: number, dx: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dy[o + j]! * y[o + j]!;
    for (let j = 0; j < cols; j++) dx[o + j] = y[o + j]! * (dy[o + j]! - dot);
  }
}

/** dx = dy − softmax ⊙ Σ dy for log-softmax output y. */
export function logSoftmaxBackwardRows(y: Float32Array, dy: Float32Array, rows: number, cols: number, dx: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += dy[o + j]!;
    for (let j = 0; j < cols; j++) dx[o + j] = dy[o + j]! - Math.exp(y[o + j]!) * s;
  }
}

/**
 * y = (x − μ)/σ · γ + β per row, σ = sqrt(var + eps) with the biased variance (PyTorch).
 * Saves mean and 1/σ per row for the backward pass.
 */
export function layerNormRows(x: Float32Array, rows: number, cols: number, gamma: Float32Array | null, beta: Float32Array | null, eps: number, out: Float32Array, meanOut: Float32Array, rstdOut: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[o + j]!;
    const mu = s / cols;
    let v = 0;
    for (let j = 0; j < cols; j++) {
      const d = x[o + j]! - mu;
      v += d * d;
    }
    const rstd = 1 / Math.sqrt(v / cols + eps);
    meanOut[r] = mu;
    rstdOut[r] = rstd;
    for (let j = 0; j < cols; j++) {
      const xh = (x[o + j]! - mu) * rstd;
      out[o + j] = gamma ? xh * gamma[j]! + (beta ? beta[j]! : 0) : xh + (beta ? beta[j]! : 0);
    }
  }
}

/** Input gradient of layer norm; also accumulates dγ, dβ when given. */
export function layerNormBackwardRows(x: Float32Array, dy: Float32Array, rows: number, cols: number, gamma: Float32Array | null, mean: Float32Array, rstd: Float32Array, dx: Float32Array | null, dGamma: Float64Array | null, dBeta: Float64Array | null): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = mean[r]!;
    const rs = rstd[r]!;
    let sumG = 0;
    let sumGX = 0;
    for (let j = 0; j < cols; j++) {
      const xh = (x[o + j]! - mu) * rs;
      const gj = dy[o + j]! * (gamma ? gamma[j]! : 1);
      sumG += gj;
      sumGX += gj * xh;
      if (dGamma) dGamma[j] += dy[o + j]! * xh;
      if (dBeta) dBeta[j] += dy[o + j]!;
    }
    if (dx) {
      const inv = 1 / cols;
      for (let j = 0; j < cols; j++) {
        const xh = (x[o + j]! - mu) * rs;
        const gj = dy[o + j]! * (gamma ? gamma[j]! : 1);
        dx[o + j] = rs * (gj - inv * sumG - xh * inv * sumGX);
      }
    }
  }
}
