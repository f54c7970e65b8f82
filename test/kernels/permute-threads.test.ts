import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getBackend, withBackend } from '../../src/kernels/backend.js';
import { jsBackend } from '../../src/kernels/js/backend.js';
import { wasmBackend } from '../../src/kernels/wasm/backend.js';
import { Rng } from '../../src/kernels/random.js';
import { outerRows } from '../../src/kernels/shape.js';
import { permuteKernel } from '../../src/kernels/js/movement.js';
import { allocF32 } from '../../src/kernels/memory/storage.js';
import { DEFAULT_PARALLEL_MIN_COST, poolSize, setParallelMinCost, setThreads, shutdownPool, splitRows } from '../../src/kernels/threads/pool.js';
import { RUNS, restoreThreadsAfterAll } from '../helpers.js';

/**
 * The threaded permute of the js backend (which the wasm backend falls through to): equal to a
 * naive permute written from the definition for random shapes and permutations, equal for any
 * split of the output's outer rows, and bitwise equal for 1 and 2 threads.
 */
restoreThreadsAfterAll({ shutdown: true });

interface Case { shape: number[]; perm: number[]; seed: number }

/** Shapes of 0..5 dims (sizes 0..5, zero-size dims included) with a permutation of their dims. */
const arbCase: fc.Arbitrary<Case> = fc
  .array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 5 })
  .chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      perm: fc.shuffledSubarray([...shape.keys()], { minLength: shape.length, maxLength: shape.length }),
      seed: fc.nat(1 << 30),
    }),
  );

const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Random values, with some −0 and ∞ mixed in, so a copy must keep every bit. */
function input(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = allocF32(n);
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    a[i] = u < 0.05 ? -0 : u < 0.08 ? Infinity : rng.normal();
  }
  return a;
}

/**
 * out[i₀, …, i_{n−1}] = src[j] with j_{perm[k]} = i_k: each output flat index is decoded into
 * its multi-index, mapped back to the source multi-index, and encoded row-major in `shape`.
 */
function naivePermute(src: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const nd = shape.length;
  const outShape = perm.map((a) => shape[a]!);
  const n = count(shape);
  const out = new Float32Array(n);
  for (let flat = 0; flat < n; flat++) {
    const srcIdx = new Array<number>(nd).fill(0);
    let rest = flat;
    for (let k = nd - 1; k >= 0; k--) {
      srcIdx[perm[k]!] = rest % outShape[k]!;
      rest = Math.floor(rest / outShape[k]!);
    }
    let j = 0;
    for (let d = 0; d < nd; d++) j = j * shape[d]! + srcIdx[d]!;
    out[flat] = src[j]!;
  }
  return out;
}

function expectBitwise(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) expect.fail(`${what} element ${i}: ${got[i]} vs ${want[i]}`);
}

const describeCase = (c: Case): string => `shape [${c.shape.join(', ')}] perm [${c.perm.join(', ')}]`;

describe('permute split over the pool', () => {
  it('the serial kernel matches a naive permute', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const src = input(count(c.shape), c.seed);
        const out = allocF32(src.length);
        permuteKernel(src, c.shape, c.perm, out);
        expectBitwise(out, naivePermute(src, c.shape, c.perm), describeCase(c));
      }),
      { numRuns: RUNS * 8 },
    );
  });

  it('any split of the outer rows gives the whole permute', () => {
    fc.assert(
      fc.property(arbCase, fc.integer({ min: 1, max: 7 }), (c, parts) => {
        const src = input(count(c.shape), c.seed);
        const want = naivePermute(src, c.shape, c.perm);
        const out = allocF32(src.length).fill(NaN);
        const rows = outerRows(c.perm.map((a) => c.shape[a]!));
        for (const [r0, r1] of splitRows(rows, 1, parts)) permuteKernel(src, c.shape, c.perm, out, r0, r1);
        expectBitwise(out, want, `${describeCase(c)} in ${parts} parts`);
      }),
      { numRuns: RUNS * 8 },
    );
  });

  it('1 and 2 threads give bitwise identical output, equal to the naive permute', () => {
    const cases = fc.sample(arbCase, { numRuns: RUNS * 4, seed: 5 });
    // The attention head split and merge ([B, T, H, Dh] ↔ [B, H, T, Dh]) and odd sizes whose
    // split edges land mid-row.
    cases.push({ shape: [3, 37, 4, 16], perm: [0, 2, 1, 3], seed: 1 }, { shape: [3, 4, 37, 16], perm: [0, 2, 1, 3], seed: 2 });
    cases.push({ shape: [37, 129], perm: [1, 0], seed: 3 }, { shape: [2, 3, 5, 7, 11], perm: [4, 2, 0, 3, 1], seed: 4 });
    const run = (): Float32Array[] =>
      cases.map((c) => {
        const src = input(count(c.shape), c.seed);
        const out = allocF32(src.length);
        jsBackend.permute(src, c.shape, c.perm, out);
        return out;
      });
    setParallelMinCost(0);
    setThreads(1);
    const one = run();
    setThreads(2);
    const two = run();
    expect(poolSize(), 'the 2-thread run used the worker').toBe(1);
    setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
    cases.forEach((c, i) => {
      const want = naivePermute(input(count(c.shape), c.seed), c.shape, c.perm);
      expectBitwise(one[i]!, want, `1 thread, ${describeCase(c)}`);
      expectBitwise(two[i]!, one[i]!, `2 vs 1 threads, ${describeCase(c)}`);
    });
  });

  it('a large head split leaves the calling thread at the default threshold; small ones stay', () => {
    setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
    setThreads(2);
    shutdownPool();
    /** Permutes a [b, t, h, d] tensor to [b, h, t, d] and checks it against the naive permute. */
    const headSplit = (shape: number[], seed: number, label: string): void => {
      const src = input(count(shape), seed);
      const out = allocF32(src.length);
      jsBackend.permute(src, shape, [0, 2, 1, 3], out);
      expectBitwise(out, naivePermute(src, shape, [0, 2, 1, 3]), label);
    };
    headSplit([2, 8, 4, 16], 9, 'small');
    expect(poolSize(), 'a small permute stays on the calling thread').toBe(0);
    headSplit([8, 64, 8, 64], 10, 'large');
    expect(poolSize(), 'a 256k-element permute is split').toBe(1);
  });

  it('the wasm backend routes expand to the threaded js kernel, and permute to its own (test/kernels/wasm/map.test.ts)', () => {
    expect(wasmBackend.permute).not.toBe(jsBackend.permute);
    expect(wasmBackend.expand).toBe(jsBackend.expand);
    withBackend('js', () => expect(getBackend().permute).toBe(jsBackend.permute));
  });
});
