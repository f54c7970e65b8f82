/**
 * The js backend's threaded row kernels: softmax / log-softmax and their backward, layer-norm
 * forward, cross-entropy backward and the Adam update, split over the pool by rows (elements for
 * Adam). Per-element costs are rough FLOP equivalents (an exp counts ~10) so that only work large
 * enough to repay a dispatch leaves the calling thread.
 */
import type { AdamParams } from '../backend.js';
import { rowLossTotal } from './rows.js';
import { dispatchRows } from '../threads/pool.js';
import { JS_TASKS } from './tasks.js';
import { ROW_EXP_COST, UPDATE_ALIGN } from './placement.js';

export function softmaxRowsThreaded(x: Float32Array, rows: number, cols: number, out: Float32Array, logSpace: boolean): void {
  dispatchRows(JS_TASKS, 'softmaxRowRange', { x, out, cols, logSpace }, rows, 1, ROW_EXP_COST * rows * cols);
}

export function softmaxBackwardRowsThreaded(y: Float32Array, dy: Float32Array, rows: number, cols: number, dx: Float32Array): void {
  dispatchRows(JS_TASKS, 'softmaxBackwardRowRange', { y, dy, dx, cols, log: false }, rows, 1, 4 * rows * cols);
}

export function logSoftmaxBackwardRowsThreaded(y: Float32Array, dy: Float32Array, rows: number, cols: number, dx: Float32Array): void {
  dispatchRows(JS_TASKS, 'softmaxBackwardRowRange', { y, dy, dx, cols, log: true }, rows, 1, ROW_EXP_COST * rows * cols);
}

export function layerNormRowsThreaded(x: Float32Array, rows: number, cols: number, gamma: Float32Array | null, beta: Float32Array | null, eps: number, out: Float32Array, meanOut: Float32Array, rstdOut: Float32Array): void {
  dispatchRows(JS_TASKS, 'layerNormRowRange', { x, cols, gamma, beta, eps, out, meanOut, rstdOut }, rows, 1, 8 * rows * cols);
}

export function crossEntropyBackwardThreaded(logp: Float32Array, targets: Int32Array, rows: number, classes: number, ignore: number, eps: number, scale: number, gx: Float32Array): void {
  dispatchRows(JS_TASKS, 'crossEntropyBackwardRowRange', { logp, targets, classes, ignore, eps, scale, gx }, rows, 1, ROW_EXP_COST * rows * classes);
}

/** Row losses on the pool, then added in row order on this thread: the bits of the one-pass loss for any thread count. */
export function crossEntropyLossThreaded(logp: Float32Array, targets: Int32Array, rows: number, classes: number, ignore: number, eps: number): { total: number; count: number } {
  return rowLossTotal(targets, rows, ignore, (losses) => dispatchRows(JS_TASKS, 'crossEntropyLossRowRange', { logp, targets, classes, ignore, eps, losses }, rows, 1, (eps > 0 ? 2 : 0) * rows * classes));
}

export function adamUpdateThreaded(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, p: AdamParams): void {
  dispatchRows(JS_TASKS, 'adamRange', { w, g, m, v, p }, w.length, UPDATE_ALIGN, 16 * w.length);
}
