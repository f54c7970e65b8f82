/**
 * The `js` backend: plain TypeScript kernels, the reference every other backend is checked
 * against. Large products, the N:M kernels and the row-wise and elementwise kernels are split
 * by output rows (elements, columns) over the worker pool (../threads/), so
 * results are bitwise identical for any thread count.
 */
import { crossEntropyInTurn, registerBackend, type Backend } from '../backend.js';
import { divScalar } from './elementwise.js';
import { gemm, gemmBatched } from './gemm-dispatch.js';
import { checkGemmBias } from '../backend.js';
import { countNonZero, maskScale, nmGather, nmScatter, prunedGrad, topMagnitudeMask } from './nm.js';
import { sgdUpdate } from './optim.js';
import { nmForward, nmInputGrad, nmKeepOffsetsThreaded, nmKeptWeightGrad } from './nm-dispatch.js';
import { addIntoThreaded, addRowVectorThreaded, binaryBackwardThreaded, binaryThreaded, columnSumsThreaded, dropoutMaskThreaded, expandThreaded, gatherRowsThreaded, layerNormBackwardThreaded, scatterAddRowsThreaded, mulIntoThreaded, permuteThreaded, selectGradThreaded, unaryBackwardThreaded, unaryThreaded, whereThreaded } from './elementwise-dispatch.js';
import { adamUpdateThreaded, crossEntropyBackwardThreaded, crossEntropyLossThreaded, layerNormRowsThreaded, logSoftmaxBackwardRowsThreaded, softmaxBackwardRowsThreaded, softmaxRowsThreaded } from './rows-dispatch.js';
import { maxAxisBackward, maxAxisKernel, repeatAxis, scaleInPlace, sumAxisKernel, sumSquares } from './reduce.js';
import { copyBlocks, maskedFillKernel, sumToShape } from './movement.js';
import { toNested } from '../shape.js';
import { allocF32, allocF32Uninit, allocI32 } from '../memory/storage.js';

export const jsBackend: Backend = {
  name: 'js',
  // FFN shape [2048×256]·[1024×256]ᵀ, 1 thread, fwd + dX + kept dW against dense: 5:8 1.04×, 3:4 0.93×.
  nmCompressedMaxDensity: 5 / 8,
  alloc: allocF32,
  allocUninit: allocF32Uninit,
  allocI32,
  copy(src) {
    const out = allocF32Uninit(src.length); // written in full
    out.set(src);
    return out;
  },
  addInto: addIntoThreaded,
  toNested,

  gemm,
  gemmBias(a, b, c, spec, bias) {
    checkGemmBias('gemmBias', spec, bias);
    gemm(a, 0, b, 0, c, 0, spec);
    addRowVectorThreaded(c, spec.m, spec.n, bias);
  },
  gemmBatched,
  addRowVector: addRowVectorThreaded,
  columnSums: columnSumsThreaded,

  binary: binaryThreaded,
  binaryBackward: binaryBackwardThreaded,
  unary: unaryThreaded,
  unaryBackward: unaryBackwardThreaded,
  divScalar,
  where: whereThreaded,
  selectGrad: selectGradThreaded,

  sumAxis: sumAxisKernel,
  repeatAxis,
  maxAxis: maxAxisKernel,
  maxAxisBackward,
  sumSquares,
  scaleInPlace,

  softmaxRows: softmaxRowsThreaded,
  softmaxBackwardRows: softmaxBackwardRowsThreaded,
  logSoftmaxBackwardRows: logSoftmaxBackwardRowsThreaded,
  layerNormRows: layerNormRowsThreaded,
  layerNormBackwardRows: layerNormBackwardThreaded,
  crossEntropyLoss: crossEntropyLossThreaded,
  crossEntropyBackward: crossEntropyBackwardThreaded,
  crossEntropyWithGrad: (...args) => crossEntropyInTurn({ softmaxRows: softmaxRowsThreaded, crossEntropyLoss: crossEntropyLossThreaded, crossEntropyBackward: crossEntropyBackwardThreaded }, ...args),

  permute: permuteThreaded,
  expand: expandThreaded,
  maskedFill: maskedFillKernel,
  sumToShape,
  copyBlocks,

  gatherRows: gatherRowsThreaded,
  scatterAddRows: scatterAddRowsThreaded,
  dropoutMask: dropoutMaskThreaded,

  nmKeepOffsets: nmKeepOffsetsThreaded,
  nmForward,
  nmInputGrad,
  nmKeptWeightGrad,
  nmGather: (dense, w, values) => nmGather(dense, w.n, w.m, w.indices, values),
  nmScatter: (values, w, dense) => nmScatter(values, w.n, w.m, w.indices, dense),
  mulInto: mulIntoThreaded,
  maskScale,
  prunedGrad,
  countNonZero,
  topMagnitudeMask,

  sgdUpdate,
  adamUpdate: adamUpdateThreaded,
};

registerBackend(jsBackend);

/** The layer-norm backward split (dx by rows, dγ and dβ by columns) over any backend's range task. */
export { layerNormBackwardSplit } from './elementwise-dispatch.js';
