/**
 * The two Linear ops a sparse layer runs, each reporting FLOPs by the RECIPES.md rules.
 *
 * - `maskedLinear`: dense execution with W̃ = W ⊙ s (s = E + α·Ē), used while α > 0 and for
 *   unstructured masks. dW = (dYᵀX) ⊙ (E + c·Ē) (+ λ·Ē⊙W), c the pruned-gradient coefficient.
 * - `nmLatentLinear`: the hard N:M phases. Forward and dX run the compressed kernels; dW is the
 *   kept-position kernel scattered into the dense latent gradient when pruned weights get none,
 *   else the dense product masked as above.
 */
import { currentScope, report } from '../autograd/flops.js';
import { Tensor, result } from '../autograd/tensor.js';
import { addRowVector, columnSums } from '../autograd/ops/matmul.js';
import { gemm } from '../kernels/gemm.js';
import { allocF32 } from '../kernels/storage.js';
import { keptWeightGrad, sparseGather, sparseInputGrad } from './kernels.js';
import type { NMSparseTensor } from './nm-tensor.js';

export interface PrunedGradRule {
  /** Pruned weights' gradient coefficient c (0, α or 1). */
  coef: number;
  /** SR-STE: λ added as λ·W on pruned weights. */
  lambda: number;
  /** Forward density ρ_t (FLOP rule). */
  density: number;
  /** dW counted dense (pruned weights receive a gradient). */
  denseWeightGrad: boolean;
}

function weightGradMasked(g: Float32Array, x: Float32Array, w: Float32Array, keep: Float32Array, rows: number, inF: number, outF: number, rule: PrunedGradRule): Float32Array {
  const gw = allocF32(outF * inF);
  gemm(g, 0, x, 0, gw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false });
  const { coef, lambda } = rule;
  for (let i = 0; i < gw.length; i++) {
    if (keep[i] === 0) gw[i] = coef * gw[i]! + lambda * w[i]!;
  }
  return gw;
}

/**
 * Wraps a sparse layer's forward output `y` as a tape node: reports FLOPs by the RECIPES.md
 * rules and routes the input, weight and bias gradients.
 */
function recordLinear(op: string, x: Tensor, w: Tensor, bias: Tensor | null, y: Float32Array, rule: PrunedGradRule, inputGrad: (g: Float32Array) => Float32Array, weightGrad: (g: Float32Array) => Float32Array): Tensor {
  const [outF, inF] = w.shape as [number, number];
  const rows = x.size / inF;
  const s = currentScope();
  const full = 2 * rows * inF * outF;
  report(s, 'forward', 'linear', rule.density * full, full);
  if (bias) report(s, 'forward', 'elementwise', rows * outF);
  const inputs = bias ? [x, w, bias] : [x, w];
  return result(op, y, [...x.shape.slice(0, -1), outF], inputs, (g) => {
    const grads: (Float32Array | null)[] = [null, null, null];
    if (x.requiresGrad) {
      grads[0] = inputGrad(g);
      report(s, 'backward-input', 'linear', rule.density * full, full);
    }
    if (w.requiresGrad) {
      grads[1] = weightGrad(g);
      report(s, 'backward-weight', 'linear', rule.denseWeightGrad ? full : rule.density * full, full);
    }
    if (bias?.requiresGrad) {
      grads[2] = columnSums(g, rows, outF);
      report(s, 'backward-weight', 'elementwise', rows * outF);
    }
    return bias ? grads : grads.slice(0, 2);
  });
}

/** y = x·(W ⊙ scale)ᵀ + b. `keep` is the 0/1 mask E; `scale` = E + α·Ē. */
export function maskedLinear(x: Tensor, w: Tensor, bias: Tensor | null, keep: Float32Array, scale: Float32Array, rule: PrunedGradRule, op = 'maskedLinear'): Tensor {
  const [outF, inF] = w.shape as [number, number];
  const rows = x.size / inF;
  const wt = allocF32(w.size);
  for (let i = 0; i < wt.length; i++) wt[i] = w.data[i]! * scale[i]!;
  const y = allocF32(rows * outF);
  gemm(x.data, 0, wt, 0, y, 0, { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false });
  if (bias) addRowVector(y, rows, outF, bias.data);
  return recordLinear(op, x, w, bias, y, rule,
    (g) => {
      const gx = allocF32(x.size);
      gemm(g, 0, wt, 0, gx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false });
      return gx;
    },
    (g) => weightGradMasked(g, x.data, w.data, keep, rows, inF, outF, rule));
}

/**
 * Hard N:M Linear over dense latent weights `w`: `pattern` fixes the kept positions (its values
 * are refreshed from `w` here); `keep` is the same mask densely.
 */
export function nmLatentLinear(x: Tensor, w: Tensor, bias: Tensor | null, pattern: NMSparseTensor, keep: Float32Array, rule: PrunedGradRule, op = 'nmLatentLinear'): Tensor {
  const [outF, inF] = w.shape as [number, number];
  const rows = x.size / inF;
  const { values: vals, n, m, indices } = pattern;
  for (let e = 0; e < vals.length; e++) vals[e] = w.data[Math.floor(e / n) * m + indices[e]!]!;
  const csr = pattern.rowsCsr();
  const y = allocF32(rows * outF);
  sparseGather({ x: x.data, inDim: inF, rowPtr: csr.rowPtr, col: csr.col, val: vals, y, bias: bias ? bias.data : null }, rows);
  return recordLinear(op, x, w, bias, y, rule,
    (g) => sparseInputGrad(g, rows, outF, inF, pattern.transposedCsr(vals)),
    (g) => {
      if (rule.coef !== 0 || rule.lambda !== 0) return weightGradMasked(g, x.data, w.data, keep, rows, inF, outF, rule);
      const kept = keptWeightGrad(g, x.data, rows, inF, outF, csr);
      const gw = allocF32(w.size);
      for (let e = 0; e < kept.length; e++) gw[Math.floor(e / n) * m + indices[e]!] = kept[e]!;
      return gw;
    });
}
