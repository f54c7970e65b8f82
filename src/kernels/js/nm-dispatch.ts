/**
 * The js backend's N:M products and mask search on the pool: the forward and input gradient
 * gather through the pattern's CSR layouts (../nm-structure.ts), the kept-position weight
 * gradient from transposed operands, each split by output rows.
 */
import type { Backend } from '../backend.js';
import { dispatchRows } from '../threads/pool.js';
import { JS_TASKS } from './tasks.js';
import { GATHER_ROW_BLOCK, GatherArgs } from './nm.js';
import { allocF32, releaseOwned } from '../memory/storage.js';
import { gatherBy, patternLayout } from '../nm-structure.js';

/** Threaded row-blocked CSR × dense gather over all `rows`. */
function sparseGather(args: GatherArgs, rows: number): void {
  dispatchRows(JS_TASKS, 'sparseGatherRows', args, rows, GATHER_ROW_BLOCK, 2 * rows * args.val.length);
}

/** Threaded out-of-place transpose of a [rows, cols] matrix into dst [cols, rows]. */
function transposeInto(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  dispatchRows(JS_TASKS, 'transposeRows', { src, rows, cols, dst }, cols, 32, 64 * rows * cols);
}

/** Split by weight rows: SSD recomputes every sparse layer's mask at each step. */
export const nmKeepOffsetsThreaded: Backend['nmKeepOffsets'] = (data, rows, cols, n, m, out) => dispatchRows(JS_TASKS, 'nmKeepOffsetsRows', { data, rows, cols, n, m, out }, rows, 1, 8 * rows * cols);

/** y [rows, out] = x [rows, in] · Wᵀ (+ bias), rows split over the pool. */
export const nmForward: Backend['nmForward'] = (x, rows, w, bias, y) => {
  const { rowPtr, col } = patternLayout(w).rows;
  sparseGather({ x, inDim: w.shape[1], rowPtr, col, val: w.values, y, bias }, rows);
};

/** dX [rows, in] = dY [rows, out] · W through the transposed pattern. */
export const nmInputGrad: Backend['nmInputGrad'] = (dy, rows, w) => {
  const t = patternLayout(w).transposed;
  const val = allocF32(t.source.length);
  gatherBy(w.values, t.source, val);
  const dx = allocF32(rows * w.shape[1]);
  sparseGather({ x: dy, inDim: w.shape[0], rowPtr: t.rowPtr, col: t.col, val, y: dx, bias: null }, rows);
  releaseOwned(val); // scratch of this call (returned at once inside the backward sweep)
  return dx;
};

/** dYᵀ·X at the kept positions only, in W's storage order, split by output rows. */
export const nmKeptWeightGrad: Backend['nmKeptWeightGrad'] = (dy, x, rows, w) => {
  const [outDim, inDim] = w.shape;
  const { rowPtr, col } = patternLayout(w).rows;
  const dyT = allocF32(rows * outDim);
  const xT = allocF32(rows * inDim);
  transposeInto(dy, rows, outDim, dyT);
  transposeInto(x, rows, inDim, xT);
  const grad = allocF32(col.length);
  dispatchRows(JS_TASKS, 'keptGradRows', { dyT, xT, rows, rowPtr, col, grad }, outDim, 1, 2 * rows * col.length);
  releaseOwned(dyT);
  releaseOwned(xT);
  return grad;
};
