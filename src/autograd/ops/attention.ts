import { ShapeError, ValueError, fmtShape } from '../../errors.js';
import { getBackend } from '../../kernels/backends.js';
import { attentionProbsLength, type AttentionArgs, type AttentionSpec } from '../../kernels/backend.js';
import type { Rng } from '../../kernels/random.js';
import { currentScope, report } from '../flops.js';
import { Tensor, result } from '../tensor-core.js';

export interface AttentionOpOptions {
  heads: number;
  /** Multiplies q·k (1/√headDim for scaled dot-product attention). */
  scale: number;
  /** [batch, tk] with non-zero at padded keys (never attended). */
  keyPaddingMask?: Tensor | null;
  /** Query i attends key j only if j ≤ i + past. */
  causal?: boolean;
  past?: number;
  /** Dropout on the attention probabilities (p in [0, 1)); its rng draws batch·heads·tq·tk uniforms, as dropout() on the [B, H, Tq, Tk] probabilities does. */
  dropout?: { p: number; rng: Rng } | null;
}

/**
 * Multi-head scaled dot-product attention in one op: q [B, Tq, D], k and v [B, Tk, D] (D =
 * heads·headDim, heads side by side in each row) → [B, Tq, D], softmax(scale·QKᵀ + masks)
 * (dropped out) ·V per head. The same function as scaling q, splitting heads, matmul, maskedFill
 * (−1e9), softmax, dropout, matmul and merging heads, with the same FLOP reports, but without
 * the permuted copies and intermediate tensors: the backend's attentionForward / Backward do
 * each head in one pass.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOpOptions): Tensor {
  const { heads, scale } = opts;
  if (q.ndim !== 3 || k.ndim !== 3 || v.ndim !== 3) throw new ShapeError('attention', `q, k, v must be [batch, time, dim], got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`);
  const [b, tq, d] = q.shape as [number, number, number];
  const tk = k.shape[1]!;
  if (k.shape[0] !== b || v.shape[0] !== b || k.shape[2] !== d || v.shape[2] !== d || v.shape[1] !== tk) {
    throw new ShapeError('attention', `k and v must be [${b}, tk, ${d}] like q ${fmtShape(q.shape)}, got ${fmtShape(k.shape)} and ${fmtShape(v.shape)}`);
  }
  if (!Number.isInteger(heads) || heads < 1 || d % heads !== 0) throw new ShapeError('attention', `dim ${d} is not divisible by heads ${heads}`);
  if (!Number.isFinite(scale)) throw new ValueError('attention', `scale must be finite, got ${scale}`);
  const mask = opts.keyPaddingMask ?? null;
  if (mask !== null && mask.size !== b * tk) throw new ShapeError('attention', `key padding mask ${fmtShape(mask.shape)} must be [${b}, ${tk}]`);
  const p = opts.dropout?.p ?? 0;
  if (!(p >= 0 && p < 1)) throw new ValueError('attention', `dropout p must be in [0, 1), got ${p}`);
  const causal = opts.causal ?? false;
  const spec: AttentionSpec = { batch: b, heads, tq, tk, headDim: d / heads, scale, causal, past: opts.past ?? 0 };
  const backend = getBackend();
  const scores = b * heads * tq * tk;
  let keep: Float32Array | null = null;
  if (p > 0) {
    keep = backend.allocUninit(scores);
    backend.dropoutMask(opts.dropout!.rng, p, 1 / (1 - p), keep);
  }
  const args: AttentionArgs = { q: q.data, k: k.data, v: v.data, keyMask: mask === null ? null : mask.data, keep, spec };
  const probs = backend.allocUninit(attentionProbsLength(spec));
  const out = backend.allocUninit(b * tq * d);
  backend.attentionForward(args, probs, out);

  // The FLOPs of the unfused ops, each as that op reports it (docs/architecture.md).
  const product = 2 * scores * spec.headDim;
  const masks = (mask !== null ? 1 : 0) + (causal ? 1 : 0);
  const elementwise = masks * scores + 4 * scores + (keep !== null ? scores : 0);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', q.size);
  report(scope, 'forward', 'product', 2 * product);
  report(scope, 'forward', 'elementwise', elementwise);
  return result('attention', out, [b, tq, d], [q, k, v], (g) => {
    // As the unfused sweep reports: ·V for P (when q or k needs a grad) and for v, QKᵀ for q and k, the row ops for P.
    const throughP = q.requiresGrad || k.requiresGrad;
    const count = (...needs: boolean[]): number => needs.filter(Boolean).length;
    report(scope, 'backward-input', 'elementwise', q.requiresGrad ? q.size : 0);
    report(scope, 'backward-input', 'product', count(throughP, v.requiresGrad, q.requiresGrad, k.requiresGrad) * product);
    report(scope, 'backward-input', 'elementwise', throughP ? elementwise : 0);
    const be = getBackend();
    const dq = be.allocUninit(q.size);
    const dk = be.allocUninit(k.size);
    const dv = be.allocUninit(v.size);
    be.attentionBackward(args, probs, g, dq, dk, dv);
    return [q.requiresGrad ? dq : null, k.requiresGrad ? dk : null, v.requiresGrad ? dv : null];
  });
}
