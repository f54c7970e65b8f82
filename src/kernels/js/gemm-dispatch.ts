import type { BatchedGemmArgs } from '../backend.js';
import { MR, type MatmulSpec } from './gemm.js';
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
 * Many independent products of one shape (attention heads, batches). Split over batches when
 * there are several, else over rows. Batches whose outputs coincide (a broadcast operand
 * receiving its gradient) accumulate into the same matrix, so they run one after another.
 */
export function gemmBatched(args: BatchedGemmArgs): void {
  const nb = args.aOffs.length;
  const { m, n, k } = args.spec;
  if (nb === 1) {
    gemm(args.a, args.aOffs[0]!, args.b, args.bOffs[0]!, args.c, args.cOffs[0]!, args.spec);
    return;
  }
  if (new Set(args.cOffs).size !== nb) {
    for (let i = 0; i < nb; i++) gemm(args.a, args.aOffs[i]!, args.b, args.bOffs[i]!, args.c, args.cOffs[i]!, args.spec);
    return;
  }
  dispatchRows(JS_TASKS, 'gemmBatches', args, nb, 1, 2 * m * n * k * nb);
}
