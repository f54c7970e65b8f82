import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/kernels/random.js';
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

  /** Rows of moderate values around a per-row offset (as activations are), cols wide; a few rows shifted far from 0. */
  const lnInput = (rows: number, cols: number, seed: number): Float32Array => {
    const rng = new Rng(seed);
    const x = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const shift = r % 5 === 4 ? 1000 * rng.normal() : rng.normal();
      const scale = r % 3 === 2 ? 1e-3 : 1 + Math.abs(rng.normal());
      for (let j = 0; j < cols; j++) x[r * cols + j] = shift + scale * rng.normal();
    }
    return x;
  };
  const u = 2 ** -23;
  const within = (what: string, got: number, want: number, tol: number): void => {
    if (!(Math.abs(got - want) <= tol)) expect.fail(`${what}: got ${got}, want ${want} ± ${tol}`);
  };

  it('layer norm with γ and β: outputs, means and 1/σ within the f32 bound of the js kernel’s float64', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const [rows, cols] of [[1, 1], [3, 5], [300, 64], [7, 1000], [1500, 128], [2, 20000], [5, 259]] as const) {
      for (const eps of [1e-5, 1e-6]) {
        const n = rows * cols;
        const x = lnInput(rows, cols, rows + cols);
        const rng = new Rng(cols);
        const gamma = Float32Array.from({ length: cols }, () => 1 + 0.5 * rng.normal());
        const beta = Float32Array.from({ length: cols }, () => rng.normal());
        const run = (be: typeof w): Float32Array[] => {
          const out = new Float32Array(n);
          const mean = new Float32Array(rows);
          const rstd = new Float32Array(rows);
          be.layerNormRows(x, rows, cols, gamma, beta, eps, out, mean, rstd);
          return [out, mean, rstd];
        };
        const [[o, m, r], [oj, mj, rj]] = [run(w), run(js)];
        const k = cols + 16;
        for (let i = 0; i < rows; i++) {
          let absMean = 0;
          for (let j = 0; j < cols; j++) absMean += Math.abs(x[i * cols + j]!) / cols;
          // μ from an f32 sum: |δμ| ≤ (cols + 16)·2⁻²³·mean|x|
          const dMu = k * u * absMean;
          within(`mean of row ${i} (${rows}×${cols})`, m![i]!, mj![i]!, dMu);
          // var sums (x − μ)² in f32: relative k·2⁻²³, plus δμ² / var from μ's error (large only
          // where |μ| ≫ σ, e.g. the rows shifted by ~1000 with σ ~ 10⁻³: f32 itself runs out there)
          const rel = 4 * k * u + dMu * dMu * rj![i]! * rj![i]!;
          within(`1/σ of row ${i} (${rows}×${cols})`, r![i]!, rj![i]!, rel * rj![i]! + 1e-30);
          for (let j = 0; j < cols; j++) {
            const e = i * cols + j;
            const xh = Math.abs(x[e]! - mj![i]!) * rj![i]!;
            const tol = 2 * Math.abs(gamma[j]!) * (xh * (rel + 2 * u) + dMu * rj![i]!) + 2 * u * Math.abs(beta[j]!) + 1e-30;
            within(`out[${e}] (${rows}×${cols})`, o![e]!, oj![e]!, tol);
          }
        }
      }
    }
  });

  it('layer norm: a row holding NaN or ±∞ comes out all NaN, like the js kernel; other rows are untouched by it', () => {
    const w = backendByName('wasm');
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const [rows, cols] = [4, 37];
      const x = lnInput(rows, cols, 3);
      x[cols + 5] = bad;
      const out = new Float32Array(rows * cols);
      const dy = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
      const gamma = new Float32Array(cols).fill(1);
      const [mean, rstd] = [new Float32Array(rows), new Float32Array(rows)];
      w.layerNormRows(x, rows, cols, gamma, new Float32Array(cols), 1e-5, out, mean, rstd);
      const dx = w.layerNormBackwardRows(x, dy, rows, cols, gamma, mean, rstd, { dx: true, dGamma: false, dBeta: false }).dx!;
      for (let e = 0; e < rows * cols; e++) {
        const inBad = Math.floor(e / cols) === 1;
        expect(Number.isNaN(out[e]!)).toBe(inBad);
        expect(Number.isNaN(dx[e]!)).toBe(inBad);
      }
    }
  });

  it('layer-norm backward with γ: dγ, dβ give the js kernel’s bits, dx lies within the f32 bound of its float64, in every combination', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const [rows, cols] of [[1, 1], [3, 5], [301, 64], [7, 1000], [1500, 128], [2, 20000], [5, 259]] as const) {
      const n = rows * cols;
      const x = lnInput(rows, cols, rows * cols);
      const rng = new Rng(rows);
      const dy = Float32Array.from({ length: n }, () => rng.normal());
      const gamma = Float32Array.from({ length: cols }, () => 1 + 0.5 * rng.normal());
      const mean = new Float32Array(rows);
      const rstd = new Float32Array(rows);
      js.layerNormRows(x, rows, cols, gamma, new Float32Array(cols), 1e-5, new Float32Array(n), mean, rstd);
      for (const need of [{ dx: true, dGamma: true, dBeta: true }, { dx: true, dGamma: false, dBeta: false }, { dx: false, dGamma: true, dBeta: false }, { dx: false, dGamma: false, dBeta: true }]) {
        const a = w.layerNormBackwardRows(x, dy, rows, cols, gamma, mean, rstd, need);
        const b = js.layerNormBackwardRows(x, dy, rows, cols, gamma, mean, rstd, need);
        for (const k of ['dx', 'dGamma', 'dBeta'] as const) expect(a[k] === null).toBe(b[k] === null);
        if (a.dGamma) expectSameBits(a.dGamma, b.dGamma!);
        if (a.dBeta) expectSameBits(a.dBeta, b.dBeta!);
        if (!a.dx) continue;
        for (let i = 0; i < rows; i++) {
          // |terms| of rstd·((g − mean g) − x̂·mean(g·x̂)), each from f32 sums over the row
          let absG = 0;
          let absGX = 0;
          for (let j = 0; j < cols; j++) {
            const xh = (x[i * cols + j]! - mean[i]!) * rstd[i]!;
            const g = dy[i * cols + j]! * gamma[j]!;
            absG += Math.abs(g) / cols;
            absGX += Math.abs(g * xh) / cols;
          }
          for (let j = 0; j < cols; j++) {
            const e = i * cols + j;
            const xh = Math.abs((x[e]! - mean[i]!) * rstd[i]!);
            const tol = (cols + 16) * u * rstd[i]! * (Math.abs(dy[e]! * gamma[j]!) + absG + xh * absGX) * 4 + 1e-30;
            within(`dx[${e}] (${rows}×${cols})`, a.dx[e]!, b.dx![e]!, tol);
          }
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

  it('Adam (plain, L2, decoupled): each step within the f32 bound of the js kernel’s float64, the same bits on 1 and 2 threads, arena or not', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    const u = 2 ** -23;
    for (const n of [5, 2047, 4099, 40001]) {
      for (const [weightDecay, decoupled] of [[0, false], [0.01, false], [0.1, true]] as const) {
        const runs: Float32Array[][] = [];
        for (const threads of [1, 2]) {
          setThreads(threads);
          // allocF32 puts ≥ 2048 elements in the arena (the wasm kernel); smaller ones take the js path
          const mk = (seed: number, scale: number): Float32Array => {
            const a = allocF32(n);
            a.set(filled(n, seed).map((x) => (Number.isFinite(x) && Math.abs(x) < 1e6 ? x * scale : 0.5)));
            return a;
          };
          const state = [mk(1, 1), mk(2, 0.1), mk(3, 0.1)] as Float32Array[];
          state[2]!.set(state[2]!.map(Math.abs));
          for (let t = 1; t <= 3; t++) {
            const g = mk(10 + t, 2);
            const p = { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay, decoupled, bc1: 1 - 0.9 ** t, bc2: 1 - 0.98 ** t };
            const before = state.map((a) => Float32Array.from(a));
            const ref = state.map((a) => Float32Array.from(a));
            w.adamUpdate(state[0]!, g, state[1]!, state[2]!, p);
            js.adamUpdate(ref[0]!, Float32Array.from(g), ref[1]!, ref[2]!, p);
            for (let e = 0; e < n; e++) {
              const [w0, m0, v0] = before.map((a) => a[e]!) as [number, number, number];
              const ge = Math.abs(g[e]!) + (weightDecay !== 0 && !decoupled ? Math.abs(weightDecay * w0) : 0);
              const mTol = 4 * u * (0.9 * Math.abs(m0) + 0.1 * ge);
              const vTol = 4 * u * (0.98 * v0 + 0.02 * ge * ge);
              const step = Math.abs(ref[0]![e]! - (decoupled ? w0 * (1 - p.lr * weightDecay) : w0));
              const wTol = 4 * u * Math.abs(w0) + 16 * u * step + 1e-30;
              if (!(Math.abs(state[1]![e]! - ref[1]![e]!) <= mTol + 1e-30)) expect.fail(`m[${e}] (n ${n}, step ${t}): ${state[1]![e]} vs ${ref[1]![e]}`);
              if (!(Math.abs(state[2]![e]! - ref[2]![e]!) <= vTol + 1e-30)) expect.fail(`v[${e}] (n ${n}, step ${t}): ${state[2]![e]} vs ${ref[2]![e]}`);
              if (!(Math.abs(state[0]![e]! - ref[0]![e]!) <= wTol)) expect.fail(`w[${e}] (n ${n}, step ${t}): ${state[0]![e]} vs ${ref[0]![e]}`);
            }
          }
          runs.push(state);
        }
        runs[1]!.forEach((a, i) => expectSameBits(a, runs[0]![i]!));
      }
    }
    setThreads(1);
  });

  it('the gradient of x·c for a one-element c is g·c in one pass: the js kernel’s bits, with and without c’s own gradient', () => {
    const w = backendByName('wasm');
    const js = backendByName('js');
    for (const [shape, cShape] of [[[60, 25, 128], []], [[3, 1000], [1]], [[300], [1, 1]]] as const) {
      const n = shape.reduce((p, d) => p * d, 1);
      const g = allocF32(n);
      g.set(filled(n, 4));
      const x = allocF32(n);
      x.set(filled(n, 8));
      for (const c of [0.125, -3, Number.NaN, -0]) {
        const cs = Float32Array.of(c);
        for (const needB of [false, true]) {
          const [ga, gb] = w.binaryBackward('mul', g, x, shape, cs, cShape, shape, true, needB);
          const [ja, jb] = js.binaryBackward('mul', g, x, shape, cs, cShape, shape, true, needB);
          expectSameBits(ga!, ja!);
          expect(gb === null).toBe(!needB);
          if (gb) expectSameBits(gb, jb!);
        }
      }
    }
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
