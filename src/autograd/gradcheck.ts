import { Rng } from '../kernels/random.js';
import { Tensor, noGrad } from './tensor-core.js';

/** Options of `gradcheck`; defaults eps 1e-3, rtol 1e-2, atol 1e-3, seed 1234. */
export interface GradcheckOptions {
  /** Finite-difference step along the random direction. */
  eps?: number;
  /** Relative tolerance on the directional derivative. */
  rtol?: number;
  /** Absolute tolerance. */
  atol?: number;
  seed?: number;
}

/**
 * The outcome of `gradcheck`: `ok` when both derivatives are finite and `error` = |numeric − analytic|
 * is within `tolerance` (atol + rtol·max(|numeric|, |analytic|), plus a float32 rounding allowance).
 */
export interface GradcheckResult {
  ok: boolean;
  /** ⟨ct, J·v⟩ by central differences, accumulated in float64. */
  numeric: number;
  /** Σ_i ⟨Jᵢᵀ·ct, vᵢ⟩ from the backward pass. */
  analytic: number;
  error: number;
  tolerance: number;
}

/**
 * Checks the backward pass of `fn` at `inputs` along one random direction: the VJP identity
 * ⟨ct, J·v⟩ = ⟨Jᵀ·ct, v⟩ with J·v from float64 central differences of the float32 forward.
 * Only inputs with requiresGrad are perturbed. A JAX `check_grads`-style randomized test.
 */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-3;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-3;
  const rng = new Rng(opts.seed ?? 1234);
  const active = inputs.map((t) => t.requiresGrad);
  const dirs = inputs.map((t) => Float64Array.from({ length: t.size }, () => rng.normal()));
  const base = inputs.map((t) => Float64Array.from(t.data));

  for (const t of inputs) t.grad = null;
  const y = fn(...inputs);
  const ct = Float64Array.from({ length: y.size }, () => rng.normal());
  if (y.requiresGrad) y.backward(new Tensor(Float32Array.from(ct), y.shape));
  let analytic = 0;
  inputs.forEach((t, i) => {
    if (!active[i] || t.grad === null) return;
    for (let j = 0; j < t.size; j++) analytic += t.grad.data[j]! * dirs[i]![j]!;
  });

  const evalAt = (sign: number): Float64Array =>
    noGrad(() => {
      const shifted = inputs.map((t, i) => {
        if (!active[i]) return t;
        const d = new Float32Array(t.size);
        for (let j = 0; j < t.size; j++) d[j] = base[i]![j]! + sign * eps * dirs[i]![j]!;
        return new Tensor(d, t.shape);
      });
      return Float64Array.from(fn(...shifted).data);
    });
  const plus = evalAt(1);
  const minus = evalAt(-1);
  let numeric = 0;
  let scale = 0;
  for (let j = 0; j < ct.length; j++) {
    numeric += (ct[j]! * (plus[j]! - minus[j]!)) / (2 * eps);
    scale += Math.abs(ct[j]! * (plus[j]! + minus[j]!)) / 2;
  }
  const error = Math.abs(numeric - analytic);
  // Float32 forward rounding is amplified by 1/eps; scale the floor with the output magnitude.
  const tolerance = atol + rtol * Math.max(Math.abs(numeric), Math.abs(analytic)) + (scale * 1e-6) / eps;
  return { ok: error <= tolerance && Number.isFinite(numeric) && Number.isFinite(analytic), numeric, analytic, error, tolerance };
}
