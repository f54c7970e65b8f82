import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backendByName } from '../../../src/kernels/backend.js';
import '../../../src/kernels/wasm/backend.js';
import { hasSimd } from '../../../src/kernels/wasm/features.js';
import { createWasmMap } from '../../../src/kernels/wasm/map.js';
import { MAP_BINARY_OPS } from '../../../src/kernels/wasm/map-module.js';
import { RUNS } from '../../helpers.js';
import { allocF32 } from '../../../src/kernels/memory/storage.js';
import { setThreads } from '../../../src/kernels/threads/pool.js';

/** Equal bits, except that any NaN equals any NaN. */
function expectSameBits(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]) && Number.isNaN(got[i])) continue;
    if (!Object.is(got[i], want[i])) expect.fail(`element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

const SPECIAL = [0, -0, 1, -1, Number.NaN, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38, -3.4e38, 1e-40];
/** Float32 values, special ones included, at odd lengths that cross the 16384-element block. */
const f32s = fc.array(fc.oneof(fc.float({ noDefaultInfinity: false }), fc.constantFrom(...SPECIAL)), { minLength: 0, maxLength: 300 });
const lengths = [1, 3, 4, 5, 255, 256, 257, 16383, 16384, 16385, 40001];

function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = i % 97 < SPECIAL.length ? SPECIAL[i % 97]! : ((s / 2 ** 32) - 0.5) * 10 ** ((s % 7) - 3);
  }
  return a;
}

const ref = {
  add: (a: number, b: number) => a + b,
  sub: (a: number, b: number) => a - b,
  mul: (a: number, b: number) => a * b,
  div: (a: number, b: number) => a / b,
};

describe.skipIf(!hasSimd())('wasm streaming elementwise kernels', () => {
  const map = createWasmMap();

  it('binary ops equal the float64 definition rounded to float32, bit for bit', () => {
    fc.assert(
      fc.property(f32s, f32s, fc.constantFrom(...MAP_BINARY_OPS), (xs, ys, op) => {
        const n = Math.min(xs.length, ys.length);
        const a = Float32Array.from(xs.slice(0, n));
        const b = Float32Array.from(ys.slice(0, n));
        const out = new Float32Array(n);
        map.binary(op, a, b, out);
        expectSameBits(out, Float32Array.from(a, (v, i) => ref[op](v, b[i]!)));
      }),
      { numRuns: RUNS },
    );
  });

  it('relu and its backward follow the definitions (NaN → 0, g·0 keeps the sign of g)', () => {
    for (const n of lengths) {
      const x = filled(n, 3);
      const g = filled(n, 7);
      const y = new Float32Array(n);
      map.relu(x, y);
      expectSameBits(y, Float32Array.from(x, (v) => (v > 0 ? v : 0)));
      const gx = new Float32Array(n);
      map.reluBackward(x, g, gx);
      expectSameBits(gx, Float32Array.from(x, (v, i) => g[i]! * (v > 0 ? 1 : 0)));
    }
  });

  it('the wasm backend gives the js backend’s bits for binary, addInto, mulInto, relu, in place too', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const n of lengths) {
      const a = filled(n, 11);
      const b = filled(n, 13);
      for (const op of MAP_BINARY_OPS) {
        const o1 = new Float32Array(n);
        const o2 = new Float32Array(n);
        w.binary(op, a, [n], b, [n], [n], o1);
        js.binary(op, a, [n], b, [n], [n], o2);
        expectSameBits(o1, o2);
      }
      const d1 = a.slice();
      const d2 = a.slice();
      w.addInto(d1, b);
      js.addInto(d2, b);
      expectSameBits(d1, d2);
      // out aliasing an input
      const m1 = a.slice();
      const m2 = a.slice();
      w.mulInto(m1, b, m1);
      js.mulInto(m2, b, m2);
      expectSameBits(m1, m2);
      const r1 = new Float32Array(n);
      const r2 = new Float32Array(n);
      w.unary('relu', a, r1, 0);
      js.unary('relu', a, r2, 0);
      expectSameBits(r1, r2);
      w.unaryBackward('relu', a, r1, b, r1, 0);
      js.unaryBackward('relu', a, r2, b, r2, 0);
      expectSameBits(r1, r2);
    }
  });

  it('permutes of rank ≤ 4 equal the definition (and the js backend) for every perm', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    const shapeArb = fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(shapeArb, fc.integer({ min: 0, max: 23 }), (shape, k) => {
        const rank = shape.length;
        // the k-th permutation of 0..rank-1 (k mod rank!)
        const pool = Array.from({ length: rank }, (_, i) => i);
        const perm: number[] = [];
        let c = k;
        for (let r = rank; r > 0; r--) {
          perm.push(pool.splice(c % r, 1)[0]!);
          c = Math.floor(c / r);
        }
        // at least MAP_MIN elements so the wasm kernel (not the js fallback) runs
        const sh = [...shape];
        sh[0] = sh[0]! * Math.ceil(300 / shape.reduce((a, b) => a * b, 1));
        const n = sh.reduce((a, b) => a * b, 1);
        const src = filled(n, k + 1);
        const o1 = new Float32Array(n);
        const o2 = new Float32Array(n);
        w.permute(src, sh, perm, o1);
        js.permute(src, sh, perm, o2);
        expectSameBits(o1, o2);
        // the definition: out[idx] = src[idx permuted back]
        const outShape = perm.map((p) => sh[p]!);
        const srcStride = sh.map((_, d) => sh.slice(d + 1).reduce((a, b) => a * b, 1));
        for (let o = 0; o < n; o += 7) {
          let rem = o;
          let at = 0;
          for (let d = rank - 1; d >= 0; d--) {
            const i = rem % outShape[d]!;
            rem = Math.floor(rem / outShape[d]!);
            at += i * srcStride[perm[d]!]!;
          }
          expect(Object.is(o1[o], src[at]) || (Number.isNaN(o1[o]) && Number.isNaN(src[at]))).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('masked fills of rank ≤ 4 with a broadcast mask give the js kernel’s bits', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    const dims = fc.array(fc.record({ size: fc.integer({ min: 1, max: 9 }), broadcast: fc.boolean() }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(dims, fc.integer({ min: 0, max: 3 }), fc.constantFrom(-1e9, -Infinity, 0, 2.5), (ds, drop, value) => {
        const shape = ds.map((d) => d.size);
        shape[0] = shape[0]! * Math.ceil(300 / shape.reduce((a, b) => a * b, 1));
        // the mask: broadcast dims of size 1, and up to `drop` leading dims left out
        const full = shape.map((d, i) => (ds[i]!.broadcast ? 1 : d));
        const maskShape = full.slice(Math.min(drop, full.length - 1));
        const n = shape.reduce((a, b) => a * b, 1);
        const x = filled(n, n);
        const mask = Float32Array.from(filled(maskShape.reduce((a, b) => a * b, 1), 17), (v, i) => (i % 3 === 0 ? 0 : i % 5 === 0 ? -0 : v));
        const o1 = new Float32Array(n);
        const o2 = new Float32Array(n);
        w.maskedFill(x, shape, mask, maskShape, value, o1);
        js.maskedFill(x, shape, mask, maskShape, value, o2);
        expectSameBits(o1, o2);
      }),
      { numRuns: RUNS },
    );
  });

  it('layer norm with γ and β gives the js kernel’s bits (outputs, means, 1/σ)', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const [rows, cols] of [[1, 1], [3, 5], [300, 64], [7, 1000], [1500, 128], [2, 20000]] as const) {
      for (const eps of [1e-5, 1e-6]) {
        const n = rows * cols;
        const x = Float32Array.from(filled(n, rows + cols), (v, i) => (Number.isFinite(v) ? v : i % 7) + (i % 11) * 100);
        const gamma = Float32Array.from(filled(cols, 5), (v) => (Number.isFinite(v) ? v : 1));
        const beta = Float32Array.from(filled(cols, 6), (v) => (Number.isFinite(v) ? v : 0));
        const run = (be: typeof w): Float32Array[] => {
          const out = new Float32Array(n);
          const mean = new Float32Array(rows);
          const rstd = new Float32Array(rows);
          be.layerNormRows(x, rows, cols, gamma, beta, eps, out, mean, rstd);
          return [out, mean, rstd];
        };
        const [a, b] = [run(w), run(js)];
        for (let k = 0; k < 3; k++) expectSameBits(a[k]!, b[k]!);
      }
    }
  });

  it('layer-norm backward with γ gives the js kernel’s bits for dx, dγ, dβ in every combination', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const [rows, cols] of [[1, 1], [3, 5], [301, 64], [7, 1000], [1500, 128], [2, 20000]] as const) {
      const n = rows * cols;
      const x = Float32Array.from(filled(n, rows + cols), (v, i) => (Number.isFinite(v) ? v : i % 7) + (i % 11) * 10);
      const dy = Float32Array.from(filled(n, cols), (v) => (Number.isFinite(v) ? v : 0.5));
      const gamma = Float32Array.from(filled(cols, 5), (v) => (Number.isFinite(v) ? v : 1));
      const mean = new Float32Array(rows);
      const rstd = new Float32Array(rows);
      js.layerNormRows(x, rows, cols, gamma, new Float32Array(cols), 1e-5, new Float32Array(n), mean, rstd);
      for (const need of [{ dx: true, dGamma: true, dBeta: true }, { dx: true, dGamma: false, dBeta: false }, { dx: false, dGamma: true, dBeta: false }, { dx: false, dGamma: false, dBeta: true }]) {
        const a = w.layerNormBackwardRows(x, dy, rows, cols, gamma, mean, rstd, need);
        const b = js.layerNormBackwardRows(x, dy, rows, cols, gamma, mean, rstd, need);
        for (const k of ['dx', 'dGamma', 'dBeta'] as const) {
          expect(a[k] === null).toBe(b[k] === null);
          if (a[k] && b[k]) expectSameBits(a[k]!, b[k]!);
        }
      }
    }
  });

  it('a scalar operand (x ∘ c, and c ∘ x for + and ×) gives the js kernel’s bits, specials included', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const n of [256, 257, 5003]) {
      const x = allocF32(n);
      x.set(filled(n, n));
      for (const c of [0.125, -3, 0, -0, Number.NaN, Infinity, 1e-45]) {
        const cs = Float32Array.of(c);
        for (const op of MAP_BINARY_OPS) {
          const [a, b] = [allocF32(n), new Float32Array(n)];
          w.binary(op, x, [n], cs, [1], [n], a);
          js.binary(op, x, [n], cs, [1], [n], b);
          expectSameBits(a, b);
          if (op === 'add' || op === 'mul') {
            w.binary(op, cs, [], x, [n], [n], a);
            js.binary(op, cs, [], x, [n], [n], b);
            expectSameBits(a, b);
          }
        }
      }
    }
  });

  it('column sums give the js kernel’s bits (blocks of 8 columns and the rest, 1 and 2 threads)', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const [rows, cols] of [[1, 8], [3, 9], [7, 17], [60, 100], [1500, 128], [300, 3000], [2, 2100]] as const) {
      const g = allocF32(rows * cols);
      g.set(filled(rows * cols, rows + cols));
      for (const threads of [1, 2]) {
        setThreads(threads);
        expectSameBits(w.columnSums(g, rows, cols), js.columnSums(g, rows, cols));
      }
    }
    setThreads(1);
  });

  it('Adam (plain, L2, decoupled) gives the js kernel’s bits over several steps, on 1 and 2 threads, arena or not', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const n of [5, 2047, 4099, 40001]) {
      for (const [weightDecay, decoupled] of [[0, false], [0.01, false], [0.1, true]] as const) {
        for (const threads of [1, 2]) {
          setThreads(threads);
          // allocF32 puts ≥ 2048 elements in the arena (the wasm kernel); smaller ones take the js path
          const mk = (seed: number, scale: number): Float32Array => {
            const a = allocF32(n);
            a.set(filled(n, seed).map((x) => (Number.isFinite(x) ? x * scale : 0.5)));
            return a;
          };
          const [wA, mA, vA] = [mk(1, 1), mk(2, 0.1), mk(3, 0.1).map(Math.abs)];
          const state = [wA, mA, allocF32(n)] as Float32Array[];
          state[2]!.set(vA);
          const copy = state.map((a) => Float32Array.from(a));
          for (let t = 1; t <= 3; t++) {
            const g = mk(10 + t, 2);
            const p = { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay, decoupled, bc1: 1 - 0.9 ** t, bc2: 1 - 0.98 ** t };
            w.adamUpdate(state[0]!, g, state[1]!, state[2]!, p);
            js.adamUpdate(copy[0]!, Float32Array.from(g), copy[1]!, copy[2]!, p);
          }
          state.forEach((a, i) => expectSameBits(a, copy[i]!));
        }
      }
    }
    setThreads(1);
  });

  it('broadcasting shapes and other ops still run (on the js kernels)', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    const a = filled(512 * 4, 5);
    const b = filled(4, 9);
    const o1 = new Float32Array(a.length);
    const o2 = new Float32Array(a.length);
    w.binary('mul', a, [512, 4], b, [4], [512, 4], o1);
    js.binary('mul', a, [512, 4], b, [4], [512, 4], o2);
    expectSameBits(o1, o2);
    w.unary('tanh', a, o1, 0);
    js.unary('tanh', a, o2, 0);
    expectSameBits(o1, o2);
  });
});
