/**
 * Emits the wasm SIMD module of the streaming elementwise kernels: same-shape add / sub / mul /
 * div, relu and its backward. Each is one f32 operation per element, which IEEE 754 rounds the
 * same way as the js kernels' float64 operation rounded back to float32 (double rounding is
 * harmless for +, −, ×, ÷ from binary64 to binary32), so the results are bitwise those of the
 * js backend, NaN, ±0 and ±∞ included.
 *
 * Exports (byte addresses; `bytes` a multiple of 16, the caller pads the regions):
 * - `add`, `sub`, `mul`, `div` (a, b, out, bytes): out = a ∘ b.
 * - `relu(x, out, bytes)`: out = x > 0 ? x : 0 (NaN → 0, as in js).
 * - `reluBackward(x, g, gx, bytes)`: gx = g · (x > 0 ? 1 : 0).
 */
import { I32, ModuleBuilder, V128, type FunctionBuilder, type Local } from './assembler.js';

export const MAP_BINARY_OPS = ['add', 'sub', 'mul', 'div'] as const;
export type MapBinaryOp = (typeof MAP_BINARY_OPS)[number];

/** for j in [0, bytes) step 16: body(j). */
function forBytes(f: FunctionBuilder, bytes: Local, body: (j: Local) => void): void {
  const j = f.local(I32);
  f.forRange(j, 0, bytes, 16, () => body(j));
}

const load = (f: FunctionBuilder, base: Local, j: Local): void => {
  f.get(base).get(j).op('i32.add').mem('v128.load', 0, 0);
};

function emitBinary(f: FunctionBuilder, op: MapBinaryOp): void {
  const [a, b, out, bytes] = f.params as Local[];
  forBytes(f, bytes!, (j) => {
    f.get(out!).get(j).op('i32.add');
    load(f, a!, j);
    load(f, b!, j);
    f.op(`f32x4.${op}`).mem('v128.store', 0, 0);
  });
}

function emitRelu(f: FunctionBuilder): void {
  const [x, out, bytes] = f.params as Local[];
  const ZERO: [number, number, number, number] = [0, 0, 0, 0];
  const v = f.local(V128);
  forBytes(f, bytes!, (j) => {
    f.get(out!).get(j).op('i32.add');
    load(f, x!, j);
    f.set(v);
    // bitselect(x, 0, x > 0)
    f.get(v).f32x4Const(ZERO).get(v).f32x4Const(ZERO).op('f32x4.gt').op('v128.bitselect');
    f.mem('v128.store', 0, 0);
  });
}

function emitReluBackward(f: FunctionBuilder): void {
  const [x, g, gx, bytes] = f.params as Local[];
  forBytes(f, bytes!, (j) => {
    f.get(gx!).get(j).op('i32.add');
    load(f, g!, j);
    // g · bitselect(1, 0, x > 0)
    f.f32x4Const([1, 1, 1, 1]).f32x4Const([0, 0, 0, 0]);
    load(f, x!, j);
    f.f32x4Const([0, 0, 0, 0]).op('f32x4.gt').op('v128.bitselect');
    f.op('f32x4.mul').mem('v128.store', 0, 0);
  });
}

export function buildMapModule(): Uint8Array {
  const m = new ModuleBuilder().defineMemory({ initial: 1 });
  for (const op of MAP_BINARY_OPS) m.func(op, [I32, I32, I32, I32], [], (f) => emitBinary(f, op));
  m.func('relu', [I32, I32, I32], [], emitRelu);
  m.func('reluBackward', [I32, I32, I32, I32], [], emitReluBackward);
  return m.toBytes();
}
