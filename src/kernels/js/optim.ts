/** In-place optimizer updates (PyTorch's formulations), one parameter buffer at a time. */
import type { AdamParams, SgdParams } from '../backend.js';

export function sgdUpdate(w: Float32Array, g: Float32Array, v: Float32Array, p: SgdParams): void {
  const { lr, momentum: mu, weightDecay: wd, nesterov } = p;
  for (let j = 0; j < w.length; j++) {
    const gj = g[j]! + wd * w[j]!;
    v[j] = mu * v[j]! + gj;
    w[j] = w[j]! - lr * (nesterov ? gj + mu * v[j]! : mu > 0 ? v[j]! : gj);
  }
}

export function adamUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, p: AdamParams): void {
  const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, decoupled, bc1, bc2 } = p;
  for (let j = 0; j < w.length; j++) {
    let gj = g[j]!;
    if (wd !== 0) {
      if (decoupled) w[j] = w[j]! * (1 - lr * wd);
      else gj += wd * w[j]!;
    }
    m[j] = b1 * m[j]! + (1 - b1) * gj;
    v[j] = b2 * v[j]! + (1 - b2) * gj * gj;
    const mHat = m[j]! / bc1;
    const vHat = v[j]! / bc2;
    w[j] = w[j]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
}
