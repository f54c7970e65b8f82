/**
 * Emits the wasm SIMD module of the streaming elementwise kernels: same-shape add / sub / mul /
 * div, relu and its backward, and the strided copies (permute, masked fill). Each is one f32 operation per element, which IEEE 754 rounds the
 * same way as the js kernels' float64 operation rounded back to float32 (double rounding is
 * harmless for +, −, ×, ÷ from binary64 to binary32), so the results are bitwise those of the
 * js backend, NaN, ±0 and ±∞ included.
 *
 * Exports (byte addresses; `bytes` a multiple of 16, the caller pads the regions):
 * - `add`, `sub`, `mul`, `div` (a, b, out, bytes): out = a ∘ b.
 * - `addScalar` … `divScalar` (a, s, out, bytes): out = a ∘ s for an f32 scalar s.
 * - `relu(x, out, bytes)`: out = x > 0 ? x : 0 (NaN → 0, as in js).
 * - `reluBackward(x, g, gx, bytes)`: gx = g · (x > 0 ? 1 : 0).
 * - `permute4(src, dst, d0, d1, d2, d3, s0, s1, s2, s3)`: dst (row-major [d0, d1, d2, d3]) at
 *   (i0, i1, i2, i3) = src at Σ iₖ·sₖ (strides in bytes): any permute of rank ≤ 4 as 32-bit copies.
 * - `maskedFill4(x, mask, out, d0, d1, d2, d3, m0, m1, m2, m3, value)`: out = mask at Σ iₖ·mₖ
 *   (byte strides, 0 along broadcast dims) ≠ 0 ? value : x, over the row-major [d0, d1, d2, d3]
 *   x and out; f32 loads, stores and `select` keep every bit (NaN payloads too).
 * - `layerNorm(x, gamma, beta, out, mean, rstd, rows, cols, eps)`: layer norm with γ and β in
 *   float32: μ and var from sums in four v128 accumulators per row, rstd = 1/√(var + eps),
 *   out = ((x − μ)·rstd)·γ + β; within the f32 bound of the js layerNormRows (float64), not its
 *   bits, and one fixed operation sequence per row.
 * - `layerNormBackwardDx(x, dy, gamma, mean, rstd, dx, rows, cols)`: dx = rstd·((g − mean g) −
 *   x̂·mean(g·x̂)) with g = dy·γ, x̂ = (x − μ)·rstd, in float32 the same way.
 * - `layerNormParamGrads(x, dy, mean, rstd, accG, accB, rows, cols, c0, c1)`: the js
 *   layerNormParamGradCols over columns [c0, c1) (accG, accB: float64, c1 − c0 each, zeroed),
 *   two columns per f64x2, each in row order: bitwise its sums.
 * - `keepMask(state, out, q, threshold, bits)`: four xoshiro128** generators side by side, one
 *   per i32x4 lane (state: four v128 words s0..s3, lane j = generator j), each drawing q values:
 *   lane j writes out[j·q + i] = (draw i, offset by 2³¹, ≥ threshold) ? bits : 0 as 32-bit words
 *   (q a multiple of 4: four steps at a time, transposed so that each lane stores one v128) —
 *   the loop of Rng.fillKeepMask, four quarters at once when lane j starts j·q draws ahead. The
 *   lanes' final states are written back.
 *
 * The layer-norm and column-sum emitters live in map-norm.ts, Adam's in map-optim.ts and the
 * keep mask's in map-random.ts; this file emits the streaming kernels and builds the module.
 */
import { ARENA_IMPORT } from '../memory/arena.js';
import { F32, F64, I32, ModuleBuilder, V128, forBytes, type FunctionBuilder, type Local, type ValType } from './assembler.js';
import { ADAM_MODES, emitAdam } from './map-optim.js';
import { emitColumnSums, emitLayerNorm, emitLayerNormBackwardDx, emitLayerNormParamGrads } from './map-norm.js';
import { emitKeepMask } from './map-random.js';

export const MAP_BINARY_OPS = ['add', 'sub', 'mul', 'div'] as const;
export type MapBinaryOp = (typeof MAP_BINARY_OPS)[number];

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

/** out = a ∘ s for one f32 scalar s (a broadcast scalar operand): one f32 operation per element. */
function emitBinaryScalar(f: FunctionBuilder, op: MapBinaryOp): void {
  const [a, sc, out, bytes] = f.params as Local[];
  const sv = f.local(V128);
  f.get(sc!).op('f32x4.splat').set(sv);
  forBytes(f, bytes!, (j) => {
    f.get(out!).get(j).op('i32.add');
    load(f, a!, j);
    f.get(sv).op(`f32x4.${op}`).mem('v128.store', 0, 0);
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

function emitPermute4(f: FunctionBuilder): void {
  const [src, dst, d0, d1, d2, d3, s0, s1, s2, s3] = f.params as Local[];
  const [i0, i1, i2, i3, p0, p1, p2, q, o, end4] = Array.from({ length: 10 }, () => f.local(I32));
  f.get(dst!).set(o);
  f.forRange(i0, 0, d0!, 1, () => {
    f.get(src!).get(i0).get(s0!).op('i32.mul').op('i32.add').set(p0);
    f.forRange(i1, 0, d1!, 1, () => {
      f.get(p0).get(i1).get(s1!).op('i32.mul').op('i32.add').set(p1);
      f.forRange(i2, 0, d2!, 1, () => {
        f.get(p1).get(i2).get(s2!).op('i32.mul').op('i32.add').set(p2);
        f.get(p2).set(q);
        // A contiguous innermost run (source stride 4 bytes) moves four elements per v128.
        f.i32Const(0).set(i3);
        f.get(s3!).i32Const(4).op('i32.eq').if(() => {
          f.get(d3!).i32Const(-4).op('i32.and').set(end4);
          f.forRange(i3, 0, end4, 4, () => {
            f.get(o).get(q).mem('v128.load', 0, 2).mem('v128.store', 0, 2);
            f.get(o).i32Const(16).op('i32.add').set(o);
            f.get(q).i32Const(16).op('i32.add').set(q);
          });
        });
        f.forRange(i3, i3, d3!, 1, () => {
          f.get(o).get(q).mem('i32.load', 0, 2).mem('i32.store', 0, 2);
          f.get(o).i32Const(4).op('i32.add').set(o);
          f.get(q).get(s3!).op('i32.add').set(q);
        });
      });
    });
  });
}

function emitMaskedFill4(f: FunctionBuilder): void {
  const [x, mask, out, d0, d1, d2, d3, m0, m1, m2, m3, value] = f.params as Local[];
  const [i0, i1, i2, i3, p0, p1, q, o, end4] = Array.from({ length: 9 }, () => f.local(I32));
  const vv = f.local(V128);
  f.get(value!).op('f32x4.splat').set(vv);
  f.forRange(i0, 0, d0!, 1, () => {
    f.get(mask!).get(i0).get(m0!).op('i32.mul').op('i32.add').set(p0);
    f.forRange(i1, 0, d1!, 1, () => {
      f.get(p0).get(i1).get(m1!).op('i32.mul').op('i32.add').set(p1);
      f.forRange(i2, 0, d2!, 1, () => {
        f.get(p1).get(i2).get(m2!).op('i32.mul').op('i32.add').set(q);
        // A contiguous mask run (stride 4 bytes): four lanes at a time, f32x4.ne and bitselect
        // (the lane-wise form of the select below: NaN ≠ 0 fills, −0 keeps x).
        f.i32Const(0).set(i3);
        f.get(m3!).i32Const(4).op('i32.eq').if(() => {
          f.get(d3!).i32Const(-4).op('i32.and').set(end4);
          f.forRange(i3, 0, end4, 4, () => {
            f.get(out!).get(o).op('i32.add');
            f.get(vv);
            f.get(x!).get(o).op('i32.add').mem('v128.load', 0, 2);
            f.get(q).mem('v128.load', 0, 2).f32x4Const([0, 0, 0, 0]).op('f32x4.ne');
            f.op('v128.bitselect').mem('v128.store', 0, 2);
            f.get(o).i32Const(16).op('i32.add').set(o);
            f.get(q).i32Const(16).op('i32.add').set(q);
          });
        });
        f.forRange(i3, i3, d3!, 1, () => {
          // out[o] = mask[q] != 0 ? value : x[o]   (o = the running element offset in bytes)
          f.get(out!).get(o).op('i32.add');
          f.get(value!);
          f.get(x!).get(o).op('i32.add').mem('f32.load', 0, 2);
          f.get(q).mem('f32.load', 0, 2).f32Const(0).op('f32.ne');
          f.op('select').mem('f32.store', 0, 2);
          f.get(o).i32Const(4).op('i32.add').set(o);
          f.get(q).get(m3!).op('i32.add').set(q);
        });
      });
    });
  });
}

export function buildMapModule(): Uint8Array {
  const m = new ModuleBuilder().importMemory(ARENA_IMPORT);
  for (const op of MAP_BINARY_OPS) m.func(op, [I32, I32, I32, I32], [], (f) => emitBinary(f, op));
  for (const op of MAP_BINARY_OPS) m.func(`${op}Scalar`, [I32, F32, I32, I32], [], (f) => emitBinaryScalar(f, op));
  m.func('relu', [I32, I32, I32], [], emitRelu);
  m.func('reluBackward', [I32, I32, I32, I32], [], emitReluBackward);
  m.func('permute4', Array.from({ length: 10 }, (): ValType => I32), [], emitPermute4);
  m.func('maskedFill4', [...Array.from({ length: 11 }, (): ValType => I32), F32], [], emitMaskedFill4);
  m.func('layerNormBackwardDx', Array.from({ length: 8 }, (): ValType => I32), [], emitLayerNormBackwardDx);
  m.func('layerNorm', [...Array.from({ length: 8 }, (): ValType => I32), F64], [], emitLayerNorm);
  m.func('keepMask', [I32, I32, I32, I32, I32], [], emitKeepMask);
  m.func('layerNormParamGrads', Array.from({ length: 10 }, (): ValType => I32), [], emitLayerNormParamGrads);
  m.func('columnSums', Array.from({ length: 6 }, (): ValType => I32), [], emitColumnSums);
  for (const mode of ADAM_MODES) m.func(`adam_${mode}`, [...Array.from({ length: 5 }, (): ValType => I32), ...Array.from({ length: 10 }, (): ValType => F64)], [], (f) => emitAdam(f, mode));
  return m.toBytes();
}
