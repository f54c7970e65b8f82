/**
 * The wasm SIMD row kernels (softmax / log-softmax and their backward, cross-entropy backward)
 * with the row-range contracts of the js ones in ../row-tasks.ts. Memory model as in the wasm
 * GEMM: each thread owns one instance with a private growable memory; a call copies blocks of
 * rows in (padded to a multiple of 4 columns), runs them, and copies the results out.
 *
 * Determinism: each row is one fixed f32 sequence (./rows-module.ts), independent of the
 * block or thread it falls in, so results are bitwise identical for any thread count. They are
 * not bitwise equal to the js kernels (f32 lane sums and a polynomial exp instead of float64
 * sums and Math.exp); tests bound the difference.
 */
import { WorkerError } from '../../errors.js';
import type { CrossEntropyBackwardArgs, SoftmaxArgs, SoftmaxBackwardArgs } from '../row-tasks.js';
import { buildRowsModule } from './rows-module.js';
import { growMemory, wasmApi, type WasmMemory } from './runtime.js';

/** Bytes of one operand block: rows are processed in blocks that stay in cache. */
const BLOCK_BYTES = 1 << 19;

type ExpRows = (x: number, out: number, rows: number, cp: number, stats: number) => void;
type PerRow = (x: number, out: number, rows: number, cp: number, perRow: number) => void;
type ScaleRows = (out: number, rows: number, cp: number, scale: number) => void;
type Backward = (y: number, dy: number, dx: number, rows: number, cp: number) => void;
type ExpAffine = (x: number, out: number, n: number, a: number, b: number) => void;
type Restride = (src: number, dst: number, rows: number, from: number, to: number, pad: number) => void;
type Compact = (src: number, dst: number, rows: number, from: number, to: number) => void;

export interface WasmRows {
  softmaxRows(args: SoftmaxArgs, r0: number, r1: number): void;
  softmaxBackwardRows(args: SoftmaxBackwardArgs, r0: number, r1: number): void;
  crossEntropyBackwardRows(args: CrossEntropyBackwardArgs, r0: number, r1: number): void;
}

export function createWasmRows(): WasmRows {
  const api = wasmApi();
  if (api === null) throw new WorkerError('wasm.rows', 'this runtime has no WebAssembly');
  const inst = new api.Instance(new api.Module(buildRowsModule()));
  const memory = inst.exports.memory as WasmMemory;
  const ex = inst.exports as Record<string, unknown>;
  const expRows = ex.expRows as ExpRows;
  const shiftRows = ex.shiftRows as PerRow;
  const scaleRows = ex.scaleRows as ScaleRows;
  const logSoftmaxBackward = ex.logSoftmaxBackward as Backward;
  const softmaxBackward = ex.softmaxBackward as Backward;
  const expAffine = ex.expAffine as ExpAffine;
  const restride = ex.restride as Restride;
  const compact = ex.compact as Compact;
  let heap = new Float32Array(memory.buffer);

  /** Byte addresses of `count` regions of `bytes` each, from byte 16 (0 means "no output"). */
  const regions = (count: number, bytes: number, extra: number, what: string): number[] => {
    const size = Math.ceil(bytes / 16) * 16;
    const end = 16 + count * size + extra;
    growMemory(memory, end, 'wasm.rows', () => what);
    if (heap.buffer !== memory.buffer) heap = new Float32Array(memory.buffer);
    return Array.from({ length: count + 1 }, (_, i) => 16 + i * size);
  };

  /**
   * Copies rows [r, r + n) of src (cols wide) to `at` with row stride cp, padding with `pad`:
   * one contiguous copy (to `stage` when rows need padding), then restride in wasm.
   */
  const load = (src: Float32Array, cols: number, cp: number, r: number, n: number, at: number, pad: number, stage: number): void => {
    const rowsOf = src.subarray(r * cols, (r + n) * cols);
    if (cp === cols) {
      heap.set(rowsOf, at / 4);
      return;
    }
    heap.set(rowsOf, stage / 4);
    restride(stage, at, n, cols, cp, pad);
  };

  const store = (dst: Float32Array, cols: number, cp: number, r: number, n: number, at: number, stage: number): void => {
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
    for (let r = r0; r < r1; r += B) {
      const n = Math.min(B, r1 - r);
      load(x, cols, cp, r, n, xAt, -Infinity, stageAt);
      expRows(xAt, logSpace ? 0 : oAt, n, cp, statsAt);
      const s = statsAt / 4;
      const p = perRowAt / 4;
      for (let i = 0; i < n; i++) heap[p + i] = logSpace ? heap[s + 2 * i]! + Math.log(heap[s + 2 * i + 1]!) : 1 / heap[s + 2 * i + 1]!;
      if (logSpace) shiftRows(xAt, oAt, n, cp, perRowAt);
      else scaleRows(oAt, n, cp, perRowAt);
      store(out, cols, cp, r, n, oAt, stageAt);
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
      load(y, cols, cp, r, n, yAt, log ? -Infinity : 0, stageAt);
      load(dy, cols, cp, r, n, dyAt, 0, stageAt);
      (log ? logSoftmaxBackward : softmaxBackward)(yAt, dyAt, dxAt, n, cp);
      store(dx, cols, cp, r, n, dxAt, stageAt);
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
    for (let r = r0; r < r1; r += B) {
      const n = Math.min(B, r1 - r);
      load(logp, classes, cp, r, n, pAt, -Infinity, stageAt);
      expAffine(pAt, gAt, n * cp, off, sc);
      const g = gAt / 4;
      for (let i = 0; i < n; i++) {
        const t = targets[r + i]!;
        if (t === ignore) heap.fill(0, g + i * cp, g + i * cp + classes);
        else heap[g + i * cp + t] -= hit;
      }
      store(gx, classes, cp, r, n, gAt, stageAt);
    }
  }

  return { softmaxRows, softmaxBackwardRows, crossEntropyBackwardRows };
}

let perThread: WasmRows | null = null;

/** This thread's row-kernel instance, compiled on first use (each worker compiles its own). */
export function threadRows(): WasmRows {
  perThread ??= createWasmRows();
  return perThread;
}

/** Pool tasks (entries of threads/tasks.ts), with the js row tasks' argument records. */
export function wasmSoftmaxRowRange(a: SoftmaxArgs, r0: number, r1: number): void {
  threadRows().softmaxRows(a, r0, r1);
}
export function wasmSoftmaxBackwardRowRange(a: SoftmaxBackwardArgs, r0: number, r1: number): void {
  threadRows().softmaxBackwardRows(a, r0, r1);
}
export function wasmCrossEntropyBackwardRowRange(a: CrossEntropyBackwardArgs, r0: number, r1: number): void {
  threadRows().crossEntropyBackwardRows(a, r0, r1);
}
