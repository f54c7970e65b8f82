import fc from 'fast-check';
import { afterAll, expect } from 'vitest';
import { DEFAULT_PARALLEL_MIN_COST, getThreads, setParallelMinCost, setThreads, shutdownPool } from '../src/kernels/threads/pool.js';
import { Rng, Tensor, gradcheck, type GradcheckOptions } from '../src/index.js';

export const RUNS = Number(process.env.NMGRAD_FC_RUNS ?? 25);

/** Shapes with 1..maxDims dims of size 1..maxDim (size-1 dims included on purpose). */
export const arbShape = (minDims = 1, maxDims = 3, maxDim = 4): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minDims, maxLength: maxDims });

/** Two shapes that broadcast together: each drops some leading dims and sets some to 1. */
export const arbBroadcastPair = (): fc.Arbitrary<[number[], number[]]> =>
  fc
    .record({
      out: arbShape(1, 3, 4),
      dropA: fc.nat(2),
      dropB: fc.nat(2),
      onesA: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
      onesB: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    })
    .map(({ out, dropA, dropB, onesA, onesB }) => {
      const mk = (drop: number, ones: boolean[]): number[] => out.slice(Math.min(drop, out.length - 1)).map((d, i) => (ones[i] ? 1 : d));
      return [mk(dropA, onesA), mk(dropB, onesB)];
    });

export interface ValueOpts {
  /** Keep |x| ≥ this (avoid kinks of relu/abs, poles of div). */
  awayFromZero?: number;
  positive?: boolean;
  scale?: number;
}

export function randTensor(shape: readonly number[], seed: number, opts: ValueOpts = {}, requiresGrad = true): Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  const scale = opts.scale ?? 1;
  for (let i = 0; i < n; i++) {
    let v = rng.normal() * scale;
    if (opts.positive) v = Math.abs(v) + 0.2;
    if (opts.awayFromZero !== undefined && Math.abs(v) < opts.awayFromZero) v = v < 0 ? v - opts.awayFromZero : v + opts.awayFromZero;
    d[i] = v;
  }
  return new Tensor(d, shape, requiresGrad);
}

/** Asserts gradcheck passes, with a readable failure. */
export function expectGrad(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): void {
  const r = gradcheck(fn, inputs, opts);
  expect(r.ok, `numeric ${r.numeric} vs analytic ${r.analytic} (error ${r.error}, tolerance ${r.tolerance})`).toBe(true);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Row-major multi-index of flat index i. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

/** Reads t at an output multi-index under numpy broadcasting (reference, slow). */
export function readBroadcast(t: Tensor, outIdx: number[]): number {
  const off = outIdx.length - t.ndim;
  let flat = 0;
  for (let d = 0; d < t.ndim; d++) flat = flat * t.shape[d]! + (t.shape[d] === 1 ? 0 : outIdx[off + d]!);
  return t.data[flat]!;
}

/**
 * Restores the thread count (and the parallel cost threshold) a test file found, after all its
 * tests; `shutdown` also stops the pool so the next file starts a fresh one.
 */
export function restoreThreadsAfterAll(opts: { shutdown?: boolean } = {}): void {
  const prev = getThreads();
  afterAll(() => {
    setThreads(prev);
    setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
    if (opts.shutdown) shutdownPool();
  });
}
