import { dispatchBatchedGemm, type BatchedGemmArgs } from '../backend.js';
import { MR } from './gemm.js';
import { type MatmulSpec } from '../backend.js';
import { dispatchRows } from '../threads/pool.js';
import { JS_TASKS } from './tasks.js';

export type { BatchedGemmArgs } from '../backend.js';

/**
 * One C (+)= op(A)·op(B) product at the given offsets: the js backend's single entry point of
 * every dense product. Large products are split by rows over the worker pool.
 */
export function gemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec): void {
  dispatchRows(JS_TASKS, 'gemmRows', { a, aOff, b, bOff, c, cOff, spec }, spec.m, MR, 2 * spec.m * spec.n * spec.k);
}

/**
 * Many independent products of one shape (attention heads, batches): split over batches when
 * there are several (dispatchBatchedGemm), else over rows.
 */
export function gemmBatched(args: BatchedGemmArgs): void {
  dispatchBatchedGemm(args, gemm, (all) => {
    const nb = all.aOffs.length;
    const { m, n, k } = all.spec;
    dispatchRows(JS_TASKS, 'gemmBatches', all, nb, 1, 2 * m * n * k * nb);
  });
}
