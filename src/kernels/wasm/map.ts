/**
 * The wasm SIMD streaming elementwise kernels (./map-module.ts) behind the backend's
 * signatures: same-shape binary ops, relu forward / backward, addInto and mulInto. Memory model
 * as in the other wasm kernels: one instance with a private growable memory on the calling
 * thread; operands are copied in (one memcpy each), run in blocks of BLOCK elements that stay
 * in cache, and copied out. A Float32Array loop in js costs ~2–3 ns per element on nmgrad's
 * 2-core machine and a typed-array copy ~0.1 ns, so copy + SIMD + copy beats it several times
 * over (bench `elementwise`). Results are bitwise the js kernels' (map-module.ts).
 */
import { WorkerError } from '../../errors.js';
import { broadcastStrides, stridesOf } from '../shape.js';
import { allocF32, allocF32Uninit } from '../storage.js';
import { buildMapModule, type MapBinaryOp } from './map-module.js';
import { growMemory, wasmApi, type WasmMemory } from './runtime.js';

/** Elements per block: three operands of 64 KiB. */
const BLOCK = 16384;

type Binary = (a: number, b: number, out: number, bytes: number) => void;

export interface WasmMap {
  /** out = a ∘ b elementwise (equal lengths). */
  binary(op: MapBinaryOp, a: Float32Array, b: Float32Array, out: Float32Array): void;
  relu(x: Float32Array, out: Float32Array): void;
  reluBackward(x: Float32Array, g: Float32Array, gx: Float32Array): void;
  /** out = src with dims reordered (rank ≤ 4): out.shape[i] = shape[perm[i]]. */
  permute(src: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void;
  /** The js layerNormRows with γ and β, bitwise (map-module.ts). */
  layerNorm(x: Float32Array, rows: number, cols: number, gamma: Float32Array, beta: Float32Array, eps: number, out: Float32Array, meanOut: Float32Array, rstdOut: Float32Array): void;
  /** The js layer-norm backward with γ (dx, dγ, dβ, each when needed), bitwise (map-module.ts). */
  layerNormBackward(x: Float32Array, dy: Float32Array, rows: number, cols: number, gamma: Float32Array, mean: Float32Array, rstd: Float32Array, need: { dx: boolean; dGamma: boolean; dBeta: boolean }): { dx: Float32Array | null; dGamma: Float32Array | null; dBeta: Float32Array | null };
  /** out = mask (broadcast to shape, rank ≤ 4) ≠ 0 ? value : x. */
  maskedFill(x: Float32Array, shape: readonly number[], mask: Float32Array, maskShape: readonly number[], value: number, out: Float32Array): void;
}

/** Rank the permute and masked-fill kernels handle (lower ranks get leading 1s). */
export const MAP_MAX_RANK = 4;

/** dims and byte strides padded to MAP_MAX_RANK with leading size-1, stride-0 dims. */
function rank4(dims: readonly number[], strides: readonly number[]): { d: number[]; s: number[] } {
  const lead = MAP_MAX_RANK - dims.length;
  return { d: [...new Array<number>(lead).fill(1), ...dims], s: [...new Array<number>(lead).fill(0), ...strides.map((v) => 4 * v)] };
}

export function createWasmMap(): WasmMap {
  const api = wasmApi();
  if (api === null) throw new WorkerError('wasm.map', 'this runtime has no WebAssembly');
  const inst = new api.Instance(new api.Module(buildMapModule()));
  const memory = inst.exports.memory as WasmMemory;
  const ex = inst.exports as Record<string, unknown>;
  const region = BLOCK * 4;
  const [aAt, bAt, oAt] = [0, region, 2 * region];
  let heap = new Float32Array(memory.buffer);
  const ensure = (bytes: number, what: string): void => {
    growMemory(memory, bytes, 'wasm.map', () => what);
    if (heap.buffer !== memory.buffer) heap = new Float32Array(memory.buffer);
  };
  ensure(3 * region, 'the elementwise blocks');

  /** Runs `kernel` over [0, n) in blocks: inputs copied to aAt (and bAt), output copied from oAt. */
  const blocks = (n: number, x: Float32Array, y: Float32Array | null, out: Float32Array, kernel: Binary): void => {
    for (let s = 0; s < n; s += BLOCK) {
      const e = Math.min(n, s + BLOCK);
      heap.set(x.subarray(s, e), aAt / 4);
      if (y !== null) heap.set(y.subarray(s, e), bAt / 4);
      kernel(aAt, bAt, oAt, Math.ceil((e - s) / 4) * 16);
      out.set(heap.subarray(oAt / 4, oAt / 4 + (e - s)), s);
    }
  };
  const binaries = Object.fromEntries(['add', 'sub', 'mul', 'div'].map((op) => [op, ex[op] as Binary])) as Record<MapBinaryOp, Binary>;
  const relu = ex.relu as (x: number, out: number, bytes: number) => void;
  const reluBackward = ex.reluBackward as Binary;
  const reluKernel: Binary = (a, _b, o, bytes) => relu(a, o, bytes);
  const maskedFill4 = ex.maskedFill4 as (...args: number[]) => void;
  const layerNorm = ex.layerNorm as (...args: number[]) => void;
  const layerNormBackward = ex.layerNormBackward as (...args: number[]) => void;
  const permute4 = ex.permute4 as (src: number, dst: number, d0: number, d1: number, d2: number, d3: number, s0: number, s1: number, s2: number, s3: number) => void;

  return {
    binary(op, a, b, out) {
      blocks(out.length, a, b, out, binaries[op]);
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
      const strides = stridesOf(shape);
      const { d: dims, s: st } = rank4(perm.map((p) => shape[p]!), perm.map((p) => strides[p]!));
      const dstAt = Math.ceil(n / 4) * 16;
      ensure(2 * dstAt, `a permute of ${n} elements`);
      heap.set(src.subarray(0, n), 0);
      permute4(0, dstAt, dims[0]!, dims[1]!, dims[2]!, dims[3]!, st[0]!, st[1]!, st[2]!, st[3]!);
      out.set(heap.subarray(dstAt / 4, dstAt / 4 + n));
    },
    layerNorm(x, rows, cols, gamma, beta, eps, out, meanOut, rstdOut) {
      if (rows === 0 || cols === 0) return;
      const br = Math.max(1, Math.min(rows, Math.floor(BLOCK / cols)));
      const pad = (floats: number): number => Math.ceil(floats / 4) * 16;
      const [xAt, oAt] = [0, pad(br * cols)];
      const gAt = 2 * oAt;
      const bAt = gAt + pad(cols);
      const mAt = bAt + pad(cols);
      const rAt = mAt + pad(br);
      ensure(rAt + pad(br), `a layer norm over rows of ${cols}`);
      heap.set(gamma, gAt / 4);
      heap.set(beta, bAt / 4);
      for (let r = 0; r < rows; r += br) {
        const nr = Math.min(br, rows - r);
        heap.set(x.subarray(r * cols, (r + nr) * cols), xAt / 4);
        layerNorm(xAt, gAt, bAt, oAt, mAt, rAt, nr, cols, eps);
        out.set(heap.subarray(oAt / 4, oAt / 4 + nr * cols), r * cols);
        meanOut.set(heap.subarray(mAt / 4, mAt / 4 + nr), r);
        rstdOut.set(heap.subarray(rAt / 4, rAt / 4 + nr), r);
      }
    },
    layerNormBackward(x, dy, rows, cols, gamma, mean, rstd, need) {
      const dx = need.dx ? allocF32Uninit(x.length) : null;
      const dGamma = need.dGamma ? allocF32(cols) : null;
      const dBeta = need.dBeta ? allocF32(cols) : null;
      if (rows === 0 || cols === 0) return { dx, dGamma, dBeta };
      const br = Math.max(1, Math.min(rows, Math.floor(BLOCK / cols)));
      const pad = (bytes: number): number => Math.ceil(bytes / 16) * 16;
      const xAt = 0;
      const dyAt = pad(4 * br * cols);
      const dxAt = 2 * dyAt;
      const gAt = 3 * dyAt;
      const mAt = gAt + pad(4 * cols);
      const rAt = mAt + pad(4 * br);
      const xsAt = rAt + pad(4 * br);
      const gsAt = xsAt + 8 * cols;
      const accGAt = gsAt + 8 * cols;
      const accBAt = accGAt + 8 * cols;
      ensure(accBAt + 8 * cols, `a layer-norm backward over rows of ${cols}`);
      const acc = new Float64Array(memory.buffer, accGAt, 2 * cols);
      acc.fill(0);
      heap.set(gamma, gAt / 4);
      for (let r = 0; r < rows; r += br) {
        const nr = Math.min(br, rows - r);
        heap.set(x.subarray(r * cols, (r + nr) * cols), xAt / 4);
        heap.set(dy.subarray(r * cols, (r + nr) * cols), dyAt / 4);
        heap.set(mean.subarray(r, r + nr), mAt / 4);
        heap.set(rstd.subarray(r, r + nr), rAt / 4);
        layerNormBackward(xAt, dyAt, gAt, mAt, rAt, dxAt, xsAt, gsAt, accGAt, accBAt, nr, cols, 1 / cols);
        if (dx) dx.set(heap.subarray(dxAt / 4, dxAt / 4 + nr * cols), r * cols);
      }
      if (dGamma) dGamma.set(acc.subarray(0, cols));
      if (dBeta) dBeta.set(acc.subarray(cols, 2 * cols));
      return { dx, dGamma, dBeta };
    },
    maskedFill(x, shape, mask, maskShape, value, out) {
      const n = out.length;
      if (n === 0) return;
      const { d: dims, s: st } = rank4(shape, broadcastStrides(maskShape, shape));
      const bytes = Math.ceil(n / 4) * 16;
      const maskAt = bytes;
      const outAt = maskAt + Math.ceil(mask.length / 4) * 16;
      ensure(outAt + bytes, `a masked fill of ${n} elements`);
      heap.set(x.subarray(0, n), 0);
      heap.set(mask, maskAt / 4);
      maskedFill4(0, maskAt, outAt, dims[0]!, dims[1]!, dims[2]!, dims[3]!, st[0]!, st[1]!, st[2]!, st[3]!, value);
      out.set(heap.subarray(outAt / 4, outAt / 4 + n));
    },
  };
}

let instance: WasmMap | null = null;

/** The calling thread's instance, compiled on first use. */
export function threadMap(): WasmMap {
  instance ??= createWasmMap();
  return instance;
}
