/**
 * Range tasks for the worker pool over the elementwise kernels, the bias add / bias gradient,
 * broadcasting, permutes and the layer-norm backward. Each runs the single-threaded kernel on
 * elements (or rows, or columns) [start, end), computing each exactly as one thread would, so
 * results are bitwise identical for any thread count. This module must not import the pool
 * (tasks.ts).
 */
import type { BinaryOp, UnaryOp } from '../backend.js';
import { addInto, addRowVector, binaryKernel, divGradB, mulInto, selectGrad, unaryBackwardKernel, unaryKernel, whereKernel } from './elementwise.js';
import { gatherRows, scatterAddRows } from './movement.js';
import { layerNormInputGradRows, layerNormParamGradCols } from './rows.js';
import { Rng } from '../random.js';
import { columnSumsRange } from './reduce.js';
import { expandKernel, permuteKernel } from './movement.js';

const part = (a: Float32Array, e0: number, e1: number): Float32Array => a.subarray(e0, e1);

export interface MulArgs { a: Float32Array; b: Float32Array; out: Float32Array }
/** out = a ⊙ b over elements [e0, e1). */
export function mulRange(x: MulArgs, e0: number, e1: number): void {
  mulInto(part(x.a, e0, e1), part(x.b, e0, e1), part(x.out, e0, e1));
}

export interface AddArgs { dst: Float32Array; src: Float32Array }
/** dst += src over elements [e0, e1). */
export function addRange(x: AddArgs, e0: number, e1: number): void {
  addInto(part(x.dst, e0, e1), part(x.src, e0, e1));
}

export interface DivGradArgs { g: Float32Array; a: Float32Array; b: Float32Array; out: Float32Array }
/** out = −g ⊙ a / (b ⊙ b) over elements [e0, e1). */
export function divGradBRange(x: DivGradArgs, e0: number, e1: number): void {
  divGradB(part(x.g, e0, e1), part(x.a, e0, e1), part(x.b, e0, e1), part(x.out, e0, e1));
}

export interface WhereArgs { cond: Float32Array; a: Float32Array; b: Float32Array; out: Float32Array }
/** out = cond ≠ 0 ? a : b over elements [e0, e1). */
export function whereRange(x: WhereArgs, e0: number, e1: number): void {
  whereKernel(part(x.cond, e0, e1), part(x.a, e0, e1), part(x.b, e0, e1), part(x.out, e0, e1));
}

export interface SelectGradArgs { cond: Float32Array; g: Float32Array; whenSet: boolean; out: Float32Array }
/** out = (cond ≠ 0) === whenSet ? g : 0 over elements [e0, e1). */
export function selectGradRange(x: SelectGradArgs, e0: number, e1: number): void {
  selectGrad(part(x.cond, e0, e1), part(x.g, e0, e1), x.whenSet, part(x.out, e0, e1));
}

export interface UnaryArgs { op: UnaryOp; x: Float32Array; out: Float32Array; param: number }
export function unaryRange(a: UnaryArgs, e0: number, e1: number): void {
  unaryKernel(a.op, part(a.x, e0, e1), part(a.out, e0, e1), a.param);
}

export interface UnaryBackwardArgs { op: UnaryOp; x: Float32Array; y: Float32Array; g: Float32Array; gx: Float32Array; param: number }
export function unaryBackwardRange(a: UnaryBackwardArgs, e0: number, e1: number): void {
  unaryBackwardKernel(a.op, part(a.x, e0, e1), part(a.y, e0, e1), part(a.g, e0, e1), part(a.gx, e0, e1), a.param);
}

export interface BinaryArgs {
  op: BinaryOp; a: Float32Array; aShape: readonly number[]; b: Float32Array; bShape: readonly number[]; outShape: readonly number[]; out: Float32Array;
}
/** Elements (equal shapes) or outer rows (broadcasting) [r0, r1) of a ⊙ b. */
export function binaryRange(x: BinaryArgs, r0: number, r1: number): void {
  binaryKernel(x.op, x.a, x.aShape, x.b, x.bShape, x.outShape, x.out, r0, r1);
}

export interface ExpandArgs { src: Float32Array; shape: readonly number[]; outShape: readonly number[]; out: Float32Array }
/** Outer rows [r0, r1) of src broadcast to outShape. */
export function expandRange(x: ExpandArgs, r0: number, r1: number): void {
  expandKernel(x.src, x.shape, x.outShape, x.out, r0, r1);
}

export interface PermuteArgs { src: Float32Array; shape: readonly number[]; perm: readonly number[]; out: Float32Array }
/** Outer rows [r0, r1) (all output dims but the last) of src with its dims permuted by perm. */
export function permuteRange(x: PermuteArgs, r0: number, r1: number): void {
  permuteKernel(x.src, x.shape, x.perm, x.out, r0, r1);
}

export interface RowVectorArgs { out: Float32Array; cols: number; v: Float32Array }
/** out[r, :] += v for rows [r0, r1). */
export function addRowVectorRange(x: RowVectorArgs, r0: number, r1: number): void {
  addRowVector(x.out.subarray(r0 * x.cols, r1 * x.cols), r1 - r0, x.cols, x.v);
}

export interface ColumnSumArgs { g: Float32Array; rows: number; cols: number; out: Float32Array }
/** out[j] = Σ_r g[r, j] for columns [c0, c1). */
export function columnSumsColRange(x: ColumnSumArgs, c0: number, c1: number): void {
  columnSumsRange(x.g, x.rows, x.cols, x.out, c0, c1);
}

export interface LayerNormBackwardArgs {
  x: Float32Array; dy: Float32Array; rows: number; cols: number; gamma: Float32Array | null; mean: Float32Array; rstd: Float32Array;
  dx: Float32Array | null; dGamma: Float32Array | null; dBeta: Float32Array | null;
}
/**
 * dx for rows [r0, r1), and dγ, dβ for the matching share of the columns,
 * [⌊r0·cols/rows⌋, ⌊r1·cols/rows⌋): contiguous row chunks map to contiguous column chunks that
 * cover every column once, and each column is summed over all rows in order.
 */
export function layerNormBackwardRange(a: LayerNormBackwardArgs, r0: number, r1: number): void {
  if (a.dx) layerNormInputGradRows(a.x, a.dy, a.cols, a.gamma, a.mean, a.rstd, a.dx, r0, r1);
  if (a.dGamma || a.dBeta) {
    const c0 = Math.floor((r0 * a.cols) / a.rows);
    const c1 = r1 === a.rows ? a.cols : Math.floor((r1 * a.cols) / a.rows);
    if (c1 > c0) layerNormParamGradCols(a.x, a.dy, a.rows, a.cols, a.mean, a.rstd, a.dGamma, a.dBeta, c0, c1);
  }
}

export interface DropoutMaskArgs { state: number[]; p: number; scale: number; keep: Float32Array }
/**
 * Elements [e0, e1) of a dropout mask drawn from the generator state `state`: a private copy
 * of the generator is moved e0 draws ahead, so the range gets the very draws a single pass
 * over the whole mask would give it.
 */
export function dropoutMaskRange(a: DropoutMaskArgs, e0: number, e1: number): void {
  const rng = new Rng(0);
  rng.setState(a.state);
  rng.advance(e0);
  rng.fillKeepMask(a.keep.subarray(e0, e1), a.p, a.scale);
}

export interface GatherRowsArgs { weight: Float32Array; dim: number; ids: Int32Array; out: Float32Array }
/** Output rows [i0, i1) of an embedding lookup. */
export function gatherRowsRange(a: GatherRowsArgs, i0: number, i1: number): void {
  gatherRows(a.weight, a.dim, a.ids, a.out, i0, i1);
}

export interface ScatterAddArgs { g: Float32Array; ids: Int32Array; dim: number; gw: Float32Array }
/** Columns [c0, c1) of an embedding's weight gradient, every id in order. */
export function scatterAddColRange(a: ScatterAddArgs, c0: number, c1: number): void {
  scatterAddRows(a.g, a.ids, a.dim, a.gw, c0, c1);
}
