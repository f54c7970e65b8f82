/**
 * The one recorder every Linear-type op (dense `linear`, `sparseLinear`, and the sparse
 * layer's `maskedLinear` / `nmLatentLinear`) hands its forward output to. It reports the
 * FLOPs by the RECIPES.md rules and routes the input, weight and bias gradients, so the four
 * ops differ only in the kernels they run.
 */
import { getBackend } from '../kernels/backends.js';
import { currentScope, report } from './flops.js';
import { Tensor, result } from './tensor-core.js';

export interface LinearCost {
  /** Forward density ρ: the fraction of the dense 2·B·K·O product executed (forward and dX). */
  density: number;
  /** dW costs the dense product (pruned weights receive a gradient), else ρ of it. */
  denseWeightGrad: boolean;
  /** Extra forward elementwise work, e.g. building W ⊙ (E + α·Ē). */
  forwardExtra?: number;
  /** Extra weight-gradient elementwise work, e.g. SR-STE's λ·W on pruned weights. */
  weightGradExtra?: number;
  /** Count in the 'sparse' category even outside a sparse layer's scope (compressed kernels). */
  sparse?: boolean;
}

export interface LinearGrads {
  /** dX [rows, in] from dY [rows, out]. */
  input: (g: Float32Array) => Float32Array;
  /** The gradient delivered to `weight` (its own layout: dense or compressed). */
  weight: (g: Float32Array) => Float32Array;
}

/**
 * Wraps `y` = x·Wᵀ (+ b) of a Linear with `outF` outputs and `inF` inputs as a tape node.
 * `weight` is the tensor that receives the weight gradient (a dense [out, in] weight or the
 * [nnz] kept values of a compressed one).
 */
export function recordLinear(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, outF: number, inF: number, y: Float32Array, cost: LinearCost, grads: LinearGrads): Tensor {
  const rows = inF === 0 ? 0 : x.size / inF;
  const s = cost.sparse ? { ...currentScope(), sparse: true } : currentScope();
  const full = 2 * rows * inF * outF;
  report(s, 'forward', 'linear', cost.density * full, full);
  if (cost.forwardExtra) report(s, 'forward', 'elementwise', cost.forwardExtra);
  if (bias) report(s, 'forward', 'elementwise', rows * outF);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return result(op, y, [...x.shape.slice(0, -1), outF], inputs, (g) => {
    const out: (Float32Array | null)[] = [null, null, null];
    if (x.requiresGrad) {
      out[0] = grads.input(g);
      report(s, 'backward-input', 'linear', cost.density * full, full);
    }
    if (weight.requiresGrad) {
      out[1] = grads.weight(g);
      report(s, 'backward-weight', 'linear', cost.denseWeightGrad ? full : cost.density * full, full);
      if (cost.weightGradExtra) report(s, 'backward-weight', 'elementwise', cost.weightGradExtra);
    }
    if (bias?.requiresGrad) {
      out[2] = getBackend().columnSums(g, rows, outF);
      report(s, 'backward-weight', 'elementwise', rows * outF);
    }
    return bias ? out : out.slice(0, 2);
  });
}
