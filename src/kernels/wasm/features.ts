/**
 * Run-time feature detection: which wasm extensions this engine validates. Each probe is a
 * one-function module that uses the feature; nothing is instantiated.
 */
import { F32, ModuleBuilder, V128 } from './assembler.js';
import { validates } from './runtime.js';

function probe(build: (m: ModuleBuilder) => void): boolean {
  const m = new ModuleBuilder();
  build(m);
  return validates(m.toBytes());
}

let simd: boolean | null = null;
let relaxed: boolean | null = null;

/** 128-bit SIMD (f32x4 arithmetic on v128). */
export function hasSimd(): boolean {
  simd ??= probe((m) => m.func('probe', [F32], [V128], (f) => void f.get(f.params[0]!).op('f32x4.splat').get(f.params[0]!).op('f32x4.splat').op('f32x4.mul')));
  return simd;
}

/** Relaxed SIMD's f32x4.relaxed_madd (on by default from Node 21; behind a flag on Node 20). */
export function hasRelaxedSimd(): boolean {
  relaxed ??= hasSimd() && probe((m) => m.func('probe', [F32], [V128], (f) => {
    for (let i = 0; i < 3; i++) f.get(f.params[0]!).op('f32x4.splat');
    f.op('f32x4.relaxed_madd');
  }));
  return relaxed;
}
