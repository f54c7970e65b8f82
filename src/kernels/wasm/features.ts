/**
 * Run-time feature detection: which wasm extensions this engine validates. Each probe is a
 * one-function module that uses the feature; nothing is instantiated.
 *
 * Relaxed SIMD (`f32x4.relaxed_madd`, a fused multiply-add on x64 with FMA) is on by default
 * from Node 21; Node 20's engine has it behind `--experimental-wasm-relaxed-simd`. Where the
 * first probe fails, nmgrad sets that V8 flag at run time (the flag is process-wide, so worker
 * threads get it too) and probes again. `NMGRAD_RELAXED_SIMD=0` keeps the unfused mul + add
 * kernels on every engine (e.g. to reproduce numbers computed without fused multiply-adds).
 */
import { setFlagsFromString } from 'node:v8';
import { ValueError } from '../../errors.js';
import { F32, ModuleBuilder, V128 } from './assembler.js';
import { validates } from '../memory/wasm-runtime.js';

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

const probeRelaxed = (): boolean =>
  probe((m) => m.func('probe', [F32], [V128], (f) => {
    for (let i = 0; i < 3; i++) f.get(f.params[0]!).op('f32x4.splat');
    f.op('f32x4.relaxed_madd');
  }));

/** NMGRAD_RELAXED_SIMD: unset or '1' = use relaxed SIMD where the engine can; '0' = never. */
export function relaxedSimdWanted(): boolean {
  const raw = process.env.NMGRAD_RELAXED_SIMD;
  if (raw === undefined || raw === '' || raw === '1') return true;
  if (raw === '0') return false;
  throw new ValueError('wasm.features', `NMGRAD_RELAXED_SIMD must be 0 or 1, got '${raw}'`);
}

/** The V8 flag that turns relaxed SIMD on where it is not on by default (Node 20). */
export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

/**
 * Whether the wasm kernels use f32x4.relaxed_madd: the engine validates it (after setting
 * RELAXED_SIMD_FLAG where needed) and NMGRAD_RELAXED_SIMD is not 0.
 */
export function hasRelaxedSimd(): boolean {
  if (relaxed !== null) return relaxed;
  if (!hasSimd() || !relaxedSimdWanted()) return (relaxed = false);
  relaxed = probeRelaxed();
  if (!relaxed) {
    try {
      setFlagsFromString(RELAXED_SIMD_FLAG);
    } catch {
      // an engine that rejects the flag: stay on mul + add
    }
    relaxed = probeRelaxed();
  }
  return relaxed;
}
