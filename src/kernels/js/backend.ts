/**
 * The `js` backend: plain TypeScript kernels, the reference every other backend is checked
 * against. Large products, the N:M kernels and the row-wise and elementwise kernels are split
 * by output rows (elements, columns) over this backend's private worker pool (threads/), so
 * results are bitwise identical for any thread count.
 */
import { registerBackend, type Backend, type NMWeight } from '../backend.js';
import { divScalar } from './elementwise.js';
import { gemm, gemmBatched } from './gemm-dispatch.js';
import { checkGemmBias } from './gemm.js';
import { GATHER_ROW_BLOCK, countNonZero, maskScale, nmGather, nmKeepOffsets, nmScatter, prunedGrad, topMagnitudeMask, type GatherArgs } from './nm.js';
import { gatherBy, nmRowsCsr, transposeCsr, type Csr } from '../nm-structure.js';
import { sgdUpdate } from './optim.js';
import { addIntoThreaded, addRowVectorThreaded, binaryBackwardThreaded, binaryThreaded, columnSumsThreaded, dropoutMaskThreaded, expandThreaded, gatherRowsThreaded, layerNormBackwardThreaded, scatterAddRowsThreaded, mulIntoThreaded, permuteThreaded, selectGradThreaded, unaryBackwardThreaded, unaryThreaded, whereThreaded } from './elementwise-dispatch.js';
import { adamUpdateThreaded, crossEntropyBackwardThreaded, crossEntropyLossThreaded, layerNormRowsThreaded, logSoftmaxBackwardRowsThreaded, softmaxBackwardRowsThreaded, softmaxRowsThreaded } from './rows-dispatch.js';
import { maxAxisBackward, maxAxisKernel, repeatAxis, scaleInPlace, sumAxisKernel, sumSquares } from './reduce.js';
import { copyBlocks, maskedFillKernel, sumToShape, toNested } from '../shape.js';
import { allocF32, allocF32Uninit, allocI32, releaseOwned } from '../memory/storage.js';
import { dispatchRows } from '../threads/pool.js';
import { JS_TASKS } from './tasks.js';

/** Threaded row-blocked CSR × dense gather over all `rows`. */
function sparseGather(args: GatherArgs, rows: number): void {
  dispatchRows(JS_TASKS, 'sparseGatherRows', args, rows, GATHER_ROW_BLOCK, 2 * rows * args.val.length);
}

/** Threaded out-of-place transpose of a [rows, cols] matrix into dst [cols, rows]. */
function transposeInto(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  dispatchRows(JS_TASKS, 'transposeRows', { src, rows, cols, dst }, cols, 32, 64 * rows * cols);
}

interface PatternLayout {
  rows: Csr;
  transposed: Csr & { source: Int32Array };
}

/** CSR layouts per pattern, keyed by its (immutable) offsets array. */
const layouts = new WeakMap<Uint8Array, PatternLayout>();

function layoutOf(w: NMWeight): PatternLayout {
  let l = layouts.get(w.indices);
  if (l === undefined) {
    const rows = nmRowsCsr(w.shape, w.n, w.m, w.indices, allocI32);
    l = { rows, transposed: transposeCsr(w.shape[0], w.shape[1], rows, allocI32) };
    layouts.set(w.indices, l);
  }
  return l;
}

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

  permute: permuteThreaded,
  expand: expandThreaded,
  maskedFill: maskedFillKernel,
  sumToShape,
  copyBlocks,

  gatherRows: gatherRowsThreaded,
  scatterAddRows: scatterAddRowsThreaded,
  dropoutMask: dropoutMaskThreaded,

  // Split by weight rows: SSD recomputes every sparse layer's mask at each step.
  nmKeepOffsets: (data, rows, cols, n, m, out) => dispatchRows(JS_TASKS, 'nmKeepOffsetsRows', { data, rows, cols, n, m, out }, rows, 1, 8 * rows * cols),
  nmForward(x, rows, w, bias, y) {
    const { rowPtr, col } = layoutOf(w).rows;
    sparseGather({ x, inDim: w.shape[1], rowPtr, col, val: w.values, y, bias }, rows);
  },
  nmInputGrad(dy, rows, w) {
    const t = layoutOf(w).transposed;
    const val = allocF32(t.source.length);
    gatherBy(w.values, t.source, val);
    const dx = allocF32(rows * w.shape[1]);
    sparseGather({ x: dy, inDim: w.shape[0], rowPtr: t.rowPtr, col: t.col, val, y: dx, bias: null }, rows);
    releaseOwned(val); // scratch of this call (returned at once inside the backward sweep)
    return dx;
  },
  nmKeptWeightGrad(dy, x, rows, w) {
    const [outDim, inDim] = w.shape;
    const { rowPtr, col } = layoutOf(w).rows;
    const dyT = allocF32(rows * outDim);
    const xT = allocF32(rows * inDim);
    transposeInto(dy, rows, outDim, dyT);
    transposeInto(x, rows, inDim, xT);
    const grad = allocF32(col.length);
    dispatchRows(JS_TASKS, 'keptGradRows', { dyT, xT, rows, rowPtr, col, grad }, outDim, 1, 2 * rows * col.length);
    releaseOwned(dyT);
    releaseOwned(xT);
    return grad;
  },
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

/** The CSR structure the js backend runs a pattern with (benchmarks and tests). */
export function jsPatternLayout(w: NMWeight): PatternLayout {
  return layoutOf(w);
}
