import fc from 'fast-check';
import { expect, it } from 'vitest';
import { getBackend } from '../../src/kernels/backends.js';
import { matmulNaive } from '../../src/kernels/js/gemm.js';
import { Rng } from '../../src/kernels/random.js';
import { allocF32 } from '../../src/kernels/memory/storage.js';
import { setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';
import { RUNS, restoreThreadsAfterAll } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

function rand(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Dims including 1, primes, and non-multiples of every block size (MR=NR=4, KC=256, MC=64). */
const arbDim = fc.oneof(fc.integer({ min: 1, max: 13 }), fc.constantFrom(17, 31, 63, 65, 67, 127, 257, 263));

restoreThreadsAfterAll();

describeEachBackend('dense products (gemm, gemmBatched)', () => {
  it('all transpose forms equal the naive loop, with and without accumulation', () => {
    fc.assert(
      fc.property(arbDim, arbDim, arbDim, fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(1000), (m, n, k, transA, transB, accumulate, seed) => {
        const a = rand(m * k, seed);
        const b = rand(k * n, seed + 1);
        const c0 = rand(m * n, seed + 2);
        const c = Float32Array.from(c0);
        getBackend().gemm(a, 0, b, 0, c, 0, { m, n, k, transA, transB, accumulate });
        const ref = matmulNaive(a, b, { m, n, k, transA, transB });
        const tol = 1e-5 * Math.sqrt(k) * 4;
        for (let i = 0; i < ref.length; i++) expect(Math.abs(c[i]! - (ref[i]! + (accumulate ? c0[i]! : 0)))).toBeLessThan(tol);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('respects operand offsets (batched storage)', () => {
    const [m, n, k] = [5, 6, 7];
    const a = rand(3 * m * k, 1);
    const b = rand(2 * k * n, 2);
    const c = new Float32Array(3 * m * n);
    getBackend().gemmBatched({ a, b, c, aOffs: Int32Array.of(0, m * k, 2 * m * k), bOffs: Int32Array.of(k * n, 0, k * n), cOffs: Int32Array.of(0, m * n, 2 * m * n), spec: { m, n, k, transA: false, transB: false, accumulate: false } });
    for (let i = 0; i < 3; i++) {
      const bOff = i === 1 ? 0 : k * n;
      const ref = matmulNaive(a.subarray(i * m * k, (i + 1) * m * k), b.subarray(bOff, bOff + k * n), { m, n, k, transA: false, transB: false });
      ref.forEach((v, j) => expect(c[i * m * n + j]).toBeCloseTo(v, 4));
    }
  });

  it('is bitwise identical for 1, 2 and 3 threads (rows and batches)', () => {
    setParallelMinCost(0); // force the pool even for small products
    const cases: [number, number, number, boolean, boolean][] = [
      [130, 70, 300, false, false],
      [67, 129, 33, true, false],
      [64, 31, 257, false, true],
      [9, 5, 3, true, true],
    ];
    for (const [m, n, k, transA, transB] of cases) {
      const a = rand(m * k, m);
      const b = rand(k * n, n);
      const results = [1, 2, 3].map((t) => {
        setThreads(t);
        const c = allocF32(m * n);
        getBackend().gemm(a, 0, b, 0, c, 0, { m, n, k, transA, transB, accumulate: false });
        return c;
      });
      expect(Buffer.from(results[1]!.buffer).equals(Buffer.from(results[0]!.buffer))).toBe(true);
      expect(Buffer.from(results[2]!.buffer).equals(Buffer.from(results[0]!.buffer))).toBe(true);
    }
    const batched = [1, 2, 3].map((t) => {
      setThreads(t);
      const a = rand(5 * 12 * 20, 4);
      const b = rand(5 * 20 * 9, 5);
      const c = allocF32(5 * 12 * 9);
      const offs = (s: number): Int32Array => Int32Array.from({ length: 5 }, (_v, i) => i * s);
      getBackend().gemmBatched({ a, b, c, aOffs: offs(240), bOffs: offs(180), cOffs: offs(108), spec: { m: 12, n: 9, k: 20, transA: false, transB: false, accumulate: false } });
      return Array.from(c);
    });
    expect(batched[1]).toEqual(batched[0]);
    expect(batched[2]).toEqual(batched[0]);
  });
});
