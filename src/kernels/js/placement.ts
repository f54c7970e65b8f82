/**
 * Where the js backend runs a kernel: on the calling thread or split over the worker pool.
 * One rule decides it for every kernel (threads/pool.ts dispatchRows): a dispatch whose cost
 * estimate reaches PARALLEL_MIN_COST (2¹⁸ rough FLOP equivalents, measured there) is split,
 * anything smaller stays on the calling thread. The dispatch files price their work with the
 * per-element costs below (products count their FLOPs: 2·m·n·k, 2·rows·nnz) and cut it at the
 * alignments below. Any split gives the same bits, so these numbers change speed only.
 */
import type { UnaryOp } from '../backend.js';

/**
 * Cost of one element of a streaming elementwise pass over two or three float32 buffers,
 * estimated from measured times: with it, passes that a 2-thread split measured faster than one
 * thread leave the calling thread (about 175k+ elements against the former 2²⁰ threshold).
 */
export const ELEMENT_COST = 6;

/** An exp / tanh / erf in an elementwise pass: a few streaming elements' worth. */
export const ELEMENT_EXP_COST = 24;

/** Elements per chunk start of an element split (chunk edges on cache lines). */
export const ELEMENT_ALIGN = 256;

/** Per-element cost of each unary op (and of its backward). */
export const UNARY_COST: Record<UnaryOp, number> = {
  neg: ELEMENT_COST, relu: ELEMENT_COST, abs: ELEMENT_COST, pow: 2 * ELEMENT_EXP_COST,
  exp: ELEMENT_EXP_COST, log: ELEMENT_EXP_COST, sqrt: ELEMENT_COST, tanh: ELEMENT_EXP_COST, sigmoid: ELEMENT_EXP_COST,
  gelu: 2 * ELEMENT_EXP_COST, 'gelu-tanh': ELEMENT_EXP_COST,
};

/** Per-element costs of layer norm's dx, dγ and dβ. */
export const LAYER_NORM_BACKWARD_COSTS = [16, 8, 2] as const;

/** Elements per chunk of a split dropout mask (each worker's chunk starts with a jump-ahead). */
export const DROPOUT_ALIGN = 4096;

/** Per-element cost of the exp-bound row kernels (softmax, log-softmax backward, cross-entropy backward); plain row passes count 4–16. */
export const ROW_EXP_COST = 12;

/** Elements per chunk start for the update split (keeps chunk edges on cache lines). */
export const UPDATE_ALIGN = 1024;
