/**
 * The wasm N:M kernels behind the backend's signatures (forward, dX, kept-position dW), split
 * over the worker pool: forward and dX by token rows, dW by weight rows or input columns. A worker that runs one
 * compiles its own instance on first use (threadNm), as for the wasm GEMM. The row tasks
 * (wasmNmGatherRows, wasmNmKeptGradRows, wasmNmKeptGradCols in ./nm) are entries of the wasm task table (./tasks.ts).
 *
 * The pattern's structure (row CSR, transposed CSR and its gather permutation) is the one both
 * backends share (../nm-structure.ts patternLayout), cached once per `indices` array; only the
 * values move per call.
 */
import type { NMWeight } from '../backend.js';
import { jsBackend } from '../js/backend.js';
import { gatherBy } from '../nm-structure.js';
import { allocF32Uninit, releaseOwned } from '../memory/storage.js';
import { dispatchRows } from '../threads/pool.js';
import { WASM_TASKS } from './tasks.js';
import { DEFAULT_NM_SHAPE } from './nm-module.js';
import { patternLayout } from '../nm-structure.js';
import { WASM_NM_DW_MIN_ROWS, WASM_NM_MIN_VOLUME } from './placement.js';

/** Token rows per split unit: one spmm block, so no thread runs a partial block mid-range. */
export const WASM_NM_ROW_BLOCK = 4 * DEFAULT_NM_SHAPE.tv;

/** Input columns per split unit of kept dW's column split (whole 4×4 transposes). */
export const WASM_NM_DW_COL_BLOCK = 16;
/** y [rows, out] = x [rows, in] · Wᵀ (+ bias). */
export function wasmNmForward(x: Float32Array, rows: number, w: NMWeight, bias: Float32Array | null, y: Float32Array): void {
  if (rows * w.values.length < WASM_NM_MIN_VOLUME) return jsBackend.nmForward(x, rows, w, bias, y);
  const { rowPtr, col } = patternLayout(w).rows;
  dispatchRows(WASM_TASKS, 'wasmNmGatherRows', { x, inDim: w.shape[1], rowPtr, col, val: w.values, y, bias }, rows, WASM_NM_ROW_BLOCK, 2 * rows * w.values.length);
}

/** dX [rows, in] = dY [rows, out] · W, through the transposed pattern. */
export function wasmNmInputGrad(dy: Float32Array, rows: number, w: NMWeight): Float32Array {
  if (rows * w.values.length < WASM_NM_MIN_VOLUME) return jsBackend.nmInputGrad(dy, rows, w);
  const t = patternLayout(w).transposed;
  // Both are written in full (every gathered value, every element of every token row): no zero-fill.
  const val = allocF32Uninit(t.source.length);
  gatherBy(w.values, t.source, val);
  const dx = allocF32Uninit(rows * w.shape[1]);
  dispatchRows(WASM_TASKS, 'wasmNmGatherRows', { x: dy, inDim: w.shape[0], rowPtr: t.rowPtr, col: t.col, val, y: dx, bias: null }, rows, WASM_NM_ROW_BLOCK, 2 * rows * val.length);
  releaseOwned(val); // scratch of this call (returned at once inside the backward sweep)
  return dx;
}

/** dYᵀ·X at the kept positions only, in W's storage order ([nnz]). */
export function wasmNmKeptWeightGrad(dy: Float32Array, x: Float32Array, rows: number, w: NMWeight): Float32Array {
  if (rows < WASM_NM_DW_MIN_ROWS || rows * w.values.length < 2 * WASM_NM_MIN_VOLUME) return jsBackend.nmKeptWeightGrad(dy, x, rows, w);
  const { rowPtr, col } = patternLayout(w).rows;
  const grad = allocF32Uninit(col.length); // every entry is written by exactly one row or column block
  const [outDim, inDim] = w.shape;
  const args = { dy, x, rows, inDim, rowPtr, col, grad };
  // Each thread transposes the token chunks of the operand it does not split: split the wider
  // one (input columns when inDim > outDim), so the copy every thread makes is the narrower.
  // Either split gives the same bits (each entry's sum runs over token chunks in order).
  if (inDim > outDim) dispatchRows(WASM_TASKS, 'wasmNmKeptGradCols', args, inDim, WASM_NM_DW_COL_BLOCK, 2 * rows * col.length);
  else dispatchRows(WASM_TASKS, 'wasmNmKeptGradRows', args, outDim, 1, 2 * rows * col.length);
  return grad;
}
