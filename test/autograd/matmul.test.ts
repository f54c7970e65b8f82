import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as ng from '../../src/index.js';
import { ShapeError, Tensor } from '../../src/index.js';
import { matmulNaive } from '../../src/kernels/js/gemm.js';
import { RUNS, expectGrad, maxAbsDiff, randTensor } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

describeEachBackend('matmul op', () => {
  it('2-D matmul matches the naive loop and passes gradcheck', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.nat(1000), (m, k, n, seed) => {
        const a = randTensor([m, k], seed);
        const b = randTensor([k, n], seed + 1);
        const ref = matmulNaive(a.data, b.data, { m, n, k, transA: false, transB: false });
        expect(maxAbsDiff(ng.matmul(a, b).data, ref)).toBeLessThan(1e-5);
        expectGrad(ng.matmul, [a, b]);
      }),
      { numRuns: RUNS },
    );
  });

  it('transB: a·bᵀ over the last two dims with broadcast batches matches the naive loop and passes gradcheck', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.boolean(), fc.nat(1000), (bsz, h, m, n, bcastB, seed) => {
        const k = 5;
        const a = randTensor([bsz, h, m, k], seed);
        const b = randTensor(bcastB ? [h, n, k] : [bsz, 1, n, k], seed + 1);
        const y = ng.matmul(a, b, { transB: true });
        expect(y.shape).toEqual([bsz, h, m, n]);
        for (let i = 0; i < bsz; i++) {
          for (let j = 0; j < h; j++) {
            const am = a.data.subarray((i * h + j) * m * k, (i * h + j + 1) * m * k);
            const bi = bcastB ? j : i;
            const ref = matmulNaive(am, b.data.subarray(bi * n * k, (bi + 1) * n * k), { m, n, k, transA: false, transB: true });
            expect(maxAbsDiff(y.data.subarray((i * h + j) * m * n, (i * h + j + 1) * m * n), ref)).toBeLessThan(1e-5);
          }
        }
        expectGrad((p, q) => ng.matmul(p, q, { transB: true }), [a, b]);
      }),
      { numRuns: RUNS },
    );
    expect(() => ng.matmul(randTensor([2, 3], 1), randTensor([3, 2], 2), { transB: true })).toThrow(ShapeError);
  });

  it('batched matmul broadcasts batch dims, forward and gradient', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.nat(1000), (bsz, h, bcastB, seed) => {
        const a = randTensor([bsz, h, 3, 4], seed);
        const b = randTensor(bcastB ? [h, 4, 2] : [bsz, 1, 4, 2], seed + 1);
        const y = ng.matmul(a, b);
        expect(y.shape).toEqual([bsz, h, 3, 2]);
        for (let i = 0; i < bsz; i++) {
          for (let j = 0; j < h; j++) {
            const am = a.data.subarray((i * h + j) * 12, (i * h + j + 1) * 12);
            const bi = bcastB ? j : i;
            const bm = b.data.subarray(bi * 8, bi * 8 + 8);
            const ref = matmulNaive(am, bm, { m: 3, n: 2, k: 4, transA: false, transB: false });
            expect(maxAbsDiff(y.data.subarray((i * h + j) * 6, (i * h + j + 1) * 6), ref)).toBeLessThan(1e-5);
          }
        }
        expectGrad(ng.matmul, [a, b]);
      }),
      { numRuns: RUNS },
    );
  });

  it('linear (x·Wᵀ + b) matches matmul + add and passes gradcheck', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.nat(1000), (rows, inF, outF, seed) => {
        const x = randTensor([2, rows, inF], seed);
        const w = randTensor([outF, inF], seed + 1);
        const b = randTensor([outF], seed + 2);
        const ref = ng.add(ng.matmul(x, ng.transpose(w)), b);
        expect(maxAbsDiff(ng.linear(x, w, b).data, ref.data)).toBeLessThan(1e-5);
        expectGrad((p, q, r) => ng.linear(p, q, r), [x, w, b]);
      }),
      { numRuns: RUNS },
    );
  });

  it('mismatched inner dims raise a ShapeError naming matmul and both shapes', () => {
    expect(() => ng.matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5]))).toThrow(ShapeError);
    expect(() => ng.matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5]))).toThrow(/matmul: inner dims differ: \[2, 3\] · \[4, 5\]/);
    expect(() => ng.matmul(Tensor.zeros([2, 2, 3]), Tensor.zeros([3, 3, 2]))).toThrow(/matmul: batch dims/);
    expect(() => ng.linear(Tensor.zeros([2, 3]), Tensor.zeros([4, 5]))).toThrow(/linear: input \[2, 3\] does not end in 5/);
  });
});
