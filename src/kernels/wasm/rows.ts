/**
 * The wasm SIMD row kernels (softmax / log-softmax and their backward, cross-entropy backward)
 * with the row-range contracts of the js ones in ../js/rows-ranges.ts. Memory model as in the wasm
 * GEMM: the module imports the tensor arena; rows whose width is a multiple of 4 are read and
 * written where they lie, others are restrided to padded rows in this thread's scratch (and
 * compacted back), and operands outside the arena are copied through scratch.
 *
 * Determinism: each row is one fixed f32 sequence (./rows-module.ts), independent of the
 * block or thread it falls in, so results are bitwise identical for any thread count. They are
 * not bitwise equal to the js kernels (f32 lane sums and a polynomial exp instead of float64
 * sums and Math.exp); tests bound the difference.
 */
import { rowLossesOf, smoothedRowLoss, type CrossEntropyBackwardArgs, type CrossEntropyLossArgs, type SoftmaxArgs, type SoftmaxBackwardArgs } from '../js/fallbacks.js';
import { buildRowsModule } from './rows-module.js';
import { heapF32, instantiateOnArena, ptrOf, scratch } from '../memory/arena.js';

/** Bytes of one operand block: rows are processed in blocks that stay in cache. */
const BLOCK_BYTES = 1 << 19;

type ExpRows = (x: number, out: number, rows: number, cp: number, stats: number) => void;
type PerRow = (x: number, out: number, rows: number, cp: number, perRow: number) => void;
type ScaleRows = (out: number, rows: number, cp: number, scale: number) => void;
type Backward = (y: number, dy: number, dx: number, rows: number, cp: number) => void;
type ExpAffine = (x: number, out: number, n: number, a: number, b: number) => void;
type Restride = (src: number, dst: number, rows: number, from: number, to: number, pad: number) => void;
type Compact = (src: number, dst: number, rows: number, from: number, to: number) => void;
type RowSums = (x: number, out: number, rows: number, cp: number) => void;

export interface WasmRows {
  softmaxRows(args: SoftmaxArgs, r0: number, r1: number): void;
  softmaxBackwardRows(args: SoftmaxBackwardArgs, r0: number, r1: number): void;
  crossEntropyBackwardRows(args: CrossEntropyBackwardArgs, r0: number, r1: number): void;
  /** The js crossEntropyRowLosses' contract (float64 losses of rows [r0, r1)), with the smoothing term's Σ logp summed in f32 lanes. */
  crossEntropyLossRows(args: CrossEntropyLossArgs, r0: number, r1: number): void;
  /** Rows [r0, r1) of log-softmax into gx, their losses, then their gradient over gx in place (crossEntropyWithGrad). */
  crossEntropyWithGradRows(args: CrossEntropyWithGradArgs, r0: number, r1: number): void;
}

/** crossEntropyWithGrad's rows task: the loss record's fields, with the logits and the gradient's buffer and scale. */
export interface CrossEntropyWithGradArgs {
  x: Float32Array; targets: Int32Array; classes: number; ignore: number; eps: number; scale: number; gx: Float32Array;
  /** Float64 row losses, as CrossEntropyLossArgs.losses. */
  losses: Float32Array;
}

export function createWasmRows(): WasmRows {
  const inst = instantiateOnArena(buildRowsModule(), 'wasm.rows');
  const ex = inst.exports as Record<string, unknown>;
  const expRows = ex.expRows as ExpRows;
  const shiftRows = ex.shiftRows as PerRow;
  const scaleRows = ex.scaleRows as ScaleRows;
  const logSoftmaxBackward = ex.logSoftmaxBackward as Backward;
  const softmaxBackward = ex.softmaxBackward as Backward;
  const expAffine = ex.expAffine as ExpAffine;
  const restride = ex.restride as Restride;
  const compact = ex.compact as Compact;
  const rowSums = ex.rowSums as RowSums;

  /** Scratch addresses of `count` regions of `bytes` each, then `extra` bytes (never 0: the arena starts past its control words). */
  const regions = (count: number, bytes: number, extra: number, what: string): number[] => {
    const size = Math.ceil(bytes / 16) * 16;
    const base = scratch(count * size + extra, what);
    return Array.from({ length: count + 1 }, (_, i) => base + i * size);
  };

  /**
   * Address of rows [r, r + n) of src (cols wide) with row stride cp, padded with `pad`: src
   * itself when it lies in the arena with cp = cols; else restrided (from where it lies, or
   * from one contiguous copy at `stage`) into the region at `at`.
   */
  const load = (src: Float32Array, cols: number, cp: number, r: number, n: number, at: number, pad: number, stage: number): number => {
    const p = ptrOf(src);
    if (p >= 0) {
      if (cp === cols) return p + 4 * r * cols;
      restride(p + 4 * r * cols, at, n, cols, cp, pad);
      return at;
    }
    const heap = heapF32();
    const rowsOf = src.subarray(r * cols, (r + n) * cols);
    if (cp === cols) {
      heap.set(rowsOf, at / 4);
      return at;
    }
    heap.set(rowsOf, stage / 4);
    restride(stage, at, n, cols, cp, pad);
    return at;
  };

  /** Where the kernel writes rows [r, r + n) of dst: dst itself when in place is possible, else the region at `at`. */
  const target = (dst: Float32Array, cols: number, cp: number, r: number, at: number): number => {
    const p = ptrOf(dst);
    return p >= 0 && cp === cols ? p + 4 * r * cols : at;
  };

  /** Moves rows written at `at` (stride cp) into dst, unless they were written in place. */
  const store = (dst: Float32Array, cols: number, cp: number, r: number, n: number, at: number, stage: number): void => {
    if (at === target(dst, cols, cp, r, -1)) return;
    const heap = heapF32();
    if (cp === cols) {
      dst.set(heap.subarray(at / 4, at / 4 + n * cols), r * cols);
      return;
    }
    compact(at, stage, n, cp, cols);
    dst.set(heap.subarray(stage / 4, stage / 4 + n * cols), r * cols);
  };

  const blockRows = (cp: number): number => Math.max(1, Math.floor(BLOCK_BYTES / (4 * cp)));

  function softmaxRows(a: SoftmaxArgs, r0: number, r1: number): void {
    const { x, out, cols, logSpace } = a;
    if (r1 <= r0 || cols === 0) return;
    const cp = Math.ceil(cols / 4) * 4;
    const B = Math.min(blockRows(cp), r1 - r0);
    // Each region has 16 spare bytes: restride reads, and compact writes, up to 3 floats past a block.
    const [xAt, oAt, stageAt, statsAt] = regions(3, 4 * B * cp + 16, 12 * B + 16, `a softmax over rows of ${cols}`) as [number, number, number, number];
    // stats: two f32 per row (max, sum); perRow: one f32 per row after them (12·B bytes in all).
    const perRowAt = statsAt + 8 * B;
    const heap = heapF32();
    for (let r = r0; r < r1; r += B) {
      const n = Math.min(B, r1 - r);
      const xs = load(x, cols, cp, r, n, xAt, -Infinity, stageAt);
      const os = target(out, cols, cp, r, oAt);
      expRows(xs, logSpace ? 0 : os, n, cp, statsAt);
      const s = statsAt / 4;
      const p = perRowAt / 4;
      for (let i = 0; i < n; i++) heap[p + i] = logSpace ? heap[s + 2 * i]! + Math.log(heap[s + 2 * i + 1]!) : 1 / heap[s + 2 * i + 1]!;
      if (logSpace) shiftRows(xs, os, n, cp, perRowAt);
      else scaleRows(os, n, cp, perRowAt);
      store(out, cols, cp, r, n, os, stageAt);
    }
  }

  function softmaxBackwardRows(a: SoftmaxBackwardArgs, r0: number, r1: number): void {
    const { y, dy, dx, cols, log } = a;
    if (r1 <= r0 || cols === 0) return;
    const cp = Math.ceil(cols / 4) * 4;
    const B = Math.min(blockRows(cp), r1 - r0);
    const [yAt, dyAt, dxAt, stageAt] = regions(4, 4 * B * cp + 16, 0, `a softmax backward over rows of ${cols}`) as [number, number, number, number];
    for (let r = r0; r < r1; r += B) {
      const n = Math.min(B, r1 - r);
      const ys = load(y, cols, cp, r, n, yAt, log ? -Infinity : 0, stageAt);
      const dys = load(dy, cols, cp, r, n, dyAt, 0, stageAt);
      const dxs = target(dx, cols, cp, r, dxAt);
      (log ? logSoftmaxBackward : softmaxBackward)(ys, dys, dxs, n, cp);
      store(dx, cols, cp, r, n, dxs, stageAt);
    }
  }

  function crossEntropyBackwardRows(a: CrossEntropyBackwardArgs, r0: number, r1: number): void {
    const { logp, targets, classes, ignore, eps, scale, gx } = a;
    if (r1 <= r0 || classes === 0) return;
    const cp = Math.ceil(classes / 4) * 4;
    const B = Math.min(blockRows(cp), r1 - r0);
    const [pAt, gAt, stageAt] = regions(3, 4 * B * cp + 16, 0, `a cross-entropy backward over ${classes} classes`) as [number, number, number];
    const off = Math.fround(eps / classes);
    const sc = Math.fround(scale);
    const hit = (1 - eps) * scale;
    const heap = heapF32();
    for (let r = r0; r < r1; r += B) {
      const n = Math.min(B, r1 - r);
      const ps = load(logp, classes, cp, r, n, pAt, -Infinity, stageAt);
      const gs = target(gx, classes, cp, r, gAt);
      expAffine(ps, gs, n * cp, off, sc);
      const g = gs / 4;
      for (let i = 0; i < n; i++) {
        const t = targets[r + i]!;
        if (t === ignore) heap.fill(0, g + i * cp, g + i * cp + classes);
        else heap[g + i * cp + t] -= hit;
      }
      store(gx, classes, cp, r, n, gs, stageAt);
    }
  }

  function crossEntropyLossRows(a: CrossEntropyLossArgs, r0: number, r1: number): void {
    const { logp, targets, classes, ignore, eps } = a;
    const losses = rowLossesOf(a.losses);
    if (r1 <= r0 || classes === 0) return;
    // −(1−ε)·logp[t] − ε·mean(logp): only the smoothing term needs the row's sum.
    const cp = Math.ceil(classes / 4) * 4;
    const B = Math.min(blockRows(cp), r1 - r0);
    const [pAt, stageAt, sumsAt] = eps > 0 ? (regions(2, 4 * B * cp + 16, 4 * B, `a cross-entropy loss over ${classes} classes`) as [number, number, number]) : [0, 0, 0];
    for (let r = r0; r < r1; r += B) {
      const n = Math.min(B, r1 - r);
      // padding lanes hold 0, which adds nothing to a row's sum
      if (eps > 0) rowSums(load(logp, classes, cp, r, n, pAt, 0, stageAt), sumsAt, n, cp);
      const heap = heapF32();
      for (let i = 0; i < n; i++) {
        const t = targets[r + i]!;
        if (t === ignore) continue;
        const hit = logp[(r + i) * classes + t]!;
        losses[r + i] = smoothedRowLoss(hit, eps > 0 ? heap[sumsAt / 4 + i]! : 0, classes, eps);
      }
    }
  }

  /**
   * The three row kernels one cache-sized block of rows at a time: the block's log-probabilities
   * are still in cache when its losses and its gradient read them, so the logits are read from
   * memory once and the gradient written once (three separate sweeps read or write the whole
   * [rows × classes] buffer six times). Each row's operations are those of the separate calls.
   */
  function crossEntropyWithGradRows(a: CrossEntropyWithGradArgs, r0: number, r1: number): void {
    const { x, targets, classes, ignore, eps, scale, gx, losses } = a;
    const B = blockRows(Math.ceil(classes / 4) * 4);
    for (let r = r0; r < r1; r += B) {
      const e = Math.min(r1, r + B);
      softmaxRows({ x, out: gx, cols: classes, logSpace: true }, r, e);
      crossEntropyLossRows({ logp: gx, targets, classes, ignore, eps, losses }, r, e);
      crossEntropyBackwardRows({ logp: gx, targets, classes, ignore, eps, scale, gx }, r, e);
    }
  }

  return { softmaxRows, softmaxBackwardRows, crossEntropyBackwardRows, crossEntropyLossRows, crossEntropyWithGradRows };
}

let perThread: WasmRows | null = null;

/** This thread's row-kernel instance, compiled on first use (each worker compiles its own). */
export function threadRows(): WasmRows {
  perThread ??= createWasmRows();
  return perThread;
}

/** Pool tasks (entries of ./tasks.ts), with the js row tasks' argument records. */
export function wasmSoftmaxRowRange(a: SoftmaxArgs, r0: number, r1: number): void {
  threadRows().softmaxRows(a, r0, r1);
}
export function wasmSoftmaxBackwardRowRange(a: SoftmaxBackwardArgs, r0: number, r1: number): void {
  threadRows().softmaxBackwardRows(a, r0, r1);
}
export function wasmCrossEntropyBackwardRowRange(a: CrossEntropyBackwardArgs, r0: number, r1: number): void {
  threadRows().crossEntropyBackwardRows(a, r0, r1);
}
export function wasmCrossEntropyLossRowRange(a: CrossEntropyLossArgs, r0: number, r1: number): void {
  threadRows().crossEntropyLossRows(a, r0, r1);
}
export function wasmCrossEntropyWithGradRowRange(a: CrossEntropyWithGradArgs, r0: number, r1: number): void {
  threadRows().crossEntropyWithGradRows(a, r0, r1);
}
