/**
 * The typed task table: every kernel the worker pool can run, imported statically by the pool
 * and by the worker, so a renamed or removed task is a compile error, never a lookup failure
 * inside a worker. A task is `fn(args, rowStart, rowEnd)` over a row (or batch) range and must
 * live in a module that does not import the pool (the wasm tasks live in wasm/gemm.ts,
 * wasm/nm.ts, wasm/rows.ts and wasm/map.ts, their pool wrappers in the *-task.ts files). Adding a task (for any backend) is
 * one entry here.
 */
import { addRange, addRowVectorRange, binaryRange, columnSumsColRange, divGradBRange, dropoutMaskRange, expandRange, gatherRowsRange, layerNormBackwardRange, mulRange, permuteRange, scatterAddColRange, selectGradRange, unaryBackwardRange, unaryRange, whereRange } from '../elementwise-tasks.js';
import { gemmBatches, gemmRows } from '../matmul.js';
import { keptGradRows, nmKeepOffsetsRows, sparseGatherRows, transposeRows } from '../nm.js';
import { adamRange, crossEntropyBackwardRowRange, crossEntropyLossRowRange, layerNormRowRange, softmaxBackwardRowRange, softmaxRowRange } from '../row-tasks.js';
import { wasmGemmBatches, wasmGemmRows } from '../wasm/gemm.js';
import { wasmNmGatherRows, wasmNmKeptGradCols, wasmNmKeptGradRows } from '../wasm/nm.js';
import { wasmAdamRange, wasmColumnSumsColRange, wasmDropoutMaskRange, wasmLayerNormBackwardRange, wasmLayerNormRowRange, wasmMapStreamRange, wasmMaskedFillRowRange, wasmPermuteRowRange } from '../wasm/map.js';
import { wasmCrossEntropyBackwardRowRange, wasmSoftmaxBackwardRowRange, wasmSoftmaxRowRange } from '../wasm/rows.js';
import { exitingAfterRows, exitingRows, fillValueRows, stallingRows, throwingRows } from './faults.js';

export const TASKS = {
  gatherRowsRange,
  scatterAddColRange,
  gemmRows,
  gemmBatches,
  sparseGatherRows,
  keptGradRows,
  nmKeepOffsetsRows,
  transposeRows,
  softmaxRowRange,
  softmaxBackwardRowRange,
  layerNormRowRange,
  crossEntropyBackwardRowRange,
  crossEntropyLossRowRange,
  adamRange,
  mulRange,
  addRange,
  divGradBRange,
  unaryRange,
  unaryBackwardRange,
  binaryRange,
  expandRange,
  permuteRange,
  addRowVectorRange,
  columnSumsColRange,
  layerNormBackwardRange,
  whereRange,
  dropoutMaskRange,
  selectGradRange,
  wasmGemmRows,
  wasmGemmBatches,
  wasmNmGatherRows,
  wasmNmKeptGradRows,
  wasmNmKeptGradCols,
  wasmSoftmaxRowRange,
  wasmSoftmaxBackwardRowRange,
  wasmCrossEntropyBackwardRowRange,
  wasmMapStreamRange,
  wasmPermuteRowRange,
  wasmMaskedFillRowRange,
  wasmLayerNormRowRange,
  wasmLayerNormBackwardRange,
  wasmDropoutMaskRange,
  wasmAdamRange,
  wasmColumnSumsColRange,
  throwingRows,
  exitingRows,
  exitingAfterRows,
  stallingRows,
  fillValueRows,
};

export type TaskName = keyof typeof TASKS;
export type TaskArgs<K extends TaskName> = Parameters<(typeof TASKS)[K]>[0];
