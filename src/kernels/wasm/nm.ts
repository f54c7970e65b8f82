/**
 * The wasm SIMD N:M kernels with the row-range contracts of the js ones: `gatherRows` is the
 * CSR × dense product of the forward (weight rows) and of dX (rows of the transposed
 * pattern), split by token rows; `keptGradRows` is dYᵀ·X at the kept positions, split by
 * weight rows, taking dY and X as they are (the transposes happen inside, chunk by chunk).
 *
 * Memory model as in the wasm GEMM: the module imports the tensor arena; activations and
 * outputs that live there are transposed straight from and into place, the pattern's structure
 * and anything outside the arena go through this thread's scratch.
 *
 * Determinism: an output element is one fixed f32 sequence (entries in storage order; for dW,
 * token chunks of CHUNK in order starting at token 0) that no row split changes, so results
 * are bitwise identical for any thread count.
 */
import { WorkerError } from '../../errors.js';
import type { GatherArgs } from '../js/fallbacks.js';
import { DEFAULT_NM_SHAPE, buildNmModule, type NmKernelShape } from './nm-module.js';
import { heapF32, heapI32, instantiateOnArena, ptrOf, scratch } from '../memory/arena.js';


/** CSR × dense: y[r, i] = Σ_e val[e]·x[r, col[e]] (+ bias[i]), i < rowPtr.length − 1. */
export type NmGatherArgs = GatherArgs;

/** grad[e] = Σ_r dy[r, i]·x[r, col[e]] for the entries e of weight row i. */
export interface NmKeptGradArgs {
  dy: Float32Array;
  x: Float32Array;
  rows: number;
  inDim: number;
  rowPtr: Int32Array;
  col: Int32Array;
  grad: Float32Array;
}

export interface NmKernelOptions extends NmKernelShape {
  /** Tokens per dW chunk (a multiple of 16). */
  chunk: number;
  /** Bytes of Xᵀ one dW pass reads: input columns are taken in panels of panelBytes / (4·chunk). */
  panelBytes: number;
}

export const DEFAULT_NM_CHUNK = 64;
export const DEFAULT_NM_PANEL_BYTES = 32768;

export interface WasmNm {
  readonly options: NmKernelOptions;
  /** Rows [r0, r1) of y. */
  gatherRows(args: NmGatherArgs, r0: number, r1: number): void;
  /** The entries of weight rows [i0, i1). */
  keptGradRows(args: NmKeptGradArgs, i0: number, i1: number): void;
  /** The entries in input columns [c0, c1) of every weight row (others of grad are left as they are). */
  keptGradCols(args: NmKeptGradArgs, c0: number, c1: number): void;
}

type Transpose = (src: number, srcStride: number, dst: number, dstStride: number, rows: number, cols: number) => void;
type TransposeBias = (src: number, srcStride: number, dst: number, dstStride: number, rows: number, cols: number, bias: number) => void;
type Spmm = (xt: number, ptr: number, col: number, val: number, rows: number, yt: number) => void;
type KeptDot = (dyt: number, xt: number, rowBytes: number, rows: number, ranges: number, col: number, grad: number) => void;

const align16 = (bytes: number): number => Math.ceil(bytes / 16) * 16;

/** Consecutive 16-byte-aligned regions of the given byte sizes, from byte 0 (relative to a scratch base). */
function layout(...sizes: number[]): number[] {
  const at: number[] = [];
  let next = 0;
  for (const s of sizes) {
    at.push(next);
    next += align16(s);
  }
  at.push(next);
  return at;
}

/**
 * Compiles and instantiates one module (one per thread: its memory is private). The kernels
 * use mul + add even where the engine has relaxed_madd: spmm's four accumulators are one add
 * chain each, and the fused form ran it ~20% slower here (keptDot and the GEMM tie), so the
 * N:M results are also the same on every engine (docs/wasm.md).
 */
export function createWasmNm(opts: Partial<NmKernelOptions> = {}): WasmNm {
  const options: NmKernelOptions = { ...DEFAULT_NM_SHAPE, relaxed: false, chunk: DEFAULT_NM_CHUNK, panelBytes: DEFAULT_NM_PANEL_BYTES, ...opts };
  for (const key of ['tv', 'unroll', 'ways'] as const) {
    const v = options[key];
    if (!Number.isInteger(v) || v < 1 || v > 16) throw new WorkerError('wasm.nm', `${key} must be an integer in [1, 16], got ${v}`);
  }
  if (!Number.isInteger(options.panelBytes) || options.panelBytes < 1) throw new WorkerError('wasm.nm', `panelBytes must be a positive integer, got ${options.panelBytes}`);
  if (![1, 2, 4].includes(options.dotUnroll)) throw new WorkerError('wasm.nm', `dotUnroll must be 1, 2 or 4, got ${options.dotUnroll}`);
  if (!Number.isInteger(options.chunk) || options.chunk <= 0 || options.chunk % 16 !== 0) throw new WorkerError('wasm.nm', `dW chunk must be a positive multiple of 16 tokens, got ${options.chunk}`);
  const inst = instantiateOnArena(buildNmModule(options), 'wasm.nm');
  const transpose = inst.exports.transpose as Transpose;
  const transposeBias = inst.exports.transposeBias as TransposeBias;
  const spmm = inst.exports.spmm as Spmm;
  const keptDot = inst.exports.keptDot as KeptDot;
  const T = 4 * options.tv;
  let f32 = heapF32();
  let i32 = heapI32();

  /** This thread's scratch for a layout ending at `end` (addresses returned relative to its start). */
  const reserve = (end: number, what: () => string): number => {
    const base = scratch(end, 'wasm.nm', what);
    f32 = heapF32();
    i32 = heapI32();
    return base;
  };

  function gatherRows(args: NmGatherArgs, r0: number, r1: number): void {
    const { x, inDim, rowPtr, col, val, y, bias } = args;
    const outDim = rowPtr.length - 1;
    if (r1 <= r0 || outDim === 0) return;
    const nnz = rowPtr[outDim]!;
    // Operands in the arena (activations, the cached pattern structure, layer values) are read
    // and written where they lie; anything else goes through this thread's scratch.
    const [px, py, pPtr, pCol, pVal] = [ptrOf(x), ptrOf(y), ptrOf(rowPtr), ptrOf(col), ptrOf(val)];
    const pBias = bias === null ? -1 : ptrOf(bias);
    const copied = (at: number, bytes: number): number => (at >= 0 ? 0 : bytes);
    const rel = layout(
      copied(pPtr, 4 * (outDim + 1)), copied(pCol, 4 * nnz), copied(pVal, 4 * nnz), bias === null ? 0 : copied(pBias, 4 * outDim),
      copied(px, 4 * T * inDim), 4 * T * inDim, 4 * T * outDim, copied(py, 4 * T * outDim),
    );
    const base = reserve(rel[rel.length - 1]!, () => `an N:M product of ${r1 - r0} tokens × ${inDim} inputs → ${outDim} outputs (${nnz} kept weights)`);
    const [ptrAt, colAt, valAt, biasAt, xAt, xtAt, ytAt, yAt] = rel.map((r) => base + r) as [number, number, number, number, number, number, number, number];
    const ptrSrc = pPtr >= 0 ? pPtr : (i32.set(rowPtr, ptrAt / 4), ptrAt);
    const colSrc = pCol >= 0 ? pCol : (i32.set(col.subarray(0, nnz), colAt / 4), colAt);
    const valSrc = pVal >= 0 ? pVal : (f32.set(val.subarray(0, nnz), valAt / 4), valAt);
    const biasSrc = bias === null ? 0 : pBias >= 0 ? pBias : (f32.set(bias.subarray(0, outDim), biasAt / 4), biasAt);
    for (let t0 = r0; t0 < r1; t0 += T) {
      const tk = Math.min(T, r1 - t0);
      let xs = px + 4 * t0 * inDim;
      if (px < 0) {
        f32.set(x.subarray(t0 * inDim, (t0 + tk) * inDim), xAt / 4);
        xs = xAt;
      }
      transpose(xs, inDim, xtAt, T, tk, inDim);
      spmm(xtAt, ptrSrc, colSrc, valSrc, outDim, ytAt);
      const yd = py >= 0 ? py + 4 * t0 * outDim : yAt;
      if (bias !== null) transposeBias(ytAt, T, yd, outDim, outDim, tk, biasSrc);
      else transpose(ytAt, T, yd, outDim, outDim, tk);
      if (py < 0) y.set(f32.subarray(yAt / 4, yAt / 4 + tk * outDim), t0 * outDim);
    }
  }

  function keptGradRows(args: NmKeptGradArgs, i0: number, i1: number): void {
    keptGradBlock(args, i0, i1, 0, args.inDim);
  }

  function keptGradCols(args: NmKeptGradArgs, c0: number, c1: number): void {
    keptGradBlock(args, 0, args.rowPtr.length - 1, c0, c1);
  }

  /**
   * The kept entries of weight rows [i0, i1) whose input column is in [c0, c1). A block narrower
   * than the whole input transposes only its columns of X and writes only its entries of grad.
   */
  function keptGradBlock(args: NmKeptGradArgs, i0: number, i1: number, c0: number, c1: number): void {
    const { dy, x, rows, inDim, rowPtr, col, grad } = args;
    const outDim = rowPtr.length - 1;
    const R = i1 - i0;
    const W = c1 - c0;
    if (R <= 0 || W <= 0) return;
    const eBase = rowPtr[i0]!;
    const count = rowPtr[i1]! - eBase;
    if (count === 0) return;
    const whole = c0 === 0 && c1 === inDim;
    const C = options.chunk;
    const panelCols = Math.max(1, Math.floor(options.panelBytes / (4 * C)));
    const panels = Math.ceil(W / panelCols);
    const [pdy, px, pCol, pGrad] = [ptrOf(dy), ptrOf(x), ptrOf(col), ptrOf(grad)];
    // A column block sums into this thread's scratch and writes its entries back at the end:
    // in place, the threads' entries of one weight row would share cache lines all along.
    const gradInPlace = pGrad >= 0 && whole;
    const rel = layout(8 * R * panels, pCol >= 0 ? 0 : 4 * count, gradInPlace ? 0 : 4 * count, pdy >= 0 ? 0 : 4 * C * outDim, 4 * R * C, px >= 0 ? 0 : 4 * C * inDim, 4 * W * C);
    const base = reserve(rel[rel.length - 1]!, () => `the kept-position dW of weight rows [${i0}, ${i1}), inputs [${c0}, ${c1}) of ${inDim} (${count} kept weights)`);
    const [rangesAt, colCopyAt, gradCopyAt, dyAt, dytAt, xAt, xtAt] = rel.map((r) => base + r) as [number, number, number, number, number, number, number];
    // The column indices are read, and the sums accumulated, in place when in the arena.
    const colAt = pCol >= 0 ? pCol + 4 * eBase : colCopyAt;
    const gradAt = gradInPlace ? pGrad + 4 * eBase : gradCopyAt;
    // Entry ranges of each row within each panel of input columns (columns ascend within a row),
    // so the rows of Xᵀ a panel reads stay in L1 while every weight row visits them.
    const ranges = i32.subarray(rangesAt / 4, rangesAt / 4 + 2 * R * panels);
    for (let i = 0; i < R; i++) {
      let e = rowPtr[i0 + i]! - eBase;
      const rowEnd = rowPtr[i0 + i + 1]! - eBase;
      while (e < rowEnd && col[eBase + e]! < c0) e++;
      for (let p = 0; p < panels; p++) {
        const limit = Math.min(c1, c0 + (p + 1) * panelCols);
        ranges[2 * (p * R + i)] = e;
        while (e < rowEnd && col[eBase + e]! < limit) e++;
        ranges[2 * (p * R + i) + 1] = e;
      }
    }
    if (pCol < 0) i32.set(col.subarray(eBase, eBase + count), colAt / 4);
    f32.fill(0, gradAt / 4, gradAt / 4 + count);
    for (let t0 = 0; t0 < rows; t0 += C) {
      const tc = Math.min(C, rows - t0);
      const padded = Math.ceil(tc / 16) * 16;
      if (padded !== tc) {
        // Zero lanes past the last token add exact zeros to every dot product.
        f32.fill(0, dytAt / 4, dytAt / 4 + R * padded);
        f32.fill(0, xtAt / 4, xtAt / 4 + W * padded);
      }
      let dys = pdy + 4 * t0 * outDim;
      if (pdy < 0) {
        f32.set(dy.subarray(t0 * outDim, (t0 + tc) * outDim), dyAt / 4);
        dys = dyAt;
      }
      transpose(dys + 4 * i0, outDim, dytAt, padded, tc, R);
      let xs = px + 4 * t0 * inDim;
      if (px < 0) {
        f32.set(x.subarray(t0 * inDim, (t0 + tc) * inDim), xAt / 4);
        xs = xAt;
      }
      transpose(xs + 4 * c0, inDim, xtAt, padded, tc, W);
      // keptDot addresses Xᵀ row c at xt + c·rowBytes: shift the block's base by c0 rows (i32 arithmetic wraps).
      const xtBase = (xtAt - 4 * padded * c0) | 0;
      for (let p = 0; p < panels; p++) keptDot(dytAt, xtBase, 4 * padded, R, rangesAt + 8 * p * R, colAt, gradAt);
    }
    if (whole) {
      if (!gradInPlace) grad.set(f32.subarray(gradAt / 4, gradAt / 4 + count), eBase);
    } else {
      // Only this block's entries: row i's run from its first panel's start to its last panel's end.
      const g0 = gradAt / 4;
      for (let i = 0; i < R; i++) {
        for (let e = ranges[2 * i]!, end = ranges[2 * ((panels - 1) * R + i) + 1]!; e < end; e++) grad[eBase + e] = f32[g0 + e]!;
      }
    }
  }

  return { options, gatherRows, keptGradRows, keptGradCols };
}

let perThread: WasmNm | null = null;

/** This thread's instance, compiled on first use (each worker compiles its own). */
export function threadNm(): WasmNm {
  perThread ??= createWasmNm();
  return perThread;
}

/** Pool task: `gatherRows` on this thread's instance. */
export function wasmNmGatherRows(args: NmGatherArgs, r0: number, r1: number): void {
  threadNm().gatherRows(args, r0, r1);
}

/** Pool task: `keptGradCols` on this thread's instance. */
export function wasmNmKeptGradCols(args: NmKeptGradArgs, c0: number, c1: number): void {
  threadNm().keptGradCols(args, c0, c1);
}

/** Pool task: `keptGradRows` on this thread's instance. */
export function wasmNmKeptGradRows(args: NmKeptGradArgs, i0: number, i1: number): void {
  threadNm().keptGradRows(args, i0, i1);
}
