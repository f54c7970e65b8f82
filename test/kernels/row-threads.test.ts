import { describe, expect, it } from 'vitest';
import type { AdamParams } from '../../src/kernels/backend.js';
import { jsBackend } from '../../src/kernels/js/backend.js';
import { Rng } from '../../src/kernels/random.js';
import { allocF32 } from '../../src/kernels/memory/storage.js';
import { DEFAULT_PARALLEL_MIN_COST, poolSize, setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';
import { restoreThreadsAfterAll } from '../helpers.js';

/**
 * The threaded row kernels of the js backend: bitwise equal for 1 and 2 threads (every split
 * edge lands mid-matrix: 37 rows), and within float32 rounding of a float64 loop written here.
 */
restoreThreadsAfterAll({ shutdown: true });

const [ROWS, COLS] = [37, 129];
const rng = new Rng(7);
const rand = (n: number, scale = 1): Float32Array => {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
};

/** Runs `fn` at 1 and at 2 threads (pool forced for any size) and returns both results. */
function bothThreadCounts<T>(fn: () => T): [T, T] {
  setParallelMinCost(0);
  setThreads(1);
  const one = fn();
  setThreads(2);
  const two = fn();
  expect(poolSize(), 'the 2-thread run used the worker').toBe(1);
  setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
  return [one, two];
}

function expectBitwise(a: Float32Array, b: Float32Array): void {
  expect(b.length).toBe(a.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) expect.fail(`element ${i}: ${a[i]} (1 thread) vs ${b[i]} (2 threads)`);
}

function expectClose(got: Float32Array, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (Math.abs(want[i]!) + 1));
  expect(worst).toBeLessThan(tol);
}

function softmax64(x: Float32Array, log: boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < ROWS; r++) {
    const row = Array.from(x.subarray(r * COLS, (r + 1) * COLS));
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
    for (const v of row) out.push(log ? v - lse : Math.exp(v - lse));
  }
  return out;
}

describe('js backend threaded row kernels', () => {
  const x = rand(ROWS * COLS, 3);
  const dy = rand(ROWS * COLS);

  it('softmax and log-softmax forward', () => {
    for (const log of [false, true]) {
      const [a, b] = bothThreadCounts(() => {
        const out = allocF32(ROWS * COLS);
        jsBackend.softmaxRows(x, ROWS, COLS, out, log);
        return out;
      });
      expectBitwise(a, b);
      expectClose(a, softmax64(x, log), 1e-5);
    }
  });

  it('softmax and log-softmax backward', () => {
    for (const log of [false, true]) {
      const y64 = softmax64(x, log);
      const y = Float32Array.from(y64);
      const [a, b] = bothThreadCounts(() => {
        const dx = allocF32(ROWS * COLS);
        (log ? jsBackend.logSoftmaxBackwardRows : jsBackend.softmaxBackwardRows)(y, dy, ROWS, COLS, dx);
        return dx;
      });
      expectBitwise(a, b);
      const want: number[] = [];
      for (let r = 0; r < ROWS; r++) {
        const o = r * COLS;
        let s = 0;
        for (let j = 0; j < COLS; j++) s += log ? dy[o + j]! : dy[o + j]! * y[o + j]!;
        for (let j = 0; j < COLS; j++) want.push(log ? dy[o + j]! - Math.exp(y[o + j]!) * s : y[o + j]! * (dy[o + j]! - s));
      }
      expectClose(a, want, 1e-5);
    }
  });

  it('layer norm forward with and without affine parameters (mean and 1/σ per row too)', () => {
    const gamma = rand(COLS);
    const beta = rand(COLS);
    for (const affine of [true, false]) {
      const [a, b] = bothThreadCounts(() => {
        const out = allocF32(ROWS * COLS);
        const mean = new Float32Array(ROWS);
        const rstd = new Float32Array(ROWS);
        jsBackend.layerNormRows(x, ROWS, COLS, affine ? gamma : null, affine ? beta : null, 1e-5, out, mean, rstd);
        return { out, mean, rstd };
      });
      expectBitwise(a.out, b.out);
      expectBitwise(a.mean, b.mean);
      expectBitwise(a.rstd, b.rstd);
      const want: number[] = [];
      for (let r = 0; r < ROWS; r++) {
        const row = Array.from(x.subarray(r * COLS, (r + 1) * COLS));
        const mu = row.reduce((s, v) => s + v, 0) / COLS;
        const sd = Math.sqrt(row.reduce((s, v) => s + (v - mu) ** 2, 0) / COLS + 1e-5);
        row.forEach((v, j) => want.push(affine ? ((v - mu) / sd) * gamma[j]! + beta[j]! : (v - mu) / sd));
      }
      expectClose(a.out, want, 1e-5);
    }
  });

  it('cross-entropy backward with label smoothing and ignored rows', () => {
    const logp = Float32Array.from(softmax64(x, true));
    const targets = new Int32Array(ROWS).map((_v, r) => (r % 5 === 0 ? 0 : 1 + ((r * 31) % (COLS - 1))));
    const [a, b] = bothThreadCounts(() => {
      const gx = allocF32(ROWS * COLS);
      jsBackend.crossEntropyBackward(logp, targets, ROWS, COLS, 0, 0.1, 0.25, gx);
      return gx;
    });
    expectBitwise(a, b);
    const want: number[] = [];
    for (let r = 0; r < ROWS; r++) {
      for (let j = 0; j < COLS; j++) {
        const t = targets[r]!;
        want.push(t === 0 ? 0 : (Math.exp(logp[r * COLS + j]!) - 0.1 / COLS - (j === t ? 0.9 : 0)) * 0.25);
      }
    }
    expectClose(a, want, 1e-6);
  });

  it('Adam and AdamW updates over a buffer split mid-way', () => {
    const n = 5000;
    const w0 = rand(n);
    const g = rand(n);
    const m0 = rand(n, 0.1);
    const v0 = rand(n, 0.1).map(Math.abs);
    for (const decoupled of [false, true]) {
      const p: AdamParams = { lr: 1e-2, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01, decoupled, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.98 ** 3 };
      const [a, b] = bothThreadCounts(() => {
        const [w, m, v] = [w0, m0, v0].map((s) => { const c = allocF32(n); c.set(s); return c; }) as [Float32Array, Float32Array, Float32Array];
        jsBackend.adamUpdate(w, g, m, v, p);
        return { w, m, v };
      });
      expectBitwise(a.w, b.w);
      expectBitwise(a.m, b.m);
      expectBitwise(a.v, b.v);
      const want: number[] = [];
      for (let j = 0; j < n; j++) {
        let w = w0[j]!;
        let gj = g[j]!;
        if (decoupled) w *= 1 - p.lr * p.weightDecay;
        else gj += p.weightDecay * w;
        const m = p.beta1 * m0[j]! + (1 - p.beta1) * gj;
        const v = p.beta2 * v0[j]! + (1 - p.beta2) * gj * gj;
        want.push(w - (p.lr * m / p.bc1) / (Math.sqrt(v / p.bc2) + p.eps));
      }
      expectClose(a.w, want, 1e-5);
    }
  });
});
