/**
 * The wasm N:M kernels behind the backend's signatures (forward, dX, kept-position dW), split
 * over the worker pool: forward and dX by token rows, dW by weight rows. A worker that runs one
 * compiles its own instance on first use (threadNm), as for the wasm GEMM. The row tasks
 * (wasmNmGatherRows, wasmNmKeptGradRows in ./nm) are entries of the pool's task table.
 */
import { allocF32, allocI32 } from '../storage.js';
import { parallelRows } from '../threads/pool.js';
import { DEFAULT_NM_SHAPE } from './nm-module.js';
import { wasmNmGatherRows, wasmNmKeptGradRows } from './nm.js';

export { wasmNmGatherRows, wasmNmKeptGradRows };

/** The backend-neutral N:M weight: kept values (rows × groups × n) and their ascending offsets. */
export interface NMWeightView {
  readonly shape: readonly [number, number];
  readonly n: number;
  readonly m: number;
  readonly values: Float32Array;
  readonly indices: Uint8Array;
}

/** Token rows per split unit: one spmm block, so no thread runs a partial block mid-range. */
export const WASM_NM_ROW_BLOCK = 4 * DEFAULT_NM_SHAPE.tv;

interface PatternLayout {
  rowPtr: Int32Array;
  col: Int32Array;
  /** The transposed pattern (input features as rows) and the storage entry each of its entries reads. */
  tRowPtr: Int32Array;
  tCol: Int32Array;
  tSource: Int32Array;
}

/** Layouts per pattern, keyed by its offsets array (patterns are immutable; values are not). */
const layouts = new WeakMap<Uint8Array, PatternLayout>();

function layoutOf(w: NMWeightView): PatternLayout {
  const cached = layouts.get(w.indices);
  if (cached !== undefined) return cached;
  const [rows, cols] = w.shape;
  const { n, m, indices } = w;
  const perRow = (cols / m) * n;
  const nnz = indices.length;
  const rowPtr = allocI32(rows + 1);
  for (let i = 0; i <= rows; i++) rowPtr[i] = i * perRow;
  const col = allocI32(nnz);
  for (let e = 0; e < nnz; e++) col[e] = (Math.floor(e / n) * m + indices[e]!) % cols;
  const tRowPtr = allocI32(cols + 1);
  for (let e = 0; e < nnz; e++) tRowPtr[col[e]! + 1]!++;
  for (let c = 0; c < cols; c++) tRowPtr[c + 1]! += tRowPtr[c]!;
  const fill = Int32Array.from(tRowPtr.subarray(0, cols));
  const tCol = allocI32(nnz);
  const tSource = new Int32Array(nnz);
  for (let e = 0; e < nnz; e++) {
    const p = fill[col[e]!]!++;
    tCol[p] = Math.floor(e / perRow);
    tSource[p] = e;
  }
  const layout = { rowPtr, col, tRowPtr, tCol, tSource };
  layouts.set(indices, layout);
  return layout;
}

/** y [rows, out] = x [rows, in] · Wᵀ (+ bias). */
export function wasmNmForward(x: Float32Array, rows: number, w: NMWeightView, bias: Float32Array | null, y: Float32Array): void {
  const { rowPtr, col } = layoutOf(w);
  parallelRows('wasmNmGatherRows', { x, inDim: w.shape[1], rowPtr, col, val: w.values, y, bias }, rows, WASM_NM_ROW_BLOCK, 2 * rows * w.values.length);
}

/** dX [rows, in] = dY [rows, out] · W, through the transposed pattern. */
export function wasmNmInputGrad(dy: Float32Array, rows: number, w: NMWeightView): Float32Array {
  const { tRowPtr, tCol, tSource } = layoutOf(w);
  const val = allocF32(tSource.length);
  for (let p = 0; p < tSource.length; p++) val[p] = w.values[tSource[p]!]!;
  const dx = allocF32(rows * w.shape[1]);
  parallelRows('wasmNmGatherRows', { x: dy, inDim: w.shape[0], rowPtr: tRowPtr, col: tCol, val, y: dx, bias: null }, rows, WASM_NM_ROW_BLOCK, 2 * rows * val.length);
  return dx;
}

/** dYᵀ·X at the kept positions only, in W's storage order ([nnz]). */
export function wasmNmKeptWeightGrad(dy: Float32Array, x: Float32Array, rows: number, w: NMWeightView): Float32Array {
  const { rowPtr, col } = layoutOf(w);
  const grad = allocF32(col.length);
  parallelRows('wasmNmKeptGradRows', { dy, x, rows, inDim: w.shape[1], rowPtr, col, grad }, w.shape[0], 1, 2 * rows * col.length);
  return grad;
}
