/** Row-wise softmax / log-softmax / layer-norm kernels over [rows, cols] views. */

import { allocF32Uninit } from '../memory/storage.js';

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

/**
 * Input gradient of layer norm for rows [r0, r1): dx = 1/σ·(g − mean(g) − x̂·mean(g⊙x̂)) with
 * g = dy⊙γ and x̂ = (x − μ)/σ.
 */
export function layerNormInputGradRows(x: Float32Array, dy: Float32Array, cols: number, gamma: Float32Array | null, mean: Float32Array, rstd: Float32Array, dx: Float32Array, r0: number, r1: number): void {
  const inv = 1 / cols;
  // x̂ and g of the row, kept in float64 for the second pass (the same values it would recompute).
  const xs = new Float64Array(cols);
  const gs = new Float64Array(cols);
  for (let r = r0; r < r1; r++) {
    const o = r * cols;
    const mu = mean[r]!;
    const rs = rstd[r]!;
    let sumG = 0;
    let sumGX = 0;
    if (gamma) {
      for (let j = 0; j < cols; j++) {
        const xh = (x[o + j]! - mu) * rs;
        const gj = dy[o + j]! * gamma[j]!;
        xs[j] = xh;
        gs[j] = gj;
        sumG += gj;
        sumGX += gj * xh;
      }
    } else {
      for (let j = 0; j < cols; j++) {
        const xh = (x[o + j]! - mu) * rs;
        const gj = dy[o + j]!;
        xs[j] = xh;
        gs[j] = gj;
        sumG += gj;
        sumGX += gj * xh;
      }
    }
    const meanG = inv * sumG;
    for (let j = 0; j < cols; j++) dx[o + j] = rs * (gs[j]! - meanG - xs[j]! * inv * sumGX);
  }
}

/**
 * dγ[j] = Σ_r dy[r, j]·x̂[r, j] and dβ[j] = Σ_r dy[r, j] for columns [c0, c1), each summed in
 * float64 in row order (so a split over columns matches one thread bitwise).
 */
export function layerNormParamGradCols(x: Float32Array, dy: Float32Array, rows: number, cols: number, mean: Float32Array, rstd: Float32Array, dGamma: Float32Array | null, dBeta: Float32Array | null, c0: number, c1: number): void {
  const w = c1 - c0;
  const accG = dGamma ? new Float64Array(w) : null;
  const accB = dBeta ? new Float64Array(w) : null;
  let r = 0;
  if (accG && accB) {
    // Two rows per sweep, added in row order (the same sums, half the accumulator traffic).
    for (; r + 2 <= rows; r += 2) {
      const o = r * cols + c0;
      const p = o + cols;
      const [mu0, rs0, mu1, rs1] = [mean[r]!, rstd[r]!, mean[r + 1]!, rstd[r + 1]!];
      for (let j = 0; j < w; j++) {
        const d0 = dy[o + j]!;
        const d1 = dy[p + j]!;
        let sg = accG[j]!;
        sg += d0 * ((x[o + j]! - mu0) * rs0);
        sg += d1 * ((x[p + j]! - mu1) * rs1);
        accG[j] = sg;
        let sb = accB[j]!;
        sb += d0;
        sb += d1;
        accB[j] = sb;
      }
    }
  }
  for (; r < rows; r++) {
    const o = r * cols + c0;
    const mu = mean[r]!;
    const rs = rstd[r]!;
    if (accG && accB) {
      for (let j = 0; j < w; j++) {
        const d = dy[o + j]!;
        accG[j] += d * ((x[o + j]! - mu) * rs);
        accB[j] += d;
      }
    } else if (accG) {
      for (let j = 0; j < w; j++) accG[j] += dy[o + j]! * ((x[o + j]! - mu) * rs);
    } else if (accB) {
      for (let j = 0; j < w; j++) accB[j] += dy[o + j]!;
    }
  }
  for (let j = 0; j < w; j++) {
    if (dGamma) dGamma[c0 + j] = accG![j]!;
    if (dBeta) dBeta[c0 + j] = accB![j]!;
  }
}

/** Σ over non-ignored rows of −(1−ε)·logp[t] − ε·mean(logp) (targets already validated). */
export function crossEntropyLoss(logp: Float32Array, targets: Int32Array, rows: number, classes: number, ignore: number, eps: number): { total: number; count: number } {
  const losses = new Float64Array(rows);
  crossEntropyRowLosses(logp, targets, classes, ignore, eps, losses, 0, rows);
  return sumRowLosses(losses, targets, rows, ignore);
}

/** The loss of each non-ignored row r in [r0, r1) into losses[r] (float64; ignored rows untouched). */
export function crossEntropyRowLosses(logp: Float32Array, targets: Int32Array, classes: number, ignore: number, eps: number, losses: Float64Array, r0: number, r1: number): void {
  for (let r = r0; r < r1; r++) {
    const t = targets[r]!;
    if (t === ignore) continue;
    const o = r * classes;
    let sum = 0;
    if (eps > 0) for (let j = 0; j < classes; j++) sum += logp[o + j]!;
    losses[r] = smoothedRowLoss(logp[o + t]!, sum, classes, eps);
  }
}

/** −(1−ε)·logp[t] − ε·mean(logp) of one row, from logp[t] and the row's Σ logp (0 when ε = 0). */
export function smoothedRowLoss(hit: number, sum: number, classes: number, eps: number): number {
  return -(1 - eps) * hit - eps * (sum / classes);
}

/** The float64 row losses that `losses` holds (two f32 words each, so that it can lie in the arena). */
export function rowLossesOf(losses: Float32Array): Float64Array {
  return new Float64Array(losses.buffer, losses.byteOffset, losses.length / 2);
}

/**
 * A loss over `rows` rows: `fill` writes each non-ignored row's float64 loss (rowLossesOf) into
 * the buffer it is given, typically split over the pool; the rows are then added in order here.
 */
export function rowLossTotal(targets: Int32Array, rows: number, ignore: number, fill: (losses: Float32Array) => void): { total: number; count: number } {
  const losses = allocF32Uninit(2 * rows);
  fill(losses);
  return sumRowLosses(rowLossesOf(losses), targets, rows, ignore);
}

/** Total and count of the non-ignored rows' losses, added in row order (the same bits for any split of crossEntropyRowLosses). */
function sumRowLosses(losses: Float64Array, targets: Int32Array, rows: number, ignore: number): { total: number; count: number } {
  let total = 0;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    if (targets[r] === ignore) continue;
    total += losses[r]!;
    count++;
  }
  return { total, count };
}

/** gx = (softmax − smoothed one-hot)·scale on non-ignored rows; ignored rows are set to 0. */
export function crossEntropyBackward(logp: Float32Array, targets: Int32Array, rows: number, classes: number, ignore: number, eps: number, scale: number, gx: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    const o = r * classes;
    if (t === ignore) {
      gx.fill(0, o, o + classes);
      continue;
    }
    for (let j = 0; j < classes; j++) gx[o + j] = (Math.exp(logp[o + j]!) - eps / classes) * scale;
    gx[o + t] -= (1 - eps) * scale;
  }
}
