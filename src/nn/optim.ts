/** Optimizers (SGD with momentum, Adam, AdamW), global-norm clipping and LR schedules. */
import { ShapeError } from '../errors.js';
import type { Tensor } from '../autograd/tensor.js';

export interface OptimizerState {
  kind: string;
  step: number;
  lr: number;
  /** Per-parameter slot arrays (momentum, first/second moments), by parameter index. */
  slots: Record<string, Float32Array[]>;
}

export abstract class Optimizer {
  lr: number;
  stepCount = 0;
  constructor(readonly params: Tensor[], lr: number) {
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new ShapeError(new.target.name, `learning rate must be a finite non-negative number, got ${lr}`);
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
    if (s.kind !== this.constructor.name) throw new ShapeError(this.constructor.name, `state was saved by ${s.kind}`);
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

export class SGD extends Optimizer {
  private readonly velocity: Float32Array[];
  constructor(params: Tensor[], lr: number, readonly opts: { momentum?: number; weightDecay?: number; nesterov?: boolean } = {}) {
    super(params, lr);
    this.velocity = params.map((p) => new Float32Array(p.size));
  }

  step(): void {
    const mu = this.opts.momentum ?? 0;
    const wd = this.opts.weightDecay ?? 0;
    this.stepCount++;
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const g = p.grad.data;
      const v = this.velocity[i]!;
      const w = p.data;
      for (let j = 0; j < w.length; j++) {
        const gj = g[j]! + wd * w[j]!;
        v[j] = mu * v[j]! + gj;
        w[j] = w[j]! - this.lr * (this.opts.nesterov ? gj + mu * v[j]! : mu > 0 ? v[j]! : gj);
      }
    });
  }

  protected slots(): Record<string, Float32Array[]> {
    return { velocity: this.velocity };
  }
}

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
    this.m = params.map((p) => new Float32Array(p.size));
    this.v = params.map((p) => new Float32Array(p.size));
  }

  step(): void {
    this.stepCount++;
    const t = this.stepCount;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd, lr } = this;
    const bc1 = 1 - Math.pow(b1, t);
    const bc2 = 1 - Math.pow(b2, t);
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const g = p.grad.data;
      const m = this.m[i]!;
      const v = this.v[i]!;
      const w = p.data;
      for (let j = 0; j < w.length; j++) {
        let gj = g[j]!;
        if (wd !== 0) {
          if (this.decoupled) w[j] = w[j]! * (1 - lr * wd);
          else gj += wd * w[j]!;
        }
        m[j] = b1 * m[j]! + (1 - b1) * gj;
        v[j] = b2 * v[j]! + (1 - b2) * gj * gj;
        const mHat = m[j]! / bc1;
        const vHat = v[j]! / bc2;
        w[j] = w[j]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
    });
  }

  protected slots(): Record<string, Float32Array[]> {
    return { m: this.m, v: this.v };
  }
}

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
  let sq = 0;
  for (const p of params) if (p.grad) for (const g of p.grad.data) sq += g * g;
  const norm = Math.sqrt(sq);
  if (Number.isFinite(norm) && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) if (p.grad) for (let j = 0; j < p.grad.data.length; j++) p.grad.data[j] *= s;
  }
  return norm;
}

/** A learning-rate schedule: lr at a 1-based optimizer step. */
export type LrSchedule = (step: number) => number;

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
