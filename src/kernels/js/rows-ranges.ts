/**
 * Row-range tasks for the worker pool over the row kernels and the optimizer updates. Each task
 * runs the single-threaded kernel on the views of rows [rowStart, rowEnd), so every row (or
 * element, for the updates) is computed exactly as one thread would compute it and results are
 * bitwise identical for any thread count. This module must not import the pool (tasks.ts).
 */
import type { AdamParams } from '../backend.js';
import { crossEntropyBackward, crossEntropyRowLosses, layerNormRows, rowLossesOf, logSoftmaxBackwardRows, softmaxBackwardRows, softmaxRows } from './rows.js';
import { adamUpdate } from './optim.js';

const rowsOf = (a: Float32Array, cols: number, r0: number, r1: number): Float32Array => a.subarray(r0 * cols, r1 * cols);

export interface SoftmaxArgs { x: Float32Array; out: Float32Array; cols: number; logSpace: boolean }
export function softmaxRowRange(a: SoftmaxArgs, r0: number, r1: number): void {
  softmaxRows(rowsOf(a.x, a.cols, r0, r1), r1 - r0, a.cols, rowsOf(a.out, a.cols, r0, r1), a.logSpace);
}

export interface SoftmaxBackwardArgs { y: Float32Array; dy: Float32Array; dx: Float32Array; cols: number; log: boolean }
export function softmaxBackwardRowRange(a: SoftmaxBackwardArgs, r0: number, r1: number): void {
  const kernel = a.log ? logSoftmaxBackwardRows : softmaxBackwardRows;
  kernel(rowsOf(a.y, a.cols, r0, r1), rowsOf(a.dy, a.cols, r0, r1), r1 - r0, a.cols, rowsOf(a.dx, a.cols, r0, r1));
}

export interface LayerNormArgs {
  x: Float32Array; cols: number; gamma: Float32Array | null; beta: Float32Array | null; eps: number;
  out: Float32Array; meanOut: Float32Array; rstdOut: Float32Array;
}
export function layerNormRowRange(a: LayerNormArgs, r0: number, r1: number): void {
  layerNormRows(rowsOf(a.x, a.cols, r0, r1), r1 - r0, a.cols, a.gamma, a.beta, a.eps, rowsOf(a.out, a.cols, r0, r1), a.meanOut.subarray(r0, r1), a.rstdOut.subarray(r0, r1));
}

export interface CrossEntropyBackwardArgs {
  logp: Float32Array; targets: Int32Array; classes: number; ignore: number; eps: number; scale: number; gx: Float32Array;
}
export function crossEntropyBackwardRowRange(a: CrossEntropyBackwardArgs, r0: number, r1: number): void {
  crossEntropyBackward(rowsOf(a.logp, a.classes, r0, r1), a.targets.subarray(r0, r1), r1 - r0, a.classes, a.ignore, a.eps, a.scale, rowsOf(a.gx, a.classes, r0, r1));
}

export interface CrossEntropyLossArgs {
  logp: Float32Array; targets: Int32Array; classes: number; ignore: number; eps: number;
  /** Float64 row losses, stored in a Float32Array of twice the rows (so that it can lie in the arena). */
  losses: Float32Array;
}
export function crossEntropyLossRowRange(a: CrossEntropyLossArgs, r0: number, r1: number): void {
  crossEntropyRowLosses(a.logp, a.targets, a.classes, a.ignore, a.eps, rowLossesOf(a.losses), r0, r1);
}

export interface AdamArgs { w: Float32Array; g: Float32Array; m: Float32Array; v: Float32Array; p: AdamParams }
/** Adam over elements [e0, e1) of one parameter buffer. */
export function adamRange(a: AdamArgs, e0: number, e1: number): void {
  adamUpdate(a.w.subarray(e0, e1), a.g.subarray(e0, e1), a.m.subarray(e0, e1), a.v.subarray(e0, e1), a.p);
}
