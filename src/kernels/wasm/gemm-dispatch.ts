/**
 * The wasm GEMM over the worker pool. A worker that runs one of these tasks imports
 * ./gemm.js, and the first call there compiles and instantiates its own copy of the module
 * (threadGemm), so each thread has a private instance and memory. The row tasks
 * (wasmGemmRows, wasmGemmBatches in ./gemm) are entries of the wasm task table (./tasks.ts).
 */
import { checkGemmBias, dispatchBatchedGemm } from '../backend.js';
import { dispatchRows } from '../threads/pool.js';
import { WASM_TASKS } from './tasks.js';
import { DEFAULT_SHAPE } from './gemm-module.js';
import type { WasmBatchedGemmArgs, WasmGemmArgs } from './gemm.js';
import { gemmCost } from './placement.js';


/** Row split unit: one register block of rows (any split gives the same bits; this one avoids edge tiles). */
export const WASM_MR = DEFAULT_SHAPE.mr;

/** gemm() on the wasm kernel: large products split by rows over the pool. */
export function wasmGemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: WasmGemmArgs['spec']): void {
  dispatchRows(WASM_TASKS, 'wasmGemmRows', { a, aOff, b, bOff, c, cOff, spec }, spec.m, WASM_MR, gemmCost(spec.m, spec.n, spec.k));
}

/** gemmBias() on the wasm kernel: each row of C starts as the bias, then the product is added. */
export function wasmGemmBias(a: Float32Array, b: Float32Array, c: Float32Array, spec: WasmGemmArgs['spec'], bias: Float32Array): void {
  checkGemmBias('wasm.gemm', spec, bias);
  dispatchRows(WASM_TASKS, 'wasmGemmRows', { a, aOff: 0, b, bOff: 0, c, cOff: 0, spec, bias }, spec.m, WASM_MR, gemmCost(spec.m, spec.n, spec.k));
}

/** gemmBatched() on the wasm kernel: split over batches when there are several (dispatchBatchedGemm), else rows. */
export function wasmGemmBatched(args: WasmBatchedGemmArgs): void {
  dispatchBatchedGemm(args, wasmGemm, (all) => {
    const nb = all.aOffs.length;
    const { m, n, k } = all.spec;
    dispatchRows(WASM_TASKS, 'wasmGemmBatches', all, nb, 1, gemmCost(m, n, k, nb));
  });
}
