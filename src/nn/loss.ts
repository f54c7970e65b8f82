import { Tensor } from '../autograd/tensor.js';
import { argmax } from '../autograd/ops/reduce.js';
import { crossEntropy } from '../autograd/ops/nn.js';

/** Label-smoothed cross entropy over [.., V] logits that skips padding targets. */
export function labelSmoothedLoss(logits: Tensor, targets: ArrayLike<number>, padId: number, smoothing = 0.1): Tensor {
  return crossEntropy(logits, targets, { ignoreIndex: padId, labelSmoothing: smoothing });
}

/** Fraction of non-padding targets predicted by argmax. */
export function tokenAccuracy(logits: Tensor, targets: ArrayLike<number>, padId: number): number {
  const pred = argmax(logits, -1);
  let ok = 0;
  let n = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] === padId) continue;
    n++;
    if (pred[i] === targets[i]) ok++;
  }
  return n === 0 ? 0 : ok / n;
}
