/**
 * The wasm GEMM as worker-pool tasks. A worker that runs one imports this module, and the
 * first call there compiles and instantiates its own copy of the module (threadGemm), so each
 * thread has a private instance and memory without any change to the pool.
 */
import type { BatchedGemmArgs, GemmArgs } from '../gemm.js';
import { matmulRows, type MatmulSpec } from '../matmul.js';
import { defineTask, parallelRows } from '../threads/pool.js';
import { DEFAULT_SHAPE } from './gemm-module.js';
import { wasmMatmulRows } from './gemm.js';

/** Row split unit: one register block of rows (any split gives the same bits; this one avoids edge tiles). */
export const WASM_MR = DEFAULT_SHAPE.mr;

/**
 * Below this m·n·k the JS kernel is faster (the call, copies and packing of a tiny product
 * outweigh its arithmetic): measured crossover between 4·4·4 (wasm 0.83× js) and 5·5·5 (2.1×).
 * The choice depends on the whole product's shape only, so every thread of a split takes it alike.
 */
export const WASM_MIN_VOLUME = 100;

function rowsKernel(spec: MatmulSpec): typeof matmulRows {
  return spec.m * spec.n * spec.k < WASM_MIN_VOLUME ? matmulRows : wasmMatmulRows;
}

export function wasmGemmRows(args: GemmArgs, rowStart: number, rowEnd: number): void {
  rowsKernel(args.spec)(args.a, args.aOff, args.b, args.bOff, args.c, args.cOff, args.spec, rowStart, rowEnd);
}

export function wasmGemmBatches(args: BatchedGemmArgs, start: number, end: number): void {
  const rows = rowsKernel(args.spec);
  for (let i = start; i < end; i++) rows(args.a, args.aOffs[i]!, args.b, args.bOffs[i]!, args.c, args.cOffs[i]!, args.spec, 0, args.spec.m);
}

const WASM_GEMM = defineTask<GemmArgs>(import.meta.url, 'wasmGemmRows', wasmGemmRows);
const WASM_GEMM_BATCHED = defineTask<BatchedGemmArgs>(import.meta.url, 'wasmGemmBatches', wasmGemmBatches);

/** gemm() of ../gemm.ts on the wasm kernel: large products split by rows over the pool. */
export function wasmGemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: GemmArgs['spec']): void {
  parallelRows(WASM_GEMM, { a, aOff, b, bOff, c, cOff, spec }, spec.m, WASM_MR, 2 * spec.m * spec.n * spec.k);
}

/** gemmBatched() of ../gemm.ts on the wasm kernel: split over batches when there are several. */
export function wasmGemmBatched(args: BatchedGemmArgs): void {
  const nb = args.aOffs.length;
  const { m, n, k } = args.spec;
  if (nb === 1) {
    wasmGemm(args.a, args.aOffs[0]!, args.b, args.bOffs[0]!, args.c, args.cOffs[0]!, args.spec);
    return;
  }
  parallelRows(WASM_GEMM_BATCHED, args, nb, 1, 2 * m * n * k * nb);
}
