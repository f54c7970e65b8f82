/**
 * The js backend's task table: every row-range kernel (`fn(args, rowStart, rowEnd)`) its
 * dispatch files (`*-dispatch.ts`) hand to the pool. The calling thread runs a task from this
 * table, the workers from the worker entry's (../worker.ts), which includes it. Adding a js
 * task is one entry here; its module must not import the pool.
 */
import { addRange, addRowVectorRange, binaryRange, columnSumsColRange, divGradBRange, dropoutMaskRange, expandRange, gatherRowsRange, layerNormBackwardRange, mulRange, permuteRange, scatterAddColRange, selectGradRange, unaryBackwardRange, unaryRange, whereRange } from './elementwise-ranges.js';
import { gemmBatches, gemmRows } from './gemm.js';
import { keptGradRows, nmKeepOffsetsRows, sparseGatherRows, transposeRows } from './nm.js';
import { adamRange, crossEntropyBackwardRowRange, crossEntropyLossRowRange, layerNormRowRange, softmaxBackwardRowRange, softmaxRowRange } from './rows-ranges.js';

export const JS_TASKS = {
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
};
