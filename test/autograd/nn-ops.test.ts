import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as ng from '../../src/index.js';
import { DataError, Rng, ShapeError, Tensor } from '../../src/index.js';
import { RUNS, arbShape, expectGrad, maxAbsDiff, randTensor } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

function refSoftmaxRows(x: Float32Array, cols: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += cols) {
    const row = Array.from(x.subarray(o, o + cols));
    const mx = Math.max(...row);
    const e = row.map((v) => Math.exp(v - mx));
    const s = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / s));
  }
  return out;
}

describeEachBackend('softmax / logSoftmax', () => {
  it('match the definition on any axis, are stable for large inputs, and pass gradcheck', () => {
    fc.assert(
      fc.property(arbShape(1, 3, 5), fc.nat(1000), fc.nat(5), (shape, seed, r) => {
        const x = randTensor(shape, seed, { scale: 3 });
        const cols = shape[shape.length - 1]!;
        expect(maxAbsDiff(ng.softmax(x).data, refSoftmaxRows(x.data, cols))).toBeLessThan(1e-6);
        expect(maxAbsDiff(ng.logSoftmax(x).data, refSoftmaxRows(x.data, cols).map(Math.log))).toBeLessThan(1e-5);
        const axis = r % shape.length;
        expectGrad((t) => ng.softmax(t, axis), [x]);
        expectGrad((t) => ng.logSoftmax(t, axis), [x]);
      }),
      { numRuns: RUNS },
    );
    const big = Tensor.fromArray([[1000, 1001, 1002]]);
    const s = ng.softmax(big);
    expect(Array.from(s.data).every(Number.isFinite)).toBe(true);
    expect(ng.logSoftmax(big).data[2]).toBeCloseTo(-0.4076, 4);
  });
});

describeEachBackend('layerNorm', () => {
  it('matches the definition and passes gradcheck with and without affine', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 2, max: 8 }), fc.nat(1000), (rows, cols, seed) => {
        const x = randTensor([rows, cols], seed, { scale: 2 });
        const g = randTensor([cols], seed + 1);
        const b = randTensor([cols], seed + 2);
        const y = ng.layerNorm(x, g, b);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(x.data.subarray(r * cols, (r + 1) * cols));
          const mu = row.reduce((a, v) => a + v, 0) / cols;
          const v = row.reduce((a, u) => a + (u - mu) ** 2, 0) / cols;
          for (let j = 0; j < cols; j++) expect(y.data[r * cols + j]).toBeCloseTo(((row[j]! - mu) / Math.sqrt(v + 1e-5)) * g.data[j]! + b.data[j]!, 4);
        }
        expectGrad((p, q, s) => ng.layerNorm(p, q, s), [x, g, b]);
        expectGrad((p) => ng.layerNorm(p), [x]);
      }),
      { numRuns: RUNS },
    );
    expect(() => ng.layerNorm(Tensor.zeros([2, 3]), Tensor.zeros([4]))).toThrow(/layerNorm: gamma \[4\] must be \[3\]/);
  });
});

describeEachBackend('embedding', () => {
  it('gathers rows, scatters gradients (repeated ids accumulate), rejects bad ids', () => {
    const w = randTensor([5, 3], 7);
    const ids = [0, 4, 4, 2];
    const y = ng.embedding(w, ids, [2, 2]);
    expect(y.shape).toEqual([2, 2, 3]);
    expect(Array.from(y.data.subarray(3, 6))).toEqual(Array.from(w.data.subarray(12, 15)));
    expectGrad((t) => ng.embedding(t, ids, [2, 2]), [w]);
    expect(() => ng.embedding(w, [5])).toThrow(DataError);
    expect(() => ng.embedding(w, [5])).toThrow(/embedding: id 5 at position 0 is outside \[0, 5\)/);
  });
});

describeEachBackend('dropout', () => {
  it('is seeded, scales kept values by 1/(1-p), is identity in eval, and its gradient uses the same mask', () => {
    const x = randTensor([50, 20], 3);
    const a = ng.dropout(x, 0.3, new Rng(9));
    const b = ng.dropout(x, 0.3, new Rng(9));
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    let zeros = 0;
    for (let i = 0; i < a.size; i++) {
      if (a.data[i] === 0) zeros++;
      else expect(a.data[i]).toBeCloseTo(x.data[i]! / 0.7, 5);
    }
    expect(zeros / a.size).toBeGreaterThan(0.25);
    expect(zeros / a.size).toBeLessThan(0.35);
    expect(ng.dropout(x, 0.3, new Rng(9), false)).toBe(x);
    expectGrad((t) => ng.dropout(t, 0.3, new Rng(9)), [randTensor([4, 5], 1)]);
    expect(() => ng.dropout(x, 1, new Rng(1))).toThrow(/dropout: p must be in \[0, 1\)/);
  });
});

describeEachBackend('where / maskedFill', () => {
  it('select with broadcasting and route gradients by the mask', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), fc.nat(1000), (r, c, seed) => {
        const rng = new Rng(seed);
        const cond = new Tensor(Float32Array.from({ length: c }, () => (rng.uniform() < 0.5 ? 1 : 0)), [1, c]);
        const a = randTensor([r, c], seed);
        const b = randTensor([r, 1], seed + 1);
        const y = ng.where(cond, a, b);
        for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) expect(y.data[i * c + j]).toBe(cond.data[j] ? a.data[i * c + j] : b.data[i]);
        expectGrad((p, q) => ng.where(cond, p, q), [a, b]);
        const f = ng.maskedFill(a, cond, -1e9);
        for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) expect(f.data[i * c + j]).toBe(cond.data[j] ? Math.fround(-1e9) : a.data[i * c + j]);
        expectGrad((p) => ng.maskedFill(p, cond, 0), [a]);
      }),
      { numRuns: RUNS },
    );
    expect(() => ng.maskedFill(Tensor.zeros([2]), Tensor.zeros([3, 2]), 0)).toThrow(/maskedFill/);
  });

  it('maskedFill with attention-style 4-D broadcast masks equals where() on the expanded mask, value and gradient', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 4, maxLength: 4 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), fc.nat(1000), (shape, keepDim, seed) => {
        const rng = new Rng(seed);
        const maskShape = shape.map((d, i) => (keepDim[i] ? d : 1));
        const mask = new Tensor(Float32Array.from({ length: maskShape.reduce((a, b) => a * b, 1) }, () => (rng.uniform() < 0.4 ? 1 : 0)), maskShape);
        const x = randTensor(shape, seed + 2);
        const got = ng.maskedFill(x, mask, -1e9);
        const want = ng.where(mask, Tensor.scalar(-1e9), x);
        expect(Array.from(got.data)).toEqual(Array.from(want.data));
        const g = randTensor(shape, seed + 3, {}, false);
        const gradOf = (f: (t: Tensor) => Tensor): number[] => {
          const t = new Tensor(x.data.slice(), shape, true);
          ng.sum(ng.mul(f(t), g)).backward();
          return Array.from(t.grad!.data);
        };
        expect(gradOf((t) => ng.maskedFill(t, mask, -1e9))).toEqual(gradOf((t) => ng.where(mask, Tensor.scalar(-1e9), t)));
      }),
      { numRuns: RUNS },
    );
  });
});

describeEachBackend('crossEntropy', () => {
  it('equals −mean log p with ignore index and PyTorch label smoothing, and passes gradcheck', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 2, max: 7 }), fc.double({ min: 0, max: 0.3, noNaN: true }), fc.nat(1000), (rows, classes, eps, seed) => {
        const rng = new Rng(seed);
        const x = randTensor([rows, classes], seed, { scale: 2 });
        const targets = Array.from({ length: rows }, (_v, i) => (i > 0 && rng.uniform() < 0.3 ? -1 : rng.int(classes)));
        const loss = ng.crossEntropy(x, targets, { ignoreIndex: -1, labelSmoothing: eps });
        let total = 0;
        let count = 0;
        const p = refSoftmaxRows(x.data, classes);
        targets.forEach((t, r) => {
          if (t === -1) return;
          const lp = p.slice(r * classes, (r + 1) * classes).map(Math.log);
          total += -(1 - eps) * lp[t]! - (eps / classes) * lp.reduce((a, v) => a + v, 0);
          count++;
        });
        expect(loss.item()).toBeCloseTo(total / count, 4);
        expectGrad((t) => ng.crossEntropy(t, targets, { ignoreIndex: -1, labelSmoothing: eps }), [x]);
      }),
      { numRuns: RUNS },
    );
    expect(() => ng.crossEntropy(Tensor.zeros([2, 3]), [0, 3])).toThrow(/crossEntropy: target 3 at row 1 is outside \[0, 3\)/);
    expect(() => ng.crossEntropy(Tensor.zeros([2, 3]), [0])).toThrow(ShapeError);
  });
});
