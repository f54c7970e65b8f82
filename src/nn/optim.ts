/** Optimizers (SGD with momentum, Adam, AdamW), global-norm clipping and LR schedules. */
import { DataError, ShapeError, ValueError } from '../errors.js';
import type { Tensor } from '../autograd/tensor.js';
import { getBackend } from '../kernels/backends.js';

/**
 * An optimizer's saved state (`getState` / `setState`, stored in checkpoints): its class, step, lr and slots.
 */
export interface OptimizerState {
  kind: string;
  step: number;
  lr: number;
  /** Per-parameter slot arrays (momentum, first/second moments), by parameter index. */
  slots: Record<string, Float32Array[]>;
}

/**
 * The base of the optimizers: the parameters it updates, its learning rate (settable between steps)
 * and its step count. Subclasses implement `step`. Throws ValueError for a negative or non-finite lr;
 * `setState` throws DataError / ShapeError for state saved by another optimizer or other parameters.
 */
export abstract class Optimizer {
  lr: number;
  stepCount = 0;
  constructor(readonly params: Tensor[], lr: number) {
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new ValueError(new.target.name, `learning rate must be a finite non-negative number, got ${lr}`);
    this.lr = lr;
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** Applies one update from the parameters' current .grad (parameters without grad are skipped). */
  abstract step(): void;

  protected abstract slots(): Record<string, Float32Array[]>;

  getState(): OptimizerState {
    return { kind: this.constructor.name, step: this.stepCount, lr: this.lr, slots: this.slots() };
  }

  setState(s: OptimizerState): void {
    if (s.kind !== this.constructor.name) throw new DataError(this.constructor.name, `state was saved by ${s.kind}`);
    const own = this.slots();
    for (const [name, arrays] of Object.entries(own)) {
      const saved = s.slots[name];
      if (!saved || saved.length !== arrays.length || saved.some((a, i) => a.length !== arrays[i]!.length)) {
        throw new ShapeError(this.constructor.name, `optimizer slot '${name}' does not match the parameters`);
      }
      arrays.forEach((a, i) => a.set(saved[i]!));
    }
    this.stepCount = s.step;
    this.lr = s.lr;
  }
}

/**
 * Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay (PyTorch's update).
 */
export class SGD extends Optimizer {
  private readonly velocity: Float32Array[];
  constructor(params: Tensor[], lr: number, readonly opts: { momentum?: number; weightDecay?: number; nesterov?: boolean } = {}) {
    super(params, lr);
    // Backend storage (the tensor arena for large ones): the update kernels' workers use it in place.
    this.velocity = params.map((p) => getBackend().alloc(p.size));
  }

  step(): void {
    const hyper = { lr: this.lr, momentum: this.opts.momentum ?? 0, weightDecay: this.opts.weightDecay ?? 0, nesterov: this.opts.nesterov ?? false };
    this.stepCount++;
    const backend = getBackend();
    this.params.forEach((p, i) => {
      if (p.grad) backend.sgdUpdate(p.data, p.grad.data, this.velocity[i]!, hyper);
    });
  }

  protected slots(): Record<string, Float32Array[]> {
    return { velocity: this.velocity };
  }
}

/** Adam's hyper-parameters: defaults β1 0.9, β2 0.999, ε 1e-8, weight decay 0 (AdamW: 0.01). */
export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/**
 * Adam (L2 weight decay added to the gradient) and, with `decoupled`, AdamW (decay applied to
 * the weights directly, scaled by lr). Bias-corrected moments, PyTorch's formulation.
 */
export class Adam extends Optimizer {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  protected decoupled = false;

  constructor(params: Tensor[], lr = 1e-3, opts: AdamOptions = {}) {
    super(params, lr);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    // Backend storage (the tensor arena for large ones): the update kernels' workers use it in place.
    this.m = params.map((p) => getBackend().alloc(p.size));
    this.v = params.map((p) => getBackend().alloc(p.size));
  }

  step(): void {
    this.stepCount++;
    const t = this.stepCount;
    const { beta1, beta2, eps, weightDecay, lr, decoupled } = this;
    const hyper = { lr, beta1, beta2, eps, weightDecay, decoupled, bc1: 1 - Math.pow(beta1, t), bc2: 1 - Math.pow(beta2, t) };
    const backend = getBackend();
    this.params.forEach((p, i) => {
      if (p.grad) backend.adamUpdate(p.data, p.grad.data, this.m[i]!, this.v[i]!, hyper);
    });
  }

  protected slots(): Record<string, Float32Array[]> {
    return { m: this.m, v: this.v };
  }
}

/** Adam with decoupled weight decay (default 0.01): the decay is applied to the weights, scaled by lr. */
export class AdamW extends Adam {
  constructor(params: Tensor[], lr = 1e-3, opts: AdamOptions = {}) {
    super(params, lr, { weightDecay: 0.01, ...opts });
    this.decoupled = true;
  }
}

/**
 * Scales all gradients so their global L2 norm is at most maxNorm. Returns the norm before
 * clipping (NaN/Inf propagate so callers can stop on them).
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const backend = getBackend();
  let sq = 0;
  for (const p of params) if (p.grad) sq = backend.sumSquares(p.grad.data, sq);
  const norm = Math.sqrt(sq);
  if (Number.isFinite(norm) && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) if (p.grad) backend.scaleInPlace(p.grad.data, s);
  }
  return norm;
}

/** A learning-rate schedule: lr at a 1-based optimizer step. */
export type LrSchedule = (step: number) => number;

/** The same learning rate at every step. */
export const constantLr = (lr: number): LrSchedule => () => lr;

/** Linear warm-up to `peak` over `warmup` steps, then peak·√(warmup/step) (inverse square root). */
export const inverseSqrtLr = (peak: number, warmup: number): LrSchedule => (step) => {
  const s = Math.max(step, 1);
  return warmup > 0 && s < warmup ? (peak * s) / warmup : peak * Math.sqrt(Math.max(warmup, 1) / s);
};

/** Optional linear warm-up, then cosine decay from peak to minLr at `total`. */
export const cosineLr = (peak: number, total: number, warmup = 0, minLr = 0): LrSchedule => (step) => {
  if (warmup > 0 && step < warmup) return (peak * Math.max(step, 1)) / warmup;
  const p = Math.min(1, Math.max(0, (step - warmup) / Math.max(1, total - warmup)));
  return minLr + 0.5 * (peak - minLr) * (1 + Math.cos(Math.PI * p));
};
