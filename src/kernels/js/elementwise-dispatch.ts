/**
 * The js backend's threaded elementwise kernels: products and sums of buffers, unary ops and
 * their backward, binary ops (with broadcasting) and their backward, broadcasting itself,
 * permutes, where / selectGrad, the bias add and bias gradient, the layer-norm backward and
 * the dropout mask, split over the pool by elements, rows or columns so that every output is
 * computed exactly as one thread computes it (bitwise identical for any thread count).
 *
 * Costs are in the pool's units (PARALLEL_MIN_COST, rough FLOP equivalents), estimated per
 * element from measured times: a streaming pass over two or three float32 buffers counts
 * ELEMENT_COST (so passes of about 175k+ elements leave the calling thread, where a 2-thread
 * split measured faster than one thread), an exp / tanh / erf a few times that. Smaller work
 * stays on the calling thread, where a dispatch would cost more than it saves.
 */
import type { BinaryOp, UnaryOp } from '../backend.js';
import type { LayerNormBackwardArgs } from './elementwise-ranges.js';
import { binaryBackwardKernel, binaryRows, type BinaryBackwardParts } from './elementwise.js';
import { expandIsCopy, expandKernel, sumToShape } from './movement.js';
import { outerRows, sizeOf } from '../shape.js';
import { allocF32, allocF32Uninit } from '../memory/storage.js';
import type { Rng } from '../random.js';
import { PARALLEL_MIN_COST, getThreads, dispatchRows } from '../threads/pool.js';
import { JS_TASKS } from './tasks.js';
import { DROPOUT_ALIGN, ELEMENT_ALIGN, ELEMENT_COST, LAYER_NORM_BACKWARD_COSTS, UNARY_COST } from './placement.js';

export function mulIntoThreaded(a: Float32Array, b: Float32Array, out: Float32Array): void {
  dispatchRows(JS_TASKS, 'mulRange', { a, b, out }, out.length, ELEMENT_ALIGN, ELEMENT_COST * out.length);
}

export function addIntoThreaded(dst: Float32Array, src: Float32Array): void {
  dispatchRows(JS_TASKS, 'addRange', { dst, src }, dst.length, ELEMENT_ALIGN, ELEMENT_COST * dst.length);
}

export function divGradBThreaded(g: Float32Array, a: Float32Array, b: Float32Array, out: Float32Array): void {
  dispatchRows(JS_TASKS, 'divGradBRange', { g, a, b, out }, out.length, ELEMENT_ALIGN, 2 * ELEMENT_COST * out.length);
}

export function unaryThreaded(op: UnaryOp, x: Float32Array, out: Float32Array, param: number): void {
  const cost = op === 'pow' && param === 2 ? ELEMENT_COST : UNARY_COST[op];
  dispatchRows(JS_TASKS, 'unaryRange', { op, x, out, param }, x.length, ELEMENT_ALIGN, cost * x.length);
}

export function unaryBackwardThreaded(op: UnaryOp, x: Float32Array, y: Float32Array, g: Float32Array, gx: Float32Array, param: number): void {
  const cost = op === 'pow' && param === 2 ? ELEMENT_COST : UNARY_COST[op] + ELEMENT_COST;
  dispatchRows(JS_TASKS, 'unaryBackwardRange', { op, x, y, g, gx, param }, x.length, ELEMENT_ALIGN, cost * x.length);
}

export function binaryThreaded(op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], out: Float32Array): void {
  const rows = binaryRows(aShape, bShape, outShape);
  const align = rows === out.length ? ELEMENT_ALIGN : 1;
  dispatchRows(JS_TASKS, 'binaryRange', { op, a, aShape, b, bShape, outShape, out }, rows, align, ELEMENT_COST * out.length);
}

export function expandThreaded(src: Float32Array, shape: readonly number[], outShape: readonly number[], out: Float32Array): void {
  // A plain copy or a fill runs at memory speed: cheaper here than a dispatch.
  if (expandIsCopy(shape, outShape) || sizeOf(shape) === 1) expandKernel(src, shape, outShape, out);
  else dispatchRows(JS_TASKS, 'expandRange', { src, shape, outShape, out }, outerRows(outShape), 1, ELEMENT_COST * out.length);
}

/**
 * out = src with dims reordered (out.shape[i] = shape[perm[i]]), split over the output's outer
 * rows (all dims but the last); every element is a copy, so any split gives the same bits.
 */
export function permuteThreaded(src: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void {
  const outShape = perm.map((a) => shape[a]!);
  dispatchRows(JS_TASKS, 'permuteRange', { src, shape, perm, out }, outerRows(outShape), 1, ELEMENT_COST * out.length);
}

export function whereThreaded(cond: Float32Array, a: Float32Array, b: Float32Array, out: Float32Array): void {
  dispatchRows(JS_TASKS, 'whereRange', { cond, a, b, out }, out.length, ELEMENT_ALIGN, ELEMENT_COST * out.length);
}

export function selectGradThreaded(cond: Float32Array, g: Float32Array, whenSet: boolean, out: Float32Array): void {
  dispatchRows(JS_TASKS, 'selectGradRange', { cond, g, whenSet, out }, out.length, ELEMENT_ALIGN, ELEMENT_COST * out.length);
}

const PARTS: BinaryBackwardParts = {
  alloc: allocF32Uninit,
  unary: unaryThreaded,
  mulInto: mulIntoThreaded,
  binary: binaryThreaded,
  divGradB: divGradBThreaded,
  expand: expandThreaded,
  sumToShape,
};

export function binaryBackwardThreaded(op: BinaryOp, g: Float32Array, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], needA: boolean, needB: boolean): [Float32Array | null, Float32Array | null] {
  return binaryBackwardKernel(op, g, a, aShape, b, bShape, outShape, needA, needB, PARTS);
}

export function addRowVectorThreaded(out: Float32Array, rows: number, cols: number, v: Float32Array): void {
  dispatchRows(JS_TASKS, 'addRowVectorRange', { out, cols, v }, rows, 1, ELEMENT_COST * rows * cols);
}

/** Σ_r g[r, j], split over columns (each column summed over all rows in order). */
export function columnSumsThreaded(g: Float32Array, rows: number, cols: number): Float32Array {
  const out = allocF32(cols);
  dispatchRows(JS_TASKS, 'columnSumsColRange', { g, rows, cols, out }, cols, 16, ELEMENT_COST * rows * cols);
  return out;
}

type LayerNormNeed = { dx: boolean; dGamma: boolean; dBeta: boolean };
type LayerNormGrads = { dx: Float32Array | null; dGamma: Float32Array | null; dBeta: Float32Array | null };

/**
 * A layer-norm backward split over the pool by `tasks[task]` (a LayerNormBackwardArgs range
 * task: dx by rows, dγ and dβ by columns); `costs` are the per-element costs of dx, dγ and dβ.
 */
export function layerNormBackwardSplit<K extends string>(tasks: { readonly [k in K]: (a: LayerNormBackwardArgs, r0: number, r1: number) => void }, task: K, costs: readonly [number, number, number], x: Float32Array, dy: Float32Array, rows: number, cols: number, gamma: Float32Array | null, mean: Float32Array, rstd: Float32Array, need: LayerNormNeed): LayerNormGrads {
  const dx = need.dx ? allocF32Uninit(x.length) : null;
  const dGamma = need.dGamma ? allocF32(cols) : null;
  const dBeta = need.dBeta ? allocF32(cols) : null;
  const cost = ((dx ? costs[0] : 0) + (dGamma ? costs[1] : 0) + (dBeta ? costs[2] : 0)) * rows * cols;
  dispatchRows(tasks, task, { x, dy, rows, cols, gamma, mean, rstd, dx, dGamma, dBeta }, rows, 1, cost);
  return { dx, dGamma, dBeta };
}

/** Layer-norm backward: dx split by rows, dγ and dβ by columns (see layerNormBackwardRange). */
export function layerNormBackwardThreaded(x: Float32Array, dy: Float32Array, rows: number, cols: number, gamma: Float32Array | null, mean: Float32Array, rstd: Float32Array, need: LayerNormNeed): LayerNormGrads {
  return layerNormBackwardSplit(JS_TASKS, 'layerNormBackwardRange', LAYER_NORM_BACKWARD_COSTS, x, dy, rows, cols, gamma, mean, rstd, need);
}

/**
 * The dropout mask, split by elements: each chunk draws from the generator moved ahead to its
 * first element (Rng.advance), and the caller's generator ends n draws on, so masks and the
 * generator state are exactly those of one pass over the buffer, for any thread count.
 */
export function dropoutMaskThreaded(rng: Rng, p: number, scale: number, keep: Float32Array): void {
  const n = keep.length;
  if (getThreads() <= 1 || ELEMENT_COST * n < PARALLEL_MIN_COST || n < 2 * DROPOUT_ALIGN) {
    rng.fillKeepMask(keep, p, scale);
    return;
  }
  dispatchRows(JS_TASKS, 'dropoutMaskRange', { state: rng.getState(), p, scale, keep }, n, DROPOUT_ALIGN, ELEMENT_COST * n);
  rng.advance(n);
}

/** out[i, :] = weight[ids[i], :], split by output rows. */
export function gatherRowsThreaded(weight: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void {
  dispatchRows(JS_TASKS, 'gatherRowsRange', { weight, dim, ids, out }, ids.length, 1, ELEMENT_COST * ids.length * dim);
}

/** gw[ids[i], :] += g[i, :], split by columns (each column adds the ids in order). */
export function scatterAddRowsThreaded(g: Float32Array, ids: Int32Array, dim: number, gw: Float32Array): void {
  dispatchRows(JS_TASKS, 'scatterAddColRange', { g, ids, dim, gw }, dim, 16, ELEMENT_COST * ids.length * dim);
}
