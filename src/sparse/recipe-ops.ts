/**
 * The two Linear ops a sparse layer runs, both through the shared Linear recorder (FLOPs by
 * the RECIPES.md rules, gradient routing).
 *
 * - `maskedLinear`: dense execution with W̃ = W ⊙ s (s = E + α·Ē), used while α > 0 and for
 *   unstructured masks. dW = (dYᵀX) ⊙ (E + c·Ē) (+ λ·Ē⊙W), c the pruned-gradient coefficient.
 * - `nmLatentLinear`: the hard N:M phases. Forward and dX run the compressed kernels; dW is the
 *   kept-position kernel scattered into the dense latent gradient when pruned weights get none,
 *   else the dense product masked as above.
 *
 * Beyond the products, both count their elementwise work: building W ⊙ s while α > 0 and the
 * pruned-gradient rule (α·g, λ·W) on the pruned weights.
 */
import { recordLinear } from '../autograd/linear-record.js';
import type { Tensor } from '../autograd/tensor-core.js';
import { getBackend } from '../kernels/backends.js';
import { releaseOwned } from '../kernels/memory/storage.js';
import type { NMSparseTensor } from './nm-tensor.js';
import { prunedGradCoefficient, type RecipeStep } from './recipe.js';

/** What a sparse Linear needs from its recipe step: the pruned-gradient rule and the FLOP rule. */
export type PrunedGradRule = Pick<RecipeStep, 'prunedGrad' | 'alpha' | 'lambda' | 'density' | 'denseWeightGrad'>;

/**
 * Elementwise cost of the pruned-gradient rule on `pruned` weights: c·g is one multiply when
 * 0 < c < 1 (PMD's α·g; c = 0 or 1 needs none), λ·W a multiply and an add (SR-STE).
 */
function prunedRuleFlops(rule: PrunedGradRule, pruned: number): number {
  const c = prunedGradCoefficient(rule);
  return pruned * ((c !== 0 && c !== 1 ? 1 : 0) + (rule.lambda !== 0 ? 2 : 0));
}

function weightGradMasked(g: Float32Array, x: Float32Array, w: Float32Array, keep: Float32Array, rows: number, inF: number, outF: number, rule: PrunedGradRule): Float32Array {
  const backend = getBackend();
  const gw = backend.allocUninit(outF * inF);
  backend.gemm(g, 0, x, 0, gw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false });
  backend.prunedGrad(gw, keep, w, prunedGradCoefficient(rule), rule.lambda);
  return gw;
}

/** y = x·(W ⊙ scale)ᵀ + b. `keep` is the 0/1 mask E; `scale` = E + α·Ē. */
export function maskedLinear(x: Tensor, w: Tensor, bias: Tensor | null, keep: Float32Array, scale: Float32Array, rule: PrunedGradRule, op = 'maskedLinear'): Tensor {
  const [outF, inF] = w.shape as [number, number];
  const rows = x.size / inF;
  const backend = getBackend();
  const wt = backend.allocUninit(w.size);
  backend.mulInto(w.data, scale, wt);
  const y = backend.allocUninit(rows * outF);
  const spec = { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false };
  if (bias) backend.gemmBias(x.data, wt, y, spec, bias.data);
  else backend.gemm(x.data, 0, wt, 0, y, 0, spec);
  // W ⊙ (E + α·Ē) costs one multiply per weight while α > 0; a 0/1 mask alone is a selection.
  const cost = {
    density: rule.density,
    denseWeightGrad: rule.denseWeightGrad,
    forwardExtra: rule.alpha > 0 ? w.size : 0,
    weightGradExtra: prunedRuleFlops(rule, w.size - backend.countNonZero(keep)),
  };
  return recordLinear(op, x, w, bias, outF, inF, y, cost, {
    input: (g) => {
      const gx = getBackend().allocUninit(x.size);
      getBackend().gemm(g, 0, wt, 0, gx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false });
      return gx;
    },
    weight: (g) => weightGradMasked(g, x.data, w.data, keep, rows, inF, outF, rule),
  });
}

/**
 * Hard N:M Linear over dense latent weights `w`: `pattern` fixes the kept positions (its values
 * are refreshed from `w` here); `keep` is the same mask densely.
 */
export function nmLatentLinear(x: Tensor, w: Tensor, bias: Tensor | null, pattern: NMSparseTensor, keep: Float32Array, rule: PrunedGradRule, op = 'nmLatentLinear'): Tensor {
  const [outF, inF] = w.shape as [number, number];
  const rows = x.size / inF;
  const backend = getBackend();
  backend.nmGather(w.data, pattern, pattern.values);
  const y = backend.allocUninit(rows * outF);
  backend.nmForward(x.data, rows, pattern, bias ? bias.data : null, y);
  const maskedWeightGrad = prunedGradCoefficient(rule) !== 0 || rule.lambda !== 0;
  const cost = { density: rule.density, denseWeightGrad: rule.denseWeightGrad, weightGradExtra: maskedWeightGrad ? prunedRuleFlops(rule, w.size - pattern.nnz) : 0 };
  return recordLinear(op, x, w, bias, outF, inF, y, cost, {
    input: (g) => getBackend().nmInputGrad(g, rows, pattern),
    weight: (g) => {
      if (maskedWeightGrad) return weightGradMasked(g, x.data, w.data, keep, rows, inF, outF, rule);
      const kept = getBackend().nmKeptWeightGrad(g, x.data, rows, pattern);
      const gw = getBackend().alloc(w.size);
      getBackend().nmScatter(kept, pattern, gw);
      releaseOwned(kept); // scattered: back to the arena at once (inside the backward sweep)
      return gw;
    },
  });
}
