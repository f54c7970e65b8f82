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
import { buildMapModule, type MapBinaryOp } from './map-module.js';
import { wasmApi, type WasmMemory } from './runtime.js';

const PAGE = 65536;
/** Elements per block: three operands of 64 KiB. */
const BLOCK = 16384;

type Binary = (a: number, b: number, out: number, bytes: number) => void;

export interface WasmMap {
  /** out = a ∘ b elementwise (equal lengths). */
  binary(op: MapBinaryOp, a: Float32Array, b: Float32Array, out: Float32Array): void;
  relu(x: Float32Array, out: Float32Array): void;
  reluBackward(x: Float32Array, g: Float32Array, gx: Float32Array): void;
}

export function createWasmMap(): WasmMap {
  const api = wasmApi();
  if (api === null) throw new WorkerError('wasm.map', 'this runtime has no WebAssembly');
  const inst = new api.Instance(new api.Module(buildMapModule()));
  const memory = inst.exports.memory as WasmMemory;
  const ex = inst.exports as Record<string, unknown>;
  const region = BLOCK * 4;
  const [aAt, bAt, oAt] = [0, region, 2 * region];
  if (memory.buffer.byteLength < 3 * region) memory.grow(Math.ceil((3 * region - memory.buffer.byteLength) / PAGE));
  const heap = new Float32Array(memory.buffer);

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

  return {
    binary(op, a, b, out) {
      blocks(out.length, a, b, out, binaries[op]);
    },
    relu(x, out) {
      blocks(out.length, x, null, out, (a, _b, o, bytes) => relu(a, o, bytes));
    },
    reluBackward(x, g, gx) {
      blocks(gx.length, x, g, gx, reluBackward);
    },
  };
}

let instance: WasmMap | null = null;

/** The calling thread's instance, compiled on first use. */
export function threadMap(): WasmMap {
  instance ??= createWasmMap();
  return instance;
}
