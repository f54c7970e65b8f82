/**
 * Where the wasm backend runs a kernel: on its wasm module or the js kernel, and on the calling
 * thread or split over the worker pool. The size cut-offs below choose wasm over js; the costs
 * price a call in the pool's units (PARALLEL_MIN_COST in threads/pool.ts, rough js FLOP
 * equivalents), so that a dispatch is split only when it repays the hand-over. Every choice
 * depends on the whole call's shape, never on a thread's chunk, so each thread of a split takes
 * it alike and results keep their bits for any thread count.
 */

/** Below this many elements the js loop is cheaper than the copies and the call into wasm. */
export const MAP_MIN = 256;

/** Dropout masks below this many elements stay on the js loop; larger ones split in blocks of MASK_ALIGN (one keepMask call of 4 × 4096). */
export const MASK_MIN = 1024;

/** Elements per chunk of a split dropout mask: whole kernel blocks (4 lanes × 4096 draws). */
export const MASK_ALIGN = 16384;

/**
 * Split over the pool when every operand lies in the arena (workers then use them in place).
 * Rough cost per element, against PARALLEL_MIN_COST: a streaming pass is memory-bound at
 * ~0.2–1.5 ns per element, a dispatch costs ~40 µs, so only passes of 2^17+ elements leave the
 * calling thread. Element chunks start on 64-byte lines.
 */
export const STREAM_COST = 8;

/** Elements per chunk start of a streaming split (64-byte lines). */
export const STREAM_ALIGN = 16;

/** Per-element costs of layer norm's dx (wasm), dγ and dβ (js columns). */
export const WASM_LAYER_NORM_BACKWARD_COSTS = [2 * STREAM_COST, 8 * STREAM_COST, 2 * STREAM_COST] as const;

/**
 * Below this m·n·k the JS kernel is faster (the call, copies and packing of a tiny product
 * outweigh its arithmetic): measured crossover between 4·4·4 (wasm 0.88× js) and 5·5·5 (2.0×).
 * The choice depends on the whole product's shape only, so every thread of a split takes it alike.
 */
export const WASM_MIN_VOLUME = 100;

/**
 * The pool's split threshold (PARALLEL_MIN_COST) is in flops of the js kernels; the wasm GEMM
 * runs about this many times as many flops per second, so its products count that much less.
 * Without it, products of a few million flops (tens of µs here) were split although a dispatch
 * costs about as much: batched beam search ran 8% slower on 2 threads than with them kept whole.
 */
export const WASM_GEMM_COST_DIVISOR = 8;

/** A wasm product's cost in the pool's units. */
export const gemmCost = (m: number, n: number, k: number, batches = 1): number => (2 * m * n * k * batches) / WASM_GEMM_COST_DIVISOR;

/**
 * Below these sizes the js kernels are faster (docs/wasm.md, small products): forward and dX
 * when tokens × kept weights < WASM_NM_MIN_VOLUME; kept dW (whose chunks pad to 16 tokens)
 * also below WASM_NM_DW_MIN_ROWS tokens. The choice depends on the product's shape only, so
 * every thread count takes it alike.
 */
export const WASM_NM_MIN_VOLUME = 256;

/** Kept dW below this many tokens stays on js (see WASM_NM_MIN_VOLUME). */
export const WASM_NM_DW_MIN_ROWS = 4;

/**
 * Row kernels (softmax, its backward, cross-entropy backward) below this many elements stay on
 * the js kernels, where a call's copies would outweigh its arithmetic.
 */
export const WASM_ROWS_MIN = 256;

/** Rough FLOP equivalents per element (a polynomial exp is a dozen f32x4 ops over 4 lanes). */
export const WASM_EXP_COST = 4;
