/**
 * The wasm row kernels over the worker pool: split by rows, each thread running its own
 * instance (./rows.ts). Products below WASM_ROWS_MIN elements stay on the js kernels, where a
 * call's copies would outweigh its arithmetic; the choice depends on the whole call's size
 * only, so every thread of a split takes it alike.
 */
import { crossEntropyInTurn, type Backend } from '../backend.js';
import { crossEntropyLoss as jsCrossEntropyLoss, crossEntropyBackward as jsCrossEntropyBackward, rowLossTotal, logSoftmaxBackwardRows as jsLogSoftmaxBackward, softmaxBackwardRows as jsSoftmaxBackward, softmaxRows as jsSoftmaxRows } from '../js/fallbacks.js';
import { dispatchRows } from '../threads/pool.js';
import { WASM_TASKS } from './tasks.js';
import { WASM_EXP_COST, WASM_ROWS_MIN } from './placement.js';

export const wasmSoftmaxRows: Backend['softmaxRows'] = (x, rows, cols, out, logSpace) => {
  if (rows * cols < WASM_ROWS_MIN) return jsSoftmaxRows(x, rows, cols, out, logSpace);
  dispatchRows(WASM_TASKS, 'wasmSoftmaxRowRange', { x, out, cols, logSpace }, rows, 1, WASM_EXP_COST * rows * cols);
};

export const wasmSoftmaxBackwardRows: Backend['softmaxBackwardRows'] = (y, dy, rows, cols, dx) => {
  if (rows * cols < WASM_ROWS_MIN) return jsSoftmaxBackward(y, dy, rows, cols, dx);
  dispatchRows(WASM_TASKS, 'wasmSoftmaxBackwardRowRange', { y, dy, dx, cols, log: false }, rows, 1, 2 * rows * cols);
};

export const wasmLogSoftmaxBackwardRows: Backend['logSoftmaxBackwardRows'] = (y, dy, rows, cols, dx) => {
  if (rows * cols < WASM_ROWS_MIN) return jsLogSoftmaxBackward(y, dy, rows, cols, dx);
  dispatchRows(WASM_TASKS, 'wasmSoftmaxBackwardRowRange', { y, dy, dx, cols, log: true }, rows, 1, WASM_EXP_COST * rows * cols);
};

export const wasmCrossEntropyBackward: Backend['crossEntropyBackward'] = (logp, targets, rows, classes, ignore, eps, scale, gx) => {
  if (rows * classes < WASM_ROWS_MIN) return jsCrossEntropyBackward(logp, targets, rows, classes, ignore, eps, scale, gx);
  dispatchRows(WASM_TASKS, 'wasmCrossEntropyBackwardRowRange', { logp, targets, classes, ignore, eps, scale, gx }, rows, 1, WASM_EXP_COST * rows * classes);
};

/** Row losses on the pool with the smoothing term's Σ logp in f32 lanes (not the js kernel's bits), summed in row order here. */
export const wasmCrossEntropyLoss: Backend['crossEntropyLoss'] = (logp, targets, rows, classes, ignore, eps) => {
  if (rows * classes < WASM_ROWS_MIN) return jsCrossEntropyLoss(logp, targets, rows, classes, ignore, eps);
  return rowLossTotal(targets, rows, ignore, (losses) => dispatchRows(WASM_TASKS, 'wasmCrossEntropyLossRowRange', { logp, targets, classes, ignore, eps, losses }, rows, 1, (eps > 0 ? 1 : 0) * rows * classes));
};

/**
 * Loss and gradient in one dispatch, each thread sweeping its rows block by block (rows.ts
 * crossEntropyWithGradRows): the bits of wasmSoftmaxRows, wasmCrossEntropyLoss and
 * wasmCrossEntropyBackward in turn, with the logits read once and the gradient written once.
 */
export const wasmCrossEntropyWithGrad: Backend['crossEntropyWithGrad'] = (x, targets, rows, classes, ignore, eps, scale, gx) => {
  if (rows * classes < WASM_ROWS_MIN) return crossEntropyInTurn({ softmaxRows: wasmSoftmaxRows, crossEntropyLoss: wasmCrossEntropyLoss, crossEntropyBackward: wasmCrossEntropyBackward }, x, targets, rows, classes, ignore, eps, scale, gx);
  return rowLossTotal(targets, rows, ignore, (losses) => dispatchRows(WASM_TASKS, 'wasmCrossEntropyWithGradRowRange', { x, targets, classes, ignore, eps, scale, gx, losses }, rows, 1, 2 * WASM_EXP_COST * rows * classes));
};
