import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValueError } from '../../src/errors.js';
import { backendByName } from '../../src/kernels/backend.js';
import { jsBackend } from '../../src/kernels/js/backend.js';
import '../../src/kernels/wasm/backend.js';
import { hasSimd } from '../../src/kernels/wasm/features.js';
import { dropoutMask, Rng } from '../../src/kernels/random.js';
import { allocF32 } from '../../src/kernels/memory/storage.js';
import { DEFAULT_PARALLEL_MIN_COST, poolSize, setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';
import { restoreThreadsAfterAll } from '../helpers.js';

restoreThreadsAfterAll({ shutdown: true });

/**
 * The dropout mask kernel keeps the generator in locals for the whole buffer. It must give the
 * per-element loop `rng.uniform() >= p ? scale : 0` bit for bit, and leave the generator in the
 * same state (the next draws, getState(), the spare normal). Split over threads, each chunk
 * starts from the generator moved ahead with Rng.advance, which must equal drawing that many.
 */
function oldMask(rng: Rng, p: number, scale: number, n: number): Float32Array {
  const keep = new Float32Array(n);
  for (let i = 0; i < n; i++) keep[i] = rng.uniform() >= p ? scale : 0;
  return keep;
}

function expectSame(seed: number, warmup: number, p: number, n: number): void {
  const a = new Rng(seed);
  const b = new Rng(seed);
  for (let i = 0; i < warmup; i++) {
    a.nextU32();
    b.nextU32();
  }
  if (warmup % 2 === 1) {
    a.normal();
    b.normal();
  }
  const scale = 1 / (1 - Math.min(p, 0.5));
  const want = oldMask(a, p, scale, n);
  const got = new Float32Array(n);
  dropoutMask(b, p, scale, got);
  for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) expect.fail(`seed ${seed}, p ${p}, n ${n}: element ${i} is ${got[i]}, the per-element loop gives ${want[i]}`);
  expect(b.getState()).toEqual(a.getState());
  expect([b.nextU32(), b.normal(), b.uniform()]).toEqual([a.nextU32(), a.normal(), a.uniform()]);
}

describe('dropoutMask', () => {
  it('equals the per-element uniform() loop for many lengths, rates and seeds', () => {
    for (const n of [0, 1, 2, 3, 7, 64, 1000, 4099]) {
      for (const p of [0, 1e-12, 0.1, 0.25, 0.5, 0.9, 0.999999]) {
        for (const seed of [0, 1, 42, 0xffffffff]) expectSame(seed, n % 5, p, n);
      }
    }
  });

  it('equals it for arbitrary seeds, offsets into the stream and rates (property)', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(20), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.nat(600), (seed, warmup, p, n) => {
        expectSame(seed, warmup, p, n);
      }),
      { numRuns: 200 },
    );
  });

  it('compares at the exact boundary u/2^32 = p the way uniform() >= p does', () => {
    for (const seed of [3, 17, 99]) {
      const peek = new Rng(seed);
      const u = peek.nextU32();
      for (const [p, kept] of [[u / 2 ** 32, 1], [(u + 1) / 2 ** 32, 0], [(u - 0.5) / 2 ** 32, 1], [(u + 0.5) / 2 ** 32, 0]] as const) {
        const keep = new Float32Array(1);
        dropoutMask(new Rng(seed), p, 2, keep);
        expect(keep[0], `u = ${u}, p·2^32 = ${p * 2 ** 32}`).toBe(kept * 2);
        expectSame(seed, 0, p, 5);
      }
    }
  });

  it('gives the same masks across consecutive calls as one long loop', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const want = oldMask(a, 0.3, 1.5, 300);
    const parts = [new Float32Array(1), new Float32Array(0), new Float32Array(150), new Float32Array(149)];
    for (const part of parts) dropoutMask(b, 0.3, 1.5, part);
    expect(Array.from(parts.flatMap((q) => Array.from(q)))).toEqual(Array.from(want));
    expect(b.getState()).toEqual(a.getState());
  });
});

describe('Rng.advance', () => {
  it('equals that many nextU32 draws (state and the draws after)', () => {
    for (const n of [0, 1, 2, 3, 31, 32, 33, 64, 127, 1000, 4096, 65537]) {
      const a = new Rng(77);
      const b = new Rng(77);
      a.normal(); // a spare normal in the state, which advance leaves alone
      b.normal();
      for (let i = 0; i < n; i++) a.nextU32();
      b.advance(n);
      expect(b.getState(), `n = ${n}`).toEqual(a.getState());
      expect([b.nextU32(), b.nextU32()]).toEqual([a.nextU32(), a.nextU32()]);
    }
  });

  it('composes: advance(m) then advance(n) is advance(m + n)', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(2 ** 40), fc.nat(2 ** 40), (seed, m, n) => {
        const a = new Rng(seed);
        const b = new Rng(seed);
        a.advance(m);
        a.advance(n);
        b.advance(m + n);
        expect(a.getState()).toEqual(b.getState());
      }),
      { numRuns: 50 },
    );
  });

  it('refuses a count that is not a non-negative safe integer', () => {
    for (const n of [-1, 1.5, NaN, Infinity, 2 ** 53]) expect(() => new Rng(1).advance(n)).toThrow(ValueError);
    expect(() => new Rng(1).advance(-1)).toThrow(/Rng.advance.*-1/);
  });
});

describe('dropoutMask split over the pool', () => {
  it('is bitwise the single-pass mask with the same generator state after, on 1 and 2 threads', () => {
    setParallelMinCost(0);
    try {
      for (const n of [3 * 4096 + 123, 8192, 50_001]) {
        for (const threads of [1, 2]) {
          setThreads(threads);
          const a = new Rng(n);
          const b = new Rng(n);
          a.uniform();
          b.uniform();
          const want = oldMask(a, 0.2, 1.25, n);
          const got = allocF32(n);
          jsBackend.dropoutMask(b, 0.2, 1.25, got);
          if (threads === 2) expect(poolSize(), 'the mask was split').toBe(1);
          for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) expect.fail(`${threads} threads, n ${n}: element ${i} is ${got[i]}, want ${want[i]}`);
          expect(b.getState()).toEqual(a.getState());
        }
      }
    } finally {
      setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
    }
  });
});

describe.skipIf(!hasSimd())('dropoutMask on wasm (four generators side by side in SIMD lanes)', () => {
  const wasm = () => backendByName('wasm');

  it('is bitwise the per-element loop at lengths that cross every block size, with the same generator state after', () => {
    for (const n of [1023, 1024, 1025, 255 + 256, 16384, 16384 + 16383, 3 * 16384 + 4 * 64 + 7, 100_003]) {
      for (const p of [0, 0.1, 0.5, 0.999999, 1]) {
        const a = new Rng(n + 7);
        const b = new Rng(n + 7);
        a.uniform();
        b.uniform();
        const scale = 1 / (1 - Math.min(p, 0.5));
        const want = oldMask(a, p, scale, n);
        const got = allocF32(n);
        wasm().dropoutMask(b, p, scale, got);
        for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) expect.fail(`n ${n}, p ${p}: element ${i} is ${got[i]}, the per-element loop gives ${want[i]}`);
        expect(b.getState()).toEqual(a.getState());
      }
    }
  });

  it('the same on 1 and 2 threads, split over the pool, and for a buffer outside the arena', () => {
    setParallelMinCost(0);
    try {
      const n = 5 * 16384 + 1000;
      const a = new Rng(9);
      const want = oldMask(a, 0.3, 1 / 0.7, n);
      for (const threads of [1, 2]) {
        setThreads(threads);
        for (const got of [allocF32(n), new Float32Array(n)]) {
          const b = new Rng(9);
          wasm().dropoutMask(b, 0.3, 1 / 0.7, got);
          for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) expect.fail(`${threads} threads: element ${i} is ${got[i]}, want ${want[i]}`);
          expect(b.getState()).toEqual(a.getState());
        }
      }
    } finally {
      setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
    }
  });
});
