/**
 * What another backend may take from the js backend besides the backend object (./backend.ts):
 * the single-thread loops it falls back to inside its own kernels and tasks, and the argument
 * records of the row-range tasks it shares with js. Nothing here imports the pool, so modules
 * that run in a worker may import it. Every other file of js/ is private to it (the layout
 * fitness test, test/kernels/layout.test.ts, holds both backends to that).
 */
export { addRowVector } from './elementwise.js';
export { matmulRows } from './gemm.js';
export { adamUpdate } from './optim.js';
export { columnSumsRange } from './reduce.js';
export { crossEntropyBackward, crossEntropyLoss, logSoftmaxBackwardRows, rowLossesOf, rowLossTotal, smoothedRowLoss, softmaxBackwardRows, softmaxRows } from './rows.js';
export type { ColumnSumArgs, DropoutMaskArgs, LayerNormBackwardArgs } from './elementwise-ranges.js';
export type { GatherArgs } from './nm.js';
export type { AdamArgs, CrossEntropyBackwardArgs, CrossEntropyLossArgs, LayerNormArgs, SoftmaxArgs, SoftmaxBackwardArgs } from './rows-ranges.js';
