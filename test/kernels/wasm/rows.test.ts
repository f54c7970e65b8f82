import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/kernels/random.js';
import { allocF32 } from '../../../src/kernels/memory/storage.js';
import { DEFAULT_PARALLEL_MIN_COST, setParallelMinCost, setThreads } from '../../../src/kernels/threads/pool.js';
import { hasSimd } from '../../../src/kernels/wasm/features.js';
import { createWasmRows } from '../../../src/kernels/wasm/rows.js';
import { wasmCrossEntropyBackward, wasmCrossEntropyLoss, wasmLogSoftmaxBackwardRows, wasmSoftmaxBackwardRows, wasmSoftmaxRows } from '../../../src/kernels/wasm/rows-dispatch.js';
import { RUNS, restoreThreadsAfterAll } from '../../helpers.js';

restoreThreadsAfterAll();

const bits = (x: Float32Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

function rand(n: number, rng: Rng, scale: number): Float32Array {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** float64 references, written from the definitions. */
function refSoftmax(x: Float32Array, rows: number, cols: number, log: boolean): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < cols; j++) mx = Math.max(mx, x[r * cols + j]!);
    if (mx === -Infinity) mx = 0;
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[r * cols + j]! - mx);
    for (let j = 0; j < cols; j++) out[r * cols + j] = log ? x[r * cols + j]! - mx - Math.log(s) : Math.exp(x[r * cols + j]! - mx) / s;
  }
  return out;
}

function expectClose(got: Float32Array, want: Float64Array, rel: number, abs: number): void {
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      expect(Object.is(got[i], Math.fround(w)) || (Number.isNaN(w) && Number.isNaN(got[i]))).toBe(true);
      continue;
    }
    const err = Math.abs(got[i]! - w);
    if (!(err <= abs + rel * Math.abs(w))) expect.fail(`element ${i}: got ${got[i]}, want ${w} (error ${err})`);
  }
}

describe.skipIf(!hasSimd())('wasm row kernels (softmax, log-softmax, cross-entropy)', () => {
  const k = createWasmRows();

  it('exp matches Math.exp to a few ulp over the whole f32 range, is 0 below 2^-126 and for -inf, NaN for NaN', () => {
    // crossEntropyBackward with eps = 0, scale = 1 and the target in a padding column is exp(logp).
    const xs: number[] = [];
    for (let x = -100; x <= 88; x += 0.0137) xs.push(x);
    xs.push(-Infinity, NaN, 0, -0, 1e-8, -1e-8, -87.3, -87.4);
    const cols = xs.length + 1;
    const logp = allocF32(cols);
    logp.set(xs);
    const gx = allocF32(cols);
    k.crossEntropyBackwardRows({ logp, targets: Int32Array.of(cols - 1), classes: cols, ignore: -1, eps: 0, scale: 1, gx }, 0, 1);
    let worstUlp = 0;
    xs.forEach((_, i) => {
      const x = logp[i]!; // the f32 input
      const want = Math.exp(x);
      const got = gx[i]!;
      if (Number.isNaN(x)) return expect(got).toBeNaN();
      if (x < -87.3366) return expect(got).toBe(0);
      const ulp = Math.abs(got - want) / (2 ** (Math.floor(Math.log2(want)) - 23));
      worstUlp = Math.max(worstUlp, ulp);
    });
    expect(worstUlp).toBeLessThan(2); // measured 0.93
  });

  it('softmax, log-softmax and their backward agree with float64 references (any width, masked entries, masked rows)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 1000 }), fc.boolean(), (rows, cols, seed, log) => {
        const rng = new Rng(seed);
        const x = rand(rows * cols, rng, 6);
        for (let i = 0; i < x.length; i += 5) x[i] = -Infinity; // masked scores
        if (rows > 2) x.fill(-Infinity, cols, 2 * cols); // one fully masked row
        const out = allocF32(rows * cols);
        k.softmaxRows({ x, out, cols, logSpace: log }, 0, rows);
        const want = refSoftmax(x, rows, cols, log);
        expectClose(out, want, 2e-6, log ? 2e-6 : 1e-7);
        // backward at this output, against the float64 formula on the f32 output
        const dy = rand(rows * cols, rng, 1);
        const dx = allocF32(rows * cols);
        k.softmaxBackwardRows({ y: out, dy, dx, cols, log }, 0, rows);
        const ref = new Float64Array(rows * cols);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let j = 0; j < cols; j++) s += log ? dy[r * cols + j]! : dy[r * cols + j]! * out[r * cols + j]!;
          for (let j = 0; j < cols; j++) {
            const i = r * cols + j;
            ref[i] = log ? dy[i]! - Math.exp(out[i]!) * s : out[i]! * (dy[i]! - s);
          }
        }
        expectClose(dx, ref, 1e-5, 1e-6);
      }),
      { numRuns: RUNS },
    );
  });

  it('a row holding a NaN comes out all NaN (softmax and log-softmax), the other rows as without it', () => {
    const [rows, cols] = [3, 37];
    const x = rand(rows * cols, new Rng(4), 3);
    for (const at of [0, 17, cols - 1]) {
      for (const log of [false, true]) {
        const xn = allocF32(rows * cols);
        xn.set(x);
        xn[cols + at] = Number.NaN;
        const out = allocF32(rows * cols);
        k.softmaxRows({ x: xn, out, cols, logSpace: log }, 0, rows);
        for (let j = 0; j < cols; j++) expect(out[cols + j]).toBeNaN();
        const want = allocF32(rows * cols);
        k.softmaxRows({ x, out: want, cols, logSpace: log }, 0, rows);
        for (const r of [0, 2]) expect(bits(out.subarray(r * cols, (r + 1) * cols))).toEqual(bits(want.subarray(r * cols, (r + 1) * cols)));
      }
    }
  });

  it('softmax scratch fits the grown memory when a block ends just below a page boundary (fresh instances)', () => {
    // A fresh instance has one 64 KiB page. With 4 columns a block of B rows needs 32·B bytes of
    // operands plus 12·B of per-row scratch; B in 1490..1637 puts the scratch across the page end
    // unless the grow accounts for all of it (it once counted only 8·B: out-of-bounds traps).
    for (const rows of [1490, 1600, 1637, 3000]) {
      const fresh = createWasmRows();
      const x = rand(rows * 4, new Rng(rows), 3);
      for (const log of [false, true]) {
        const out = allocF32(rows * 4);
        fresh.softmaxRows({ x, out, cols: 4, logSpace: log }, 0, rows);
        expectClose(out, refSoftmax(x, rows, 4, log), 2e-6, log ? 2e-6 : 1e-7);
      }
    }
  });

  it('cross-entropy backward agrees with the float64 formula, ignored rows are 0', () => {
    const rng = new Rng(3);
    const [rows, classes, eps, scale] = [13, 1003, 0.1, 1 / 13];
    const logits = rand(rows * classes, rng, 3);
    const logp = allocF32(rows * classes);
    k.softmaxRows({ x: logits, out: logp, cols: classes, logSpace: true }, 0, rows);
    const targets = Int32Array.from({ length: rows }, (_, r) => (r % 4 === 1 ? -100 : (r * 37) % classes));
    const gx = allocF32(rows * classes);
    gx.fill(7); // every element is written
    k.crossEntropyBackwardRows({ logp, targets, classes, ignore: -100, eps, scale, gx }, 0, rows);
    const ref = new Float64Array(rows * classes);
    for (let r = 0; r < rows; r++) {
      if (targets[r] === -100) continue;
      for (let j = 0; j < classes; j++) ref[r * classes + j] = (Math.exp(logp[r * classes + j]!) - eps / classes) * scale - (j === targets[r] ? (1 - eps) * scale : 0);
    }
    expectClose(gx, ref, 1e-6, 1e-9);
  });

  it('cross-entropy loss agrees with the float64 sum of −(1−ε)·logp[t] − ε·mean(logp) over non-ignored rows', () => {
    const rng = new Rng(5);
    for (const [rows, classes] of [[13, 1003], [40, 3000], [7, 5], [300, 37]] as const) {
      const logits = rand(rows * classes, rng, 3);
      const logp = allocF32(rows * classes);
      k.softmaxRows({ x: logits, out: logp, cols: classes, logSpace: true }, 0, rows);
      const targets = Int32Array.from({ length: rows }, (_, r) => (r % 4 === 1 ? -100 : (r * 37) % classes));
      for (const eps of [0, 0.1]) {
        const { total, count } = wasmCrossEntropyLoss(logp, targets, rows, classes, -100, eps);
        let want = 0;
        let n = 0;
        let mag = 0;
        for (let r = 0; r < rows; r++) {
          if (targets[r] === -100) continue;
          let s = 0;
          let sa = 0;
          for (let j = 0; j < classes; j++) {
            s += logp[r * classes + j]!;
            sa += Math.abs(logp[r * classes + j]!);
          }
          want += -(1 - eps) * logp[r * classes + targets[r]!]! - (eps * s) / classes;
          mag += (eps * sa) / classes;
          n++;
        }
        expect(count).toBe(n);
        // each row's Σ logp in f32 lanes: at most (classes + 8)·2⁻²³·Σ|logp| off
        expect(Math.abs(total - want)).toBeLessThanOrEqual((classes + 8) * 2 ** -23 * mag + 1e-12);
      }
    }
  });

  it('threaded calls are bitwise identical for 1 and 2 threads', () => {
    setParallelMinCost(0);
    const rng = new Rng(9);
    const [rows, cols] = [37, 301];
    const x = rand(rows * cols, rng, 4);
    const dy = rand(rows * cols, rng, 1);
    const targets = Int32Array.from({ length: rows }, (_, r) => (r * 11) % cols);
    const run = (threads: number): Float32Array[] => {
      setThreads(threads);
      const [s, l, ds, dl, g] = [0, 1, 2, 3, 4].map(() => allocF32(rows * cols)) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
      wasmSoftmaxRows(x, rows, cols, s, false);
      wasmSoftmaxRows(x, rows, cols, l, true);
      wasmSoftmaxBackwardRows(s, dy, rows, cols, ds);
      wasmLogSoftmaxBackwardRows(l, dy, rows, cols, dl);
      wasmCrossEntropyBackward(l, targets, rows, cols, -100, 0.1, 0.5, g);
      const { total } = wasmCrossEntropyLoss(l, targets, rows, cols, -100, 0.1);
      // the loss's float64 bits, as two f32 words
      return [s, l, ds, dl, g, new Float32Array(Float64Array.of(total).buffer)];
    };
    const one = run(1);
    const two = run(2);
    one.forEach((a, i) => expect(bits(two[i]!).equals(bits(a))).toBe(true));
    setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
  });
});
