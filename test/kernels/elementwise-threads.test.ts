import { describe, expect, it } from 'vitest';
import type { BinaryOp, UnaryOp } from '../../src/kernels/backend.js';
import { jsBackend } from '../../src/kernels/js/backend.js';
import { Rng } from '../../src/kernels/random.js';
import { allocF32 } from '../../src/kernels/memory/storage.js';
import { DEFAULT_PARALLEL_MIN_COST, poolSize, setParallelMinCost, setThreads, shutdownPool } from '../../src/kernels/threads/pool.js';
import { restoreThreadsAfterAll } from '../helpers.js';

/**
 * The threaded elementwise kernels of the js backend (products and sums of buffers, unary and
 * binary ops and their backward, broadcasting, where, bias add and bias gradient, layer-norm
 * backward): bitwise equal for 1 and 2 threads with the pool forced for any size (sizes chosen
 * so every split edge lands mid-row or mid-matrix), and within float32 rounding of float64
 * loops written here.
 */
restoreThreadsAfterAll({ shutdown: true });

const [ROWS, COLS] = [37, 129];
const N = ROWS * COLS;
const rng = new Rng(11);
const rand = (n: number, scale = 1, shift = 0): Float32Array => {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale + shift;
  return a;
};

/**
 * Runs `fn` at 1 and at 2 threads (pool forced for any size) and returns both results;
 * `threaded` = false for work with nothing to split (the gradients of add are g itself).
 */
function bothThreadCounts<T>(fn: () => T, threaded = true): [T, T] {
  setParallelMinCost(0);
  setThreads(1);
  const one = fn();
  setThreads(2);
  const two = fn();
  expect(poolSize(), 'the 2-thread run used the worker').toBe(threaded ? 1 : 0);
  setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
  return [one, two];
}

function expectBitwise(a: Float32Array | null, b: Float32Array | null, what = ''): void {
  if (a === null || b === null) {
    expect(b, what).toBe(a);
    return;
  }
  expect(b.length, what).toBe(a.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) expect.fail(`${what} element ${i}: ${a[i]} (1 thread) vs ${b[i]} (2 threads)`);
}

function expectClose(got: Float32Array | null, want: ArrayLike<number>, tol: number, what = ''): void {
  expect(got, what).not.toBeNull();
  expect(got!.length, what).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got!.length; i++) {
    const e = Math.abs(got![i]! - want[i]!) / (Math.abs(want[i]!) + 1);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  expect(worst, `${what} worst at ${at}: ${got![at]} vs ${want[at]}`).toBeLessThan(tol);
}

/** erf by its Maclaurin series (float64, |x| ≤ 6 here), independent of the kernel's approximation. */
function erf64(x: number): number {
  if (Math.abs(x) > 5) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let k = 1; k < 200; k++) {
    term *= (-x * x) / k;
    sum += term / (2 * k + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const C = Math.sqrt(2 / Math.PI);
const UNARY: Record<UnaryOp, { f: (v: number) => number; d: (v: number) => number; input: 'any' | 'positive' }> = {
  neg: { f: (v) => -v, d: () => -1, input: 'any' },
  exp: { f: Math.exp, d: Math.exp, input: 'any' },
  log: { f: Math.log, d: (v) => 1 / v, input: 'positive' },
  sqrt: { f: Math.sqrt, d: (v) => 0.5 / Math.sqrt(v), input: 'positive' },
  tanh: { f: Math.tanh, d: (v) => 1 - Math.tanh(v) ** 2, input: 'any' },
  sigmoid: { f: (v) => 1 / (1 + Math.exp(-v)), d: (v) => Math.exp(-v) / (1 + Math.exp(-v)) ** 2, input: 'any' },
  relu: { f: (v) => Math.max(v, 0), d: (v) => (v > 0 ? 1 : 0), input: 'any' },
  abs: { f: Math.abs, d: Math.sign, input: 'any' },
  pow: { f: (v) => v ** 3, d: (v) => 3 * v * v, input: 'any' },
  gelu: { f: (v) => 0.5 * v * (1 + erf64(v / Math.SQRT2)), d: (v) => 0.5 * (1 + erf64(v / Math.SQRT2)) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI), input: 'any' },
  'gelu-tanh': {
    f: (v) => 0.5 * v * (1 + Math.tanh(C * (v + 0.044715 * v ** 3))),
    d: (v) => {
      const t = Math.tanh(C * (v + 0.044715 * v ** 3));
      return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * C * (1 + 3 * 0.044715 * v * v);
    },
    input: 'any',
  },
};

/** Flat index of `shape` (broadcast to `out`) for the output position with digits `idx`. */
function broadcastIndex(shape: readonly number[], out: readonly number[], idx: readonly number[]): number {
  let flat = 0;
  const off = out.length - shape.length;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d]! + (shape[d] === 1 ? 0 : idx[off + d]!);
  return flat;
}

function digitsOf(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return idx;
}

const size = (s: readonly number[]): number => s.reduce((p, d) => p * d, 1);
const F64: Record<BinaryOp, (x: number, y: number) => number> = { add: (x, y) => x + y, sub: (x, y) => x - y, mul: (x, y) => x * y, div: (x, y) => x / y };

/** Broadcast pairs: equal shapes, a row vector, a column, a scalar, both sides broadcast, 4-d. */
const SHAPE_PAIRS: [number[], number[], number[]][] = [
  [[ROWS, COLS], [ROWS, COLS], [ROWS, COLS]],
  [[ROWS, COLS], [COLS], [ROWS, COLS]],
  [[ROWS, 1], [ROWS, COLS], [ROWS, COLS]],
  [[ROWS, COLS], [], [ROWS, COLS]],
  [[ROWS, 1, 7], [1, 19, 7], [ROWS, 19, 7]],
  [[3, 1, 13, 11], [5, 1, 11], [3, 5, 13, 11]],
];

describe('js backend threaded elementwise kernels', () => {
  it('mulInto and addInto', () => {
    const a = rand(N);
    const b = rand(N);
    const [m1, m2] = bothThreadCounts(() => {
      const out = allocF32(N);
      jsBackend.mulInto(a, b, out);
      return out;
    });
    expectBitwise(m1, m2);
    expectClose(m1, Array.from(a, (v, i) => v * b[i]!), 1e-7);
    const [s1, s2] = bothThreadCounts(() => {
      const dst = allocF32(N);
      dst.set(a);
      jsBackend.addInto(dst, b);
      return dst;
    });
    expectBitwise(s1, s2);
    expectClose(s1, Array.from(a, (v, i) => v + b[i]!), 1e-7);
  });

  it('every unary op and its backward', () => {
    const any = rand(N, 2);
    const positive = rand(N, 1).map((v) => Math.abs(v) + 0.05);
    const g = rand(N);
    for (const [op, ref] of Object.entries(UNARY) as [UnaryOp, (typeof UNARY)[UnaryOp]][]) {
      const x = ref.input === 'positive' ? positive : any;
      const param = op === 'pow' ? 3 : 0;
      const [y1, y2] = bothThreadCounts(() => {
        const y = allocF32(N);
        jsBackend.unary(op, x, y, param);
        return y;
      });
      expectBitwise(y1, y2, op);
      expectClose(y1, Array.from(x, ref.f), 1e-5, op);
      const [d1, d2] = bothThreadCounts(() => {
        const gx = allocF32(N);
        jsBackend.unaryBackward(op, x, y1, g, gx, param);
        return gx;
      });
      expectBitwise(d1, d2, `${op} backward`);
      expectClose(d1, Array.from(x, (v, i) => g[i]! * ref.d(v)), 1e-5, `${op} backward`);
    }
  });

  it('binary ops under broadcasting and their gradients summed back to each operand', () => {
    for (const [aShape, bShape, outShape] of SHAPE_PAIRS) {
      const a = rand(size(aShape), 1);
      const b = rand(size(bShape), 0.5, 2); // away from 0 for div
      const n = size(outShape);
      const g = rand(n);
      for (const op of ['add', 'sub', 'mul', 'div'] as const) {
        const what = `${op} ${JSON.stringify(aShape)} ${JSON.stringify(bShape)}`;
        const [o1, o2] = bothThreadCounts(() => {
          const out = allocF32(n);
          jsBackend.binary(op, a, aShape, b, bShape, outShape, out);
          return out;
        });
        expectBitwise(o1, o2, what);
        const want: number[] = [];
        const ga = new Float64Array(a.length);
        const gb = new Float64Array(b.length);
        for (let i = 0; i < n; i++) {
          const idx = digitsOf(i, outShape);
          const [ia, ib] = [broadcastIndex(aShape, outShape, idx), broadcastIndex(bShape, outShape, idx)];
          const [x, y] = [a[ia]!, b[ib]!];
          want.push(F64[op](x, y));
          ga[ia] += op === 'mul' ? g[i]! * y : op === 'div' ? g[i]! / y : g[i]!;
          gb[ib] += op === 'add' ? g[i]! : op === 'sub' ? -g[i]! : op === 'mul' ? g[i]! * x : (-g[i]! * x) / (y * y);
        }
        expectClose(o1, want, 1e-6, what);
        for (const [needA, needB] of [[true, true], [true, false], [false, true]]) {
          const elementwise = op === 'mul' || op === 'div' || (op === 'sub' && needB!);
          const [r1, r2] = bothThreadCounts(() => jsBackend.binaryBackward(op, g, a, aShape, b, bShape, outShape, needA!, needB!), elementwise);
          expectBitwise(r1[0], r2[0], `${what} dA`);
          expectBitwise(r1[1], r2[1], `${what} dB`);
          if (needA) expectClose(r1[0], ga, 1e-5, `${what} dA`);
          else expect(r1[0]).toBeNull();
          if (needB) expectClose(r1[1], gb, 1e-5, `${what} dB`);
          else expect(r1[1]).toBeNull();
        }
      }
    }
  });

  it('expand (broadcast materialisation) of rows, columns, scalars and middle dims', () => {
    const cases = SHAPE_PAIRS.flatMap(([a, b, out]) => [[a, out], [b, out]] as const);
    for (const [shape, outShape] of [...cases, [[ROWS, COLS], [1, ROWS, COLS]], [[1], [3, 1, 5]]] as const) {
      const src = rand(size(shape));
      // Copies (equal element counts) and fills (one element) stay on the calling thread.
      const split = size(shape) !== size(outShape) && size(shape) !== 1;
      const [e1, e2] = bothThreadCounts(() => {
        const out = allocF32(size(outShape));
        jsBackend.expand(src, shape, outShape, out);
        return out;
      }, split);
      expectBitwise(e1, e2);
      const want = Array.from({ length: size(outShape) }, (_v, i) => src[broadcastIndex(shape, outShape, digitsOf(i, outShape))]!);
      expect(Array.from(e1)).toEqual(want);
    }
  });

  it('where and its gradient selection', () => {
    const cond = rand(N).map((v) => (v > 0.3 ? 1 : 0));
    const a = rand(N);
    const b = rand(N);
    const g = rand(N);
    const [w1, w2] = bothThreadCounts(() => {
      const out = allocF32(N);
      jsBackend.where(cond, a, b, out);
      return out;
    });
    expectBitwise(w1, w2);
    expect(Array.from(w1)).toEqual(Array.from(cond, (c, i) => (c !== 0 ? a[i]! : b[i]!)));
    for (const whenSet of [true, false]) {
      const [s1, s2] = bothThreadCounts(() => {
        const out = allocF32(N);
        jsBackend.selectGrad(cond, g, whenSet, out);
        return out;
      });
      expectBitwise(s1, s2);
      expect(Array.from(s1)).toEqual(Array.from(cond, (c, i) => ((c !== 0) === whenSet ? g[i]! : 0)));
    }
  });

  it('bias add (addRowVector) and bias gradient (columnSums)', () => {
    const x = rand(N);
    const v = rand(COLS);
    const [a1, a2] = bothThreadCounts(() => {
      const out = allocF32(N);
      out.set(x);
      jsBackend.addRowVector(out, ROWS, COLS, v);
      return out;
    });
    expectBitwise(a1, a2);
    expectClose(a1, Array.from(x, (e, i) => e + v[i % COLS]!), 1e-7);
    for (const [rows, cols] of [[ROWS, COLS], [1500, 40], [3, 33]] as const) {
      const g = rand(rows * cols, 1, 0.3);
      const [c1, c2] = bothThreadCounts(() => jsBackend.columnSums(g, rows, cols));
      expectBitwise(c1, c2);
      const want = new Float64Array(cols);
      for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) want[j] += g[r * cols + j]!;
      // Summed in float64, rounded once: the float32 nearest the exact float64 sum.
      expect(Array.from(c1)).toEqual(Array.from(Float32Array.from(want)));
    }
  });

  it('embedding rows (gatherRows) and their gradient (scatterAddRows), repeated ids included', () => {
    for (const [vocab, dim, n] of [[50, COLS, ROWS * 3], [7, 16, 300], [3000, 40, 1]] as const) {
      const weight = rand(vocab * dim);
      const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919 + (i % 5) * 13) % vocab);
      const [o1, o2] = bothThreadCounts(() => {
        const out = allocF32(n * dim);
        jsBackend.gatherRows(weight, dim, ids, out);
        return out;
      }, n > 1);
      expectBitwise(o1, o2);
      expect(Array.from(o1)).toEqual(Array.from({ length: n * dim }, (_, k) => weight[ids[Math.floor(k / dim)]! * dim + (k % dim)]!));
      const g = rand(n * dim);
      const [w1, w2] = bothThreadCounts(() => {
        const gw = allocF32(vocab * dim);
        jsBackend.scatterAddRows(g, ids, dim, gw);
        return gw;
      }, dim > 16);
      expectBitwise(w1, w2);
      // The float32 sums in id order, as a plain loop adds them.
      const want = new Float32Array(vocab * dim);
      for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) want[ids[i]! * dim + j] += g[i * dim + j]!;
      expectBitwise(w1, want);
    }
  });

  it('layer norm backward: dx, dγ, dβ in every combination, with and without γ', () => {
    const x = rand(N, 2, 0.5);
    const dy = rand(N);
    const gamma = rand(COLS, 0.5, 1);
    const mean = new Float32Array(ROWS);
    const rstd = new Float32Array(ROWS);
    for (let r = 0; r < ROWS; r++) {
      const row = Array.from(x.subarray(r * COLS, (r + 1) * COLS));
      const mu = row.reduce((s, e) => s + e, 0) / COLS;
      mean[r] = mu;
      rstd[r] = 1 / Math.sqrt(row.reduce((s, e) => s + (e - mu) ** 2, 0) / COLS + 1e-5);
    }
    // float64 oracle from the saved statistics
    const wantDx: number[] = [];
    const wantG = new Float64Array(COLS);
    const wantB = new Float64Array(COLS);
    const dxFor = (gm: Float32Array | null): number[] => {
      const out: number[] = [];
      for (let r = 0; r < ROWS; r++) {
        const xh = Array.from({ length: COLS }, (_v, j) => (x[r * COLS + j]! - mean[r]!) * rstd[r]!);
        const gj = xh.map((_v, j) => dy[r * COLS + j]! * (gm ? gm[j]! : 1));
        const mg = gj.reduce((s, e) => s + e, 0) / COLS;
        const mgx = gj.reduce((s, e, j) => s + e * xh[j]!, 0) / COLS;
        for (let j = 0; j < COLS; j++) out.push(rstd[r]! * (gj[j]! - mg - xh[j]! * mgx));
      }
      return out;
    };
    for (let r = 0; r < ROWS; r++) {
      for (let j = 0; j < COLS; j++) {
        wantG[j] += dy[r * COLS + j]! * (x[r * COLS + j]! - mean[r]!) * rstd[r]!;
        wantB[j] += dy[r * COLS + j]!;
      }
    }
    wantDx.push(...dxFor(gamma));
    const flags = [[true, true, true], [true, false, false], [false, true, false], [false, false, true], [false, true, true]];
    for (const [dx, dGamma, dBeta] of flags) {
      for (const gm of [gamma, null]) {
        const need = { dx: dx!, dGamma: dGamma!, dBeta: dBeta! };
        const [r1, r2] = bothThreadCounts(() => jsBackend.layerNormBackwardRows(x, dy, ROWS, COLS, gm, mean, rstd, need));
        const what = JSON.stringify(need) + (gm ? ' with γ' : ' without γ');
        expectBitwise(r1.dx, r2.dx, `${what} dx`);
        expectBitwise(r1.dGamma, r2.dGamma, `${what} dγ`);
        expectBitwise(r1.dBeta, r2.dBeta, `${what} dβ`);
        if (dx) expectClose(r1.dx, gm ? wantDx : dxFor(null), 1e-5, `${what} dx`);
        else expect(r1.dx).toBeNull();
        if (dGamma) expectClose(r1.dGamma, wantG, 1e-5, `${what} dγ`);
        else expect(r1.dGamma).toBeNull();
        if (dBeta) expectClose(r1.dBeta, wantB, 1e-6, `${what} dβ`);
        else expect(r1.dBeta).toBeNull();
      }
    }
  });

  it('layer norm backward equals the single-pass kernel it replaces, bitwise', () => {
    // The previous kernel: dγ, dβ accumulated in float64 inside the dx row loop.
    const [rows, cols] = [53, 96];
    const x = rand(rows * cols, 1.5);
    const dy = rand(rows * cols);
    const gamma = rand(cols, 0.3, 1);
    const mean = rand(rows, 0.1);
    const rstd = rand(rows, 0.1, 1);
    for (const gm of [gamma, null]) {
      const dx = new Float32Array(rows * cols);
      const dg = new Float64Array(cols);
      const db = new Float64Array(cols);
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        const mu = mean[r]!;
        const rs = rstd[r]!;
        let sumG = 0;
        let sumGX = 0;
        for (let j = 0; j < cols; j++) {
          const xh = (x[o + j]! - mu) * rs;
          const gj = dy[o + j]! * (gm ? gm[j]! : 1);
          sumG += gj;
          sumGX += gj * xh;
          dg[j] += dy[o + j]! * xh;
          db[j] += dy[o + j]!;
        }
        const inv = 1 / cols;
        for (let j = 0; j < cols; j++) {
          const xh = (x[o + j]! - mu) * rs;
          const gj = dy[o + j]! * (gm ? gm[j]! : 1);
          dx[o + j] = rs * (gj - inv * sumG - xh * inv * sumGX);
        }
      }
      const [r1, r2] = bothThreadCounts(() => jsBackend.layerNormBackwardRows(x, dy, rows, cols, gm, mean, rstd, { dx: true, dGamma: true, dBeta: true }));
      for (const r of [r1, r2]) {
        expectBitwise(dx, r.dx, 'dx');
        expectBitwise(Float32Array.from(dg), r.dGamma, 'dγ');
        expectBitwise(Float32Array.from(db), r.dBeta, 'dβ');
      }
    }
  });

  it('keeps small work on the calling thread at the default threshold', () => {
    setThreads(2);
    shutdownPool();
    const a = rand(1000);
    const out = allocF32(1000);
    jsBackend.mulInto(a, a, out);
    jsBackend.unary('gelu', a, out, 0);
    jsBackend.addRowVector(out, 10, 100, a.subarray(0, 100));
    expect(poolSize()).toBe(0);
    expect(out[0]).not.toBeNaN();
  });
});
