import { DataError, ShapeError, ValueError, fmtShape } from '../../errors.js';
import { getBackend } from '../../kernels/backends.js';
import { allocOwned } from '../../kernels/memory/storage.js';
import type { Rng } from '../../kernels/random.js';
import { broadcastShapes, normAxis, sizeOf } from '../../kernels/shape.js';
import { currentScope, report } from '../flops.js';
import { Tensor, isGradEnabled, result } from '../tensor-core.js';
import { permute } from './shape.js';

function alongAxis(op: string, x: Tensor, axis: number, fn: (t: Tensor) => Tensor): Tensor {
  const a = normAxis(op, axis, x.ndim);
  if (a === x.ndim - 1) return fn(x);
  // Another axis: move it last, apply, move it back (rare in models).
  const perm = [...Array(x.ndim).keys()];
  perm[a] = x.ndim - 1;
  perm[x.ndim - 1] = a;
  return permute(fn(permute(x, perm)), perm);
}

/** Numerically stable softmax along `axis` (default last). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('softmax', x, axis, (t) => {
    const cols = t.shape[t.ndim - 1]!;
    const rows = cols === 0 ? 0 : t.size / cols;
    const out = getBackend().allocUninit(t.size);
    getBackend().softmaxRows(t.data, rows, cols, out, false);
    const scope = currentScope();
    report(scope, 'forward', 'elementwise', 4 * t.size);
    return result('softmax', out, t.shape, [t], (g) => {
      report(scope, 'backward-input', 'elementwise', 4 * t.size);
      const gx = getBackend().allocUninit(t.size);
      getBackend().softmaxBackwardRows(out, g, rows, cols, gx);
      return [gx];
    });
  });
}

/** Numerically stable log-softmax along `axis` (default last). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('logSoftmax', x, axis, (t) => {
    const cols = t.shape[t.ndim - 1]!;
    const rows = cols === 0 ? 0 : t.size / cols;
    const out = getBackend().allocUninit(t.size);
    getBackend().softmaxRows(t.data, rows, cols, out, true);
    const scope = currentScope();
    report(scope, 'forward', 'elementwise', 4 * t.size);
    return result('logSoftmax', out, t.shape, [t], (g) => {
      report(scope, 'backward-input', 'elementwise', 4 * t.size);
      const gx = getBackend().allocUninit(t.size);
      getBackend().logSoftmaxBackwardRows(out, g, rows, cols, gx);
      return [gx];
    });
  });
}

/** Layer normalisation over the last dim, with optional affine γ, β of shape [D]. */
export function layerNorm(x: Tensor, gamma: Tensor | null = null, beta: Tensor | null = null, eps = 1e-5): Tensor {
  const cols = x.shape[x.ndim - 1];
  if (cols === undefined || cols === 0) throw new ShapeError('layerNorm', `needs a non-empty last dim, got ${fmtShape(x.shape)}`);
  for (const [name, p] of [['gamma', gamma], ['beta', beta]] as const) {
    if (p && (p.ndim !== 1 || p.shape[0] !== cols)) throw new ShapeError('layerNorm', `${name} ${fmtShape(p.shape)} must be [${cols}] for input ${fmtShape(x.shape)}`);
  }
  const rows = x.size / cols;
  const out = getBackend().allocUninit(x.size);
  const mean = getBackend().allocUninit(rows);
  const rstd = getBackend().allocUninit(rows);
  getBackend().layerNormRows(x.data, rows, cols, gamma?.data ?? null, beta?.data ?? null, eps, out, mean, rstd);
  const inputs = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', 8 * x.size);
  return result('layerNorm', out, x.shape, inputs, (g) => {
    report(scope, 'backward-input', 'elementwise', 10 * x.size);
    const need = { dx: x.requiresGrad, dGamma: gamma?.requiresGrad ?? false, dBeta: beta?.requiresGrad ?? false };
    const { dx, dGamma, dBeta } = getBackend().layerNormBackwardRows(x.data, g, rows, cols, gamma?.data ?? null, mean, rstd, need);
    const grads: (Float32Array | null)[] = [dx];
    if (gamma) grads.push(dGamma);
    if (beta) grads.push(dBeta);
    return grads;
  });
}

/** Gathers rows of `weight` [V, D] for integer `ids` (any shape) → [...idsShape, D]. */
export function embedding(weight: Tensor, ids: ArrayLike<number>, idsShape: readonly number[] = [ids.length]): Tensor {
  if (weight.ndim !== 2) throw new ShapeError('embedding', `weight must be [vocab, dim], got ${fmtShape(weight.shape)}`);
  if (sizeOf(idsShape) !== ids.length) throw new ShapeError('embedding', `ids shape ${fmtShape(idsShape)} does not hold ${ids.length} ids`);
  const [vocab, dim] = weight.shape as [number, number];
  const n = ids.length;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new DataError('embedding', `id ${id} at position ${i} is outside [0, ${vocab})`);
  }
  const idsCopy = Int32Array.from(ids);
  const out = getBackend().allocUninit(n * dim);
  getBackend().gatherRows(weight.data, dim, idsCopy, out);
  const scope = currentScope();
  return result('embedding', out, [...idsShape, dim], [weight], (g) => {
    report(scope, 'backward-weight', 'elementwise', n * dim);
    const gw = getBackend().alloc(weight.size);
    getBackend().scatterAddRows(g, idsCopy, dim, gw);
    return [gw];
  });
}

/** Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p). */
export function dropout(x: Tensor, p: number, rng: Rng, training = true): Tensor {
  if (!(p >= 0 && p < 1)) throw new ValueError('dropout', `p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  const scale = 1 / (1 - p);
  const backend = getBackend();
  // Private to this node until its backward hands it on as the gradient (so the sweep may release it).
  const keep = allocOwned(() => backend.allocUninit(x.size));
  backend.dropoutMask(rng, p, scale, keep);
  const out = backend.allocUninit(x.size);
  backend.mulInto(x.data, keep, out);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', x.size);
  return result('dropout', out, x.shape, [x], (g) => {
    report(scope, 'backward-input', 'elementwise', x.size);
    // The mask is this node's alone and its backward runs once: the gradient takes its place.
    getBackend().mulInto(g, keep, keep);
    return [keep];
  });
}

/**
 * Elementwise select: `cond ≠ 0 ? a : b`, all three broadcast together. `cond` carries no
 * gradient (it is a mask).
 */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes('where', cond.shape, a.shape, b.shape);
  const n = sizeOf(shape);
  const backend = getBackend();
  const expanded = (t: Tensor): Float32Array => {
    const v = backend.allocUninit(n);
    backend.expand(t.data, t.shape, shape, v);
    return v;
  };
  const c = expanded(cond);
  const out = backend.allocUninit(n);
  backend.where(c, expanded(a), expanded(b), out);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', n);
  return result('where', out, shape, [a, b], (g) => {
    report(scope, 'backward-input', 'elementwise', n);
    const grad = (t: Tensor, whenSet: boolean): Float32Array | null => {
      if (!t.requiresGrad) return null;
      const sel = getBackend().allocUninit(n);
      getBackend().selectGrad(c, g, whenSet, sel);
      return getBackend().sumToShape(sel, shape, t.shape);
    };
    return [grad(a, true), grad(b, false)];
  });
}

/** `x` with `value` written wherever the (broadcast) mask is non-zero, e.g. −∞ for attention. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const shape = broadcastShapes('maskedFill', x.shape, mask.shape);
  if (shape.length !== x.ndim || shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError('maskedFill', `mask ${fmtShape(mask.shape)} must broadcast to the input ${fmtShape(x.shape)} without growing it`);
  }
  // The mask is read in place through broadcast strides (where() would materialise the mask,
  // the value and x at the full size). The mask carries no gradient.
  const out = getBackend().allocUninit(x.size);
  getBackend().maskedFill(x.data, x.shape, mask.data, mask.shape, value, out);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', x.size);
  return result('maskedFill', out, x.shape, [x], (g) => {
    report(scope, 'backward-input', 'elementwise', x.size);
    const gx = getBackend().allocUninit(x.size);
    getBackend().maskedFill(g, x.shape, mask.data, mask.shape, 0, gx);
    return [gx];
  });
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions {
  /** Targets equal to this index contribute nothing (e.g. padding). Default -100, like PyTorch. */
  ignoreIndex?: number;
  /** ε in (1−ε)·onehot + ε/C. Default 0. */
  labelSmoothing?: number;
  /** 'mean' over non-ignored targets (default) or 'sum'. */
  reduction?: 'mean' | 'sum';
}

/**
 * Fused log-softmax + negative log-likelihood over logits [..., C] and integer targets, with
 * PyTorch's semantics for ignore index and label smoothing. Returns a scalar.
 */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number>, opts: CrossEntropyOptions = {}): Tensor {
  const ignore = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? 'mean';
  if (!(eps >= 0 && eps <= 1)) throw new ValueError('crossEntropy', `labelSmoothing must be in [0, 1], got ${eps}`);
  const classes = logits.shape[logits.ndim - 1];
  if (classes === undefined || classes === 0) throw new ShapeError('crossEntropy', `logits need a class dim, got ${fmtShape(logits.shape)}`);
  const rows = logits.size / classes;
  if (targets.length !== rows) {
    throw new ShapeError('crossEntropy', `${targets.length} targets for logits ${fmtShape(logits.shape)} (${rows} rows)`);
  }
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === ignore) continue;
    if (!Number.isInteger(t) || t < 0 || t >= classes) throw new DataError('crossEntropy', `target ${t} at row ${r} is outside [0, ${classes}) and is not the ignore index ${ignore}`);
    count++;
  }
  const denom = reduction === 'mean' ? Math.max(count, 1) : 1;
  const tgt = Int32Array.from(targets);
  const backend = getBackend();
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', 5 * logits.size);
  const out = backend.alloc(1);
  if (!isGradEnabled() || !logits.requiresGrad) {
    const logp = backend.allocUninit(logits.size);
    backend.softmaxRows(logits.data, rows, classes, logp, true);
    out[0] = count === 0 ? 0 : backend.crossEntropyLoss(logp, tgt, rows, classes, ignore, eps).total / denom;
    return new Tensor(out, []);
  }
  // Training: the gradient for an upstream gradient of 1 (what backward() seeds) is computed
  // with the loss in one sweep over the logits (crossEntropyWithGrad). It is private to this
  // node until its backward hands it on (so the sweep may release it).
  const gx = allocOwned(() => backend.allocUninit(logits.size));
  const { total } = backend.crossEntropyWithGrad(logits.data, tgt, rows, classes, ignore, eps, 1 / denom, gx);
  out[0] = count === 0 ? 0 : total / denom;
  return result('crossEntropy', out, [], [logits], (g) => {
    report(scope, 'backward-input', 'elementwise', 3 * logits.size);
    // Another upstream gradient: the sweep again with its scale (the bits of scaling once, as for 1).
    if (g[0] !== 1) getBackend().crossEntropyWithGrad(logits.data, tgt, rows, classes, ignore, eps, g[0]! / denom, gx);
    return [gx];
  });
}
