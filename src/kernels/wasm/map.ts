/**
 * The wasm SIMD streaming elementwise kernels (./map-module.ts) behind the backend's
 * signatures: same-shape binary ops, relu forward / backward, addInto and mulInto, permutes,
 * masked fills and layer norm. The module imports the tensor arena (../memory/arena.ts): operands
 * that live there are read and written in place; others (small or caller-made arrays) are
 * copied through this thread's scratch. A Float32Array loop in js costs ~2–3 ns per element on
 * nmgrad's 2-core machine, a wasm SIMD pass a fraction of that (bench `elementwise`). Results
 * are bitwise the js kernels' (map-module.ts).
 */
import { broadcastStrides, sizeOf, stridesOf } from '../shape.js';
import { allocF32, allocF32Uninit } from '../memory/storage.js';
import { ADAM_MODES, type AdamMode } from './map-optim.js';
import { COLSUM_BLOCK } from './map-norm.js';
import { buildMapModule, type MapBinaryOp } from './map-module.js';
import { adamUpdate, columnSumsRange, type AdamArgs, type ColumnSumArgs, type DropoutMaskArgs, type LayerNormArgs, type LayerNormBackwardArgs } from '../js/fallbacks.js';
import type { AdamParams } from '../backend.js';
import { Rng, jumpLanes, keepMaskWords } from '../random.js';
import { arenaBuffer, heapF32, instantiateOnArena, ptrOf, scratch } from '../memory/arena.js';

/** Elements per block: three operands of 64 KiB. */
const BLOCK = 16384;

type Binary = (a: number, b: number, out: number, bytes: number) => void;

export interface WasmMap {
  /** out = a ∘ b elementwise (equal lengths). */
  binary(op: MapBinaryOp, a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** out = a ∘ s, s a float32 scalar. */
  binaryScalar(op: MapBinaryOp, a: Float32Array, s: number, out: Float32Array): void;
  relu(x: Float32Array, out: Float32Array): void;
  reluBackward(x: Float32Array, g: Float32Array, gx: Float32Array): void;
  /** out = src with dims reordered (rank ≤ 4): out.shape[i] = shape[perm[i]]. */
  permute(src: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void;
  /** Output rows [r0, r1) (first dim of the rank-4 form `permuteDims` gives) of a permute whose src and out both lie in the arena. */
  permuteRows(src: Float32Array, out: Float32Array, dims: readonly number[], byteStrides: readonly number[], r0: number, r1: number): void;
  /** The js layerNormRows with γ and β, bitwise (map-module.ts). */
  layerNorm(x: Float32Array, rows: number, cols: number, gamma: Float32Array, beta: Float32Array, eps: number, out: Float32Array, meanOut: Float32Array, rstdOut: Float32Array): void;
  /** The js layer-norm backward with γ (dx, dγ, dβ, each when needed), bitwise (map-module.ts); dx goes to `dxInto` when given. */
  layerNormBackward(x: Float32Array, dy: Float32Array, rows: number, cols: number, gamma: Float32Array, mean: Float32Array, rstd: Float32Array, need: { dx: boolean; dGamma: boolean; dBeta: boolean }, dxInto?: Float32Array): { dx: Float32Array | null; dGamma: Float32Array | null; dBeta: Float32Array | null };
  /** out = mask (broadcast to shape, rank ≤ 4) ≠ 0 ? value : x. */
  maskedFill(x: Float32Array, shape: readonly number[], mask: Float32Array, maskShape: readonly number[], value: number, out: Float32Array): void;
  /**
   * The `keepMask` kernel over out (4·q elements): four generators side by side, `lanes` their
   * states as [s0 of generators 0..3, s1 …, s2 …, s3 …], generator j filling out[j·q, (j+1)·q).
   */
  keepMask(lanes: Int32Array, out: Float32Array, q: number, threshold: number, bits: number): void;
  /** The js columnSumsRange (columns [c0, c1) of g summed over its rows), bitwise. */
  columnSums(g: Float32Array, rows: number, cols: number, out: Float32Array, c0: number, c1: number): void;
  /** The js adamUpdate over arena operands (w, g, m, v), bitwise. */
  adam(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, p: AdamParams): void;
  /** The js layerNormParamGradCols (dγ, dβ of columns [c0, c1)), bitwise. */
  layerNormParamGrads(x: Float32Array, dy: Float32Array, rows: number, cols: number, mean: Float32Array, rstd: Float32Array, dGamma: Float32Array | null, dBeta: Float32Array | null, c0: number, c1: number): void;
}

/** Rank the permute and masked-fill kernels handle (lower ranks get leading 1s). */
export const MAP_MAX_RANK = 4;

/** The rank-4 form of a permute: output dims and the byte strides of src along them. */
export function permuteDims(shape: readonly number[], perm: readonly number[]): { d: number[]; s: number[] } {
  const strides = stridesOf(shape);
  return rank4(perm.map((p) => shape[p]!), perm.map((p) => strides[p]!));
}

/** dims and byte strides padded to MAP_MAX_RANK with leading size-1, stride-0 dims. */
function rank4(dims: readonly number[], strides: readonly number[]): { d: number[]; s: number[] } {
  const lead = MAP_MAX_RANK - dims.length;
  return { d: [...new Array<number>(lead).fill(1), ...dims], s: [...new Array<number>(lead).fill(0), ...strides.map((v) => 4 * v)] };
}

const pad16 = (bytes: number): number => Math.ceil(bytes / 16) * 16;
/** Stands for a scratch-only region in `place` (never in the arena, never copied). */
const NOT_IN_ARENA = new Float32Array(0);

export function createWasmMap(): WasmMap {
  const inst = instantiateOnArena(buildMapModule(), 'wasm.map');
  const ex = inst.exports as Record<string, unknown>;
  const region = BLOCK * 4;

  /**
   * Addresses of the operands, each given as [view, floats, copy in]: one in the arena is used
   * where it lies; any other gets a 16-byte aligned region of this thread's scratch, filled
   * from the view when `copy in` is set (inputs), left as it is otherwise (outputs).
   */
  const place = (what: string, ...operands: [Float32Array, number, boolean][]): number[] => {
    const sizes = operands.map(([v, floats]) => (ptrOf(v) >= 0 ? 0 : pad16(4 * floats)));
    let at = scratch(sizes.reduce((x, y) => x + y, 0) + 16, what);
    const heap = heapF32();
    return operands.map(([v, floats, copyIn], i) => {
      const p = ptrOf(v);
      if (p >= 0) return p;
      const here = at;
      at += sizes[i]!;
      if (copyIn && floats > 0) heap.set(v.subarray(0, floats), here / 4);
      return here;
    });
  };

  /**
   * Runs the streaming `kernel` over [0, n): in place over the whole multiple of 4 when every
   * operand is in the arena (the kernel works in 16-byte steps and must not pass the end), the
   * rest staged through scratch in blocks of BLOCK elements.
   */
  const blocks = (n: number, x: Float32Array, y: Float32Array | null, out: Float32Array, kernel: Binary): void => {
    let s = 0;
    const px = ptrOf(x);
    const py = y === null ? 0 : ptrOf(y);
    const po = ptrOf(out);
    if (px >= 0 && py >= 0 && po >= 0) {
      s = n & ~3;
      if (s > 0) kernel(px, py, po, 4 * s);
      if (s === n) return;
    }
    const aAt = scratch(3 * region, 'wasm.map');
    const [bAt, oAt] = [aAt + region, aAt + 2 * region];
    const heap = heapF32();
    for (; s < n; s += BLOCK) {
      const e = Math.min(n, s + BLOCK);
      heap.set(x.subarray(s, e), aAt / 4);
      if (y !== null) heap.set(y.subarray(s, e), bAt / 4);
      kernel(aAt, bAt, oAt, Math.ceil((e - s) / 4) * 16);
      out.set(heap.subarray(oAt / 4, oAt / 4 + (e - s)), s);
    }
  };
  /** Copies `n` floats at arena address `at` to `dst` unless `dst` is that memory. */
  const back = (dst: Float32Array, at: number, n: number): void => {
    if (ptrOf(dst) !== at) dst.set(heapF32().subarray(at / 4, at / 4 + n));
  };
  const binaries = Object.fromEntries(['add', 'sub', 'mul', 'div'].map((op) => [op, ex[op] as Binary])) as Record<MapBinaryOp, Binary>;
  const scalarBinaries = Object.fromEntries(['add', 'sub', 'mul', 'div'].map((op) => [op, ex[`${op}Scalar`] as (a: number, s: number, out: number, bytes: number) => void])) as Record<MapBinaryOp, (a: number, s: number, out: number, bytes: number) => void>;
  const relu = ex.relu as (x: number, out: number, bytes: number) => void;
  const reluBackward = ex.reluBackward as Binary;
  const reluKernel: Binary = (a, _b, o, bytes) => relu(a, o, bytes);
  const maskedFill4 = ex.maskedFill4 as (...args: number[]) => void;
  const layerNormParamGrads = ex.layerNormParamGrads as (...args: number[]) => void;
  const columnSums = ex.columnSums as (...args: number[]) => void;
  const adamKernels = Object.fromEntries(ADAM_MODES.map((mode) => [mode, ex[`adam_${mode}`] as (...args: number[]) => void])) as Record<AdamMode, (...args: number[]) => void>;
  const keepMask = ex.keepMask as (state: number, out: number, q: number, threshold: number, bits: number) => void;
  const layerNorm = ex.layerNorm as (...args: number[]) => void;
  const layerNormBackwardDx = ex.layerNormBackwardDx as (...args: number[]) => void;
  const permute4 = ex.permute4 as (src: number, dst: number, d0: number, d1: number, d2: number, d3: number, s0: number, s1: number, s2: number, s3: number) => void;

  return {
    binary(op, a, b, out) {
      blocks(out.length, a, b, out, binaries[op]);
    },
    binaryScalar(op, a, sc, out) {
      const kernel = scalarBinaries[op];
      blocks(out.length, a, null, out, (pa, _pb, po, bytes) => kernel(pa, sc, po, bytes));
    },
    relu(x, out) {
      blocks(out.length, x, null, out, reluKernel);
    },
    reluBackward(x, g, gx) {
      blocks(gx.length, x, g, gx, reluBackward);
    },
    permute(src, shape, perm, out) {
      const n = out.length;
      if (n === 0) return;
      const { d: dims, s: st } = permuteDims(shape, perm);
      const [srcAt, dstAt] = place(`a permute of ${n} elements`, [src.subarray(0, n), n, true], [out, n, false]) as [number, number];
      permute4(srcAt, dstAt, dims[0]!, dims[1]!, dims[2]!, dims[3]!, st[0]!, st[1]!, st[2]!, st[3]!);
      back(out, dstAt, n);
    },
    permuteRows(src, out, d, st, r0, r1) {
      const inner = d[1]! * d[2]! * d[3]!;
      permute4(ptrOf(src) + r0 * st[0]!, ptrOf(out) + 4 * r0 * inner, r1 - r0, d[1]!, d[2]!, d[3]!, st[0]!, st[1]!, st[2]!, st[3]!);
    },
    layerNorm(x, rows, cols, gamma, beta, eps, out, meanOut, rstdOut) {
      if (rows === 0 || cols === 0) return;
      const n = rows * cols;
      const [xAt, gAt, bAt, oAt, mAt, rAt] = place(`a layer norm over rows of ${cols}`, [x.subarray(0, n), n, true], [gamma, cols, true], [beta, cols, true], [out, n, false], [meanOut, rows, false], [rstdOut, rows, false]) as number[];
      layerNorm(xAt!, gAt!, bAt!, oAt!, mAt!, rAt!, rows, cols, eps);
      back(out, oAt!, n);
      back(meanOut, mAt!, rows);
      back(rstdOut, rAt!, rows);
    },
    layerNormBackward(x, dy, rows, cols, gamma, mean, rstd, need, dxInto) {
      const dx = need.dx ? (dxInto ?? allocF32Uninit(x.length)) : null;
      const dGamma = need.dGamma ? allocF32(cols) : null;
      const dBeta = need.dBeta ? allocF32(cols) : null;
      if (rows === 0 || cols === 0) return { dx, dGamma, dBeta };
      const n = rows * cols;
      if (dx) {
        const [xAt, dyAt, gAt, mAt, rAt, dxAt] = place(`a layer-norm backward over rows of ${cols}`, [x.subarray(0, n), n, true], [dy.subarray(0, n), n, true], [gamma, cols, true], [mean, rows, true], [rstd, rows, true], [dx, n, false]) as number[];
        layerNormBackwardDx(xAt!, dyAt!, gAt!, mAt!, rAt!, dxAt!, rows, cols);
        back(dx, dxAt!, n);
      }
      if (dGamma || dBeta) this.layerNormParamGrads(x, dy, rows, cols, mean, rstd, dGamma, dBeta, 0, cols);
      return { dx, dGamma, dBeta };
    },
    columnSums(g, rows, cols, out, c0, c1) {
      const blocks = Math.floor((c1 - c0) / COLSUM_BLOCK);
      const pg = ptrOf(g);
      let done = c0;
      if (blocks > 0 && rows > 0 && pg >= 0) {
        const w = blocks * COLSUM_BLOCK;
        const accAt = scratch(8 * w, 'wasm.map', () => `the column sums of ${w} of ${cols} columns`);
        columnSums(pg, rows, cols, c0, blocks, accAt);
        const acc = new Float64Array(arenaBuffer(), accAt, w);
        for (let j = 0; j < w; j++) out[c0 + j] = acc[j]!;
        done = c0 + w;
      }
      if (done < c1) columnSumsRange(g, rows, cols, out, done, c1);
    },
    adam(w, g, m, v, p) {
      const n = w.length;
      const whole = n & ~3;
      const at = [w, g, m, v].map(ptrOf);
      if (whole === 0 || at.some((a) => a < 0)) return adamUpdate(w, g, m, v, p);
      const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, decoupled, bc1, bc2 } = p;
      const mode: AdamMode = wd === 0 ? 'plain' : decoupled ? 'decoupled' : 'l2';
      adamKernels[mode](at[0]!, at[1]!, at[2]!, at[3]!, 4 * whole, lr, b1, 1 - b1, b2, 1 - b2, bc1, bc2, eps, wd, 1 - lr * wd);
      if (whole < n) adamUpdate(w.subarray(whole), g.subarray(whole), m.subarray(whole), v.subarray(whole), p);
    },
    layerNormParamGrads(x, dy, rows, cols, mean, rstd, dGamma, dBeta, c0, c1) {
      const w = c1 - c0;
      if (w <= 0 || rows === 0) return;
      const n = rows * cols;
      const [xAt, dyAt, mAt, rAt, accAt] = place(`the layer-norm dγ, dβ of ${w} of ${cols} columns`, [x.subarray(0, n), n, true], [dy.subarray(0, n), n, true], [mean, rows, true], [rstd, rows, true], [NOT_IN_ARENA, 4 * w + 4, false]) as number[];
      // float64 accumulators, 8-byte aligned (scratch regions are 16-byte aligned)
      const acc = new Float64Array(arenaBuffer(), accAt!, 2 * w);
      acc.fill(0);
      layerNormParamGrads(xAt!, dyAt!, mAt!, rAt!, accAt!, accAt! + 8 * w, rows, cols, c0, c1);
      for (let j = 0; j < w; j++) {
        if (dGamma) dGamma[c0 + j] = acc[j]!;
        if (dBeta) dBeta[c0 + j] = acc[w + j]!;
      }
    },
    keepMask(lanes, out, q, threshold, bits) {
      const n = 4 * q;
      const [outAt, stateAt] = place(`a dropout mask of ${n} elements`, [out, n, false], [new Float32Array(lanes.buffer, lanes.byteOffset, 16), 16, true]) as [number, number];
      keepMask(stateAt, outAt, q, threshold, bits);
      back(out, outAt, n);
    },
    maskedFill(x, shape, mask, maskShape, value, out) {
      const n = out.length;
      if (n === 0) return;
      const { d: dims, s: st } = rank4(shape, broadcastStrides(maskShape, shape));
      const [xAt, maskAt, outAt] = place(`a masked fill of ${n} elements`, [x.subarray(0, n), n, true], [mask, mask.length, true], [out, n, false]) as [number, number, number];
      maskedFill4(xAt, maskAt, outAt, dims[0]!, dims[1]!, dims[2]!, dims[3]!, st[0]!, st[1]!, st[2]!, st[3]!, value);
      back(out, outAt, n);
    },
  };
}

let instance: WasmMap | null = null;

/** The calling thread's instance, compiled on first use. */
export function threadMap(): WasmMap {
  instance ??= createWasmMap();
  return instance;
}

/** The streaming kernels a pool task runs over element ranges. */
export type MapStreamKind = MapBinaryOp | 'relu' | 'reluBackward';
export interface MapStreamArgs {
  kind: MapStreamKind;
  x: Float32Array;
  /** The second operand (g for reluBackward); null for relu and the scalar ops. */
  y: Float32Array | null;
  out: Float32Array;
  /** A binary op's second operand as one float32 value (y is null then). */
  scalar?: number;
}

/** Pool task: elements [e0, e1) of a streaming kernel (each element alone, so any split gives the same bits). */
export function wasmMapStreamRange(a: MapStreamArgs, e0: number, e1: number): void {
  const m = threadMap();
  const x = a.x.subarray(e0, e1);
  const out = a.out.subarray(e0, e1);
  if (a.kind === 'relu') m.relu(x, out);
  else if (a.kind === 'reluBackward') m.reluBackward(x, a.y!.subarray(e0, e1), out);
  else if (a.scalar !== undefined) m.binaryScalar(a.kind, x, a.scalar, out);
  else m.binary(a.kind, x, a.y!.subarray(e0, e1), out);
}

export interface MapPermuteArgs {
  src: Float32Array;
  out: Float32Array;
  dims: number[];
  byteStrides: number[];
}

/** Pool task: output rows [r0, r1) of a rank-4 permute in the arena. */
export function wasmPermuteRowRange(a: MapPermuteArgs, r0: number, r1: number): void {
  threadMap().permuteRows(a.src, a.out, a.dims, a.byteStrides, r0, r1);
}

export interface MapMaskedFillArgs {
  x: Float32Array;
  shape: number[];
  mask: Float32Array;
  maskShape: number[];
  value: number;
  out: Float32Array;
}

/**
 * Pool task: rows [r0, r1) of the first dim of a masked fill (rank ≤ 4); the mask is sliced
 * along with them unless it broadcasts over that dim. Each element is one select: any split
 * gives the same bits.
 */
export function wasmMaskedFillRowRange(a: MapMaskedFillArgs, r0: number, r1: number): void {
  const { x, shape, mask, maskShape, value, out } = a;
  const inner = sizeOf(shape.slice(1));
  const rowShape = [r1 - r0, ...shape.slice(1)];
  const sliced = maskShape.length === shape.length && maskShape[0] === shape[0] && shape[0] !== 1;
  const maskInner = sizeOf(maskShape.slice(1));
  threadMap().maskedFill(
    x.subarray(r0 * inner, r1 * inner), rowShape,
    sliced ? mask.subarray(r0 * maskInner, r1 * maskInner) : mask, sliced ? [r1 - r0, ...maskShape.slice(1)] : maskShape,
    value, out.subarray(r0 * inner, r1 * inner),
  );
}

/**
 * Pool task: dx of rows [r0, r1) of a layer-norm backward with γ on wasm, and the share of dγ, dβ
 * columns in proportion (each column summed over all rows in row order by the js kernel, as the
 * wasm kernel sums it): the bits of one pass for any split.
 */
export function wasmLayerNormBackwardRange(a: LayerNormBackwardArgs, r0: number, r1: number): void {
  const { x, dy, rows, cols, gamma, mean, rstd, dx, dGamma, dBeta } = a;
  if (dx && r1 > r0) {
    const rowsOf = (v: Float32Array): Float32Array => v.subarray(r0 * cols, r1 * cols);
    threadMap().layerNormBackward(rowsOf(x), rowsOf(dy), r1 - r0, cols, gamma!, mean.subarray(r0, r1), rstd.subarray(r0, r1), { dx: true, dGamma: false, dBeta: false }, rowsOf(dx));
  }
  if (dGamma || dBeta) {
    const c0 = Math.floor((r0 * cols) / rows);
    const c1 = r1 === rows ? cols : Math.floor((r1 * cols) / rows);
    if (c1 > c0) threadMap().layerNormParamGrads(x, dy, rows, cols, mean, rstd, dGamma, dBeta, c0, c1);
  }
}

/** Draws per generator in one call of the keepMask kernel, at most: 2^12 (a power of two: each generator's start is one jump matrix away from the last). */
const LANE_DRAWS_LOG2 = 12;

/**
 * Rng.fillKeepMask over `keep` with the generator `state` moved `skip` draws ahead, bitwise:
 * blocks of 4·q elements go to the keepMask kernel with its four generators started 0, q, 2q
 * and 3q draws into the block (jumpLanes; q a power of two, so each start is one jump), q
 * halving down to 64 for the tail, and the last < 256 elements to the js loop.
 */
export function wasmKeepMaskRange(state: readonly number[], skip: number, p: number, scale: number, keep: Float32Array): void {
  const rng = new Rng(0);
  rng.setState(state);
  rng.advance(skip);
  const { threshold, bits } = keepMaskWords(p, scale);
  const s = Int32Array.from(rng.getState().slice(0, 4));
  const lanes = new Int32Array(16);
  const n = keep.length;
  let pos = 0;
  for (let k = LANE_DRAWS_LOG2; k >= 6; k--) {
    const q = 2 ** k;
    while (n - pos >= 4 * q) {
      jumpLanes(s, k, lanes);
      threadMap().keepMask(lanes, keep.subarray(pos, pos + 4 * q), q, threshold, bits);
      pos += 4 * q;
    }
  }
  rng.setState(Array.from(s));
  rng.fillKeepMask(keep.subarray(pos), p, scale);
}

/** Pool task: elements [e0, e1) of a dropout mask (each element is its own draw: any split gives the same bits). */
export function wasmDropoutMaskRange(a: DropoutMaskArgs, e0: number, e1: number): void {
  wasmKeepMaskRange(a.state, e0, a.p, a.scale, a.keep.subarray(e0, e1));
}

/** Pool task: columns [c0, c1) of column sums (each column summed over all rows in order: any split gives the same bits). */
export function wasmColumnSumsColRange(a: ColumnSumArgs, c0: number, c1: number): void {
  threadMap().columnSums(a.g, a.rows, a.cols, a.out, c0, c1);
}

/** Pool task: elements [e0, e1) of an Adam update (elements are independent: any split gives the same bits). */
export function wasmAdamRange(a: AdamArgs, e0: number, e1: number): void {
  threadMap().adam(a.w.subarray(e0, e1), a.g.subarray(e0, e1), a.m.subarray(e0, e1), a.v.subarray(e0, e1), a.p);
}

/** Pool task: rows [r0, r1) of a layer norm with γ and β (rows are independent: any split gives the same bits). */
export function wasmLayerNormRowRange(a: LayerNormArgs, r0: number, r1: number): void {
  const { x, cols, gamma, beta, eps, out, meanOut, rstdOut } = a;
  threadMap().layerNorm(x.subarray(r0 * cols, r1 * cols), r1 - r0, cols, gamma!, beta!, eps, out.subarray(r0 * cols, r1 * cols), meanOut.subarray(r0, r1), rstdOut.subarray(r0, r1));
}
