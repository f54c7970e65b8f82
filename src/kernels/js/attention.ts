/**
 * Fused multi-head attention, the reference kernels (AttentionSpec in ../backend.ts): per head,
 * scores, masks, softmax, dropout and the ·V product in one pass, reading q, k, v where the
 * projections wrote them (token-major, heads side by side) and writing the output there too, so
 * no head is ever permuted into a tensor of its own. Sums in float64, Math.exp. Head ranges
 * [h0, h1) of batch·heads are independent (each writes its own columns of out, dq, dk, dv), so
 * results are bitwise identical for any split over threads.
 */
import { attentionKeyStride, type AttentionArgs } from '../backend.js';

/** The score maskedFill writes at a masked key (a fully masked row becomes uniform, as there). */
export const ATTENTION_MASKED = -1e9;

export interface AttentionForwardArgs extends AttentionArgs {
  probs: Float32Array;
  out: Float32Array;
}

export interface AttentionBackwardArgs extends AttentionArgs {
  probs: Float32Array;
  dOut: Float32Array;
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
}

/** Whether key j is masked for query i of batch b. */
function maskedAt(a: AttentionArgs, b: number, i: number, j: number): boolean {
  const { keyMask, spec } = a;
  return (keyMask !== null && keyMask[b * spec.tk + j] !== 0) || (spec.causal && j > i + spec.past);
}

/** Forward of heads [h0, h1) (head index = b·heads + h). */
export function attentionForwardHeads(a: AttentionForwardArgs, h0: number, h1: number): void {
  const { q, k, v, keep, probs, out, spec } = a;
  const { heads, tq, tk, headDim: dh, scale } = spec;
  const d = heads * dh;
  const kp = attentionKeyStride(tk);
  const s = new Float64Array(tk);
  const acc = new Float64Array(dh);
  for (let hd = h0; hd < h1; hd++) {
    const b = Math.floor(hd / heads);
    const col = (hd % heads) * dh;
    for (let i = 0; i < tq; i++) {
      const qi = (b * tq + i) * d + col;
      let max = -Infinity;
      for (let j = 0; j < tk; j++) {
        let x = ATTENTION_MASKED;
        if (!maskedAt(a, b, i, j)) {
          const kj = (b * tk + j) * d + col;
          let dot = 0;
          for (let c = 0; c < dh; c++) dot += q[qi + c]! * k[kj + c]!;
          x = Math.fround(scale * dot);
        }
        s[j] = x;
        if (x > max) max = x;
      }
      let sum = 0;
      for (let j = 0; j < tk; j++) {
        s[j] = Math.exp(s[j]! - max);
        sum += s[j]!;
      }
      const row = (hd * tq + i) * kp;
      for (let j = 0; j < tk; j++) probs[row + j] = s[j]! / sum;
      for (let j = tk; j < kp; j++) probs[row + j] = 0;
      acc.fill(0);
      for (let j = 0; j < tk; j++) {
        const w = keep === null ? probs[row + j]! : probs[row + j]! * keep[(hd * tq + i) * tk + j]!;
        if (w === 0) continue;
        const vj = (b * tk + j) * d + col;
        for (let c = 0; c < dh; c++) acc[c] += w * v[vj + c]!;
      }
      for (let c = 0; c < dh; c++) out[qi + c] = acc[c]!;
    }
  }
}

/** Backward of heads [h0, h1): dq, dk, dv of those heads' columns. */
export function attentionBackwardHeads(a: AttentionBackwardArgs, h0: number, h1: number): void {
  const { q, k, v, keep, probs, dOut, dq, dk, dv, spec } = a;
  const { heads, tq, tk, headDim: dh, scale } = spec;
  const d = heads * dh;
  const kp = attentionKeyStride(tk);
  const ds = new Float64Array(tq * tk);
  const acc = new Float64Array(dh);
  for (let hd = h0; hd < h1; hd++) {
    const b = Math.floor(hd / heads);
    const col = (hd % heads) * dh;
    const keepAt = (i: number, j: number): number => (keep === null ? 1 : keep[(hd * tq + i) * tk + j]!);
    // dS = P ⊙ (dP − Σ_j P·dP) with dP = (dOut·Vᵀ) ⊙ keep; none through masked scores.
    for (let i = 0; i < tq; i++) {
      const oi = (b * tq + i) * d + col;
      const row = (hd * tq + i) * kp;
      let r = 0;
      for (let j = 0; j < tk; j++) {
        const vj = (b * tk + j) * d + col;
        let dot = 0;
        for (let c = 0; c < dh; c++) dot += dOut[oi + c]! * v[vj + c]!;
        const dp = dot * keepAt(i, j);
        ds[i * tk + j] = dp;
        r += probs[row + j]! * dp;
      }
      for (let j = 0; j < tk; j++) ds[i * tk + j] = maskedAt(a, b, i, j) ? 0 : scale * probs[row + j]! * (ds[i * tk + j]! - r);
    }
    for (let i = 0; i < tq; i++) {
      acc.fill(0);
      for (let j = 0; j < tk; j++) {
        const w = ds[i * tk + j]!;
        const kj = (b * tk + j) * d + col;
        for (let c = 0; c < dh; c++) acc[c] += w * k[kj + c]!;
      }
      const qi = (b * tq + i) * d + col;
      for (let c = 0; c < dh; c++) dq[qi + c] = acc[c]!;
    }
    for (let j = 0; j < tk; j++) {
      const kj = (b * tk + j) * d + col;
      acc.fill(0);
      for (let i = 0; i < tq; i++) {
        const w = ds[i * tk + j]!;
        const qi = (b * tq + i) * d + col;
        for (let c = 0; c < dh; c++) acc[c] += w * q[qi + c]!;
      }
      for (let c = 0; c < dh; c++) dk[kj + c] = acc[c]!;
      acc.fill(0);
      for (let i = 0; i < tq; i++) {
        const w = probs[(hd * tq + i) * kp + j]! * keepAt(i, j);
        const oi = (b * tq + i) * d + col;
        for (let c = 0; c < dh; c++) acc[c] += w * dOut[oi + c]!;
      }
      for (let c = 0; c < dh; c++) dv[kj + c] = acc[c]!;
    }
  }
}
