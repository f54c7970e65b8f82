import { MR, matmulRows, type MatmulSpec } from './matmul.js';
import { defineTask, parallelRows } from './threads/pool.js';

export interface GemmArgs {
  a: Float32Array;
  aOff: number;
  b: Float32Array;
  bOff: number;
  c: Float32Array;
  cOff: number;
  spec: MatmulSpec;
}

export function gemmRows(args: GemmArgs, rowStart: number, rowEnd: number): void {
  matmulRows(args.a, args.aOff, args.b, args.bOff, args.c, args.cOff, args.spec, rowStart, rowEnd);
}

const GEMM = defineTask<GemmArgs>(import.meta.url, 'gemmRows', gemmRows);

/**
 * One C (+)= op(A)·op(B) product at the given offsets: the single entry point of every dense
 * product in nmgrad. Large products are split by rows over the worker pool.
 */
export function gemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec): void {
  parallelRows(GEMM, { a, aOff, b, bOff, c, cOff, spec }, spec.m, MR, 2 * spec.m * spec.n * spec.k);
}

export interface BatchedGemmArgs {
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  /** Element offsets of each batch's matrices. */
  aOffs: Int32Array;
  bOffs: Int32Array;
  cOffs: Int32Array;
  spec: MatmulSpec;
}

export function gemmBatches(args: BatchedGemmArgs, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    matmulRows(args.a, args.aOffs[i]!, args.b, args.bOffs[i]!, args.c, args.cOffs[i]!, args.spec, 0, args.spec.m);
  }
}

const GEMM_BATCHED = defineTask<BatchedGemmArgs>(import.meta.url, 'gemmBatches', gemmBatches);

/**
 * Many independent products of one shape (attention heads, batches). Split over batches when
 * there are several, else over rows. Offsets may repeat (broadcast operands) only where C is
 * accumulated by a single thread: callers pass distinct cOffs unless spec.accumulate is false.
 */
export function gemmBatched(args: BatchedGemmArgs): void {
  const nb = args.aOffs.length;
  const { m, n, k } = args.spec;
  if (nb === 1) {
    gemm(args.a, args.aOffs[0]!, args.b, args.bOffs[0]!, args.c, args.cOffs[0]!, args.spec);
    return;
  }
  parallelRows(GEMM_BATCHED, args, nb, 1, 2 * m * n * k * nb);
}
