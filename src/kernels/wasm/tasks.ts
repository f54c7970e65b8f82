/**
 * The wasm backend's task table: every row-range kernel its dispatch files (`*-dispatch.ts`,
 * backend.ts) hand to the pool; each thread that runs one instantiates its own copy of the
 * module on the shared arena the first time. Adding a wasm task is one entry here; its module
 * must not import the pool.
 */
import { wasmGemmBatches, wasmGemmRows } from './gemm.js';
import { wasmNmGatherRows, wasmNmKeptGradCols, wasmNmKeptGradRows } from './nm.js';
import { wasmAdamRange, wasmColumnSumsColRange, wasmDropoutMaskRange, wasmLayerNormBackwardRange, wasmLayerNormRowRange, wasmMapStreamRange, wasmMaskedFillRowRange, wasmPermuteRowRange } from './map.js';
import { wasmCrossEntropyBackwardRowRange, wasmCrossEntropyLossRowRange, wasmCrossEntropyWithGradRowRange, wasmSoftmaxBackwardRowRange, wasmSoftmaxRowRange } from './rows.js';

export const WASM_TASKS = {
  wasmGemmRows,
  wasmGemmBatches,
  wasmNmGatherRows,
  wasmNmKeptGradRows,
  wasmNmKeptGradCols,
  wasmSoftmaxRowRange,
  wasmSoftmaxBackwardRowRange,
  wasmCrossEntropyBackwardRowRange,
  wasmCrossEntropyLossRowRange,
  wasmCrossEntropyWithGradRowRange,
  wasmMapStreamRange,
  wasmPermuteRowRange,
  wasmMaskedFillRowRange,
  wasmLayerNormRowRange,
  wasmLayerNormBackwardRange,
  wasmDropoutMaskRange,
  wasmAdamRange,
  wasmColumnSumsColRange,
};
