import { afterAll, describe, expect, it } from 'vitest';
import { WorkerError } from '../../src/errors.js';
import { gemm } from '../../src/kernels/gemm.js';
import { matmulNaive } from '../../src/kernels/matmul.js';
import { allocF32 } from '../../src/kernels/storage.js';
import { getThreads, parallelRows, poolSize, poolStats, resetPoolStats, setParallelMinCost, setThreads, shutdownPool, splitRows } from '../../src/kernels/threads/pool.js';

const prev = getThreads();
afterAll(() => {
  setThreads(prev);
  setParallelMinCost(1 << 20);
  shutdownPool();
});

function checkGemm(): void {
  const [m, n, k] = [96, 40, 50];
  const a = allocF32(m * k).map((_v, i) => Math.sin(i));
  const b = allocF32(k * n).map((_v, i) => Math.cos(i));
  const c = allocF32(m * n);
  gemm(a, 0, b, 0, c, 0, { m, n, k, transA: false, transB: false, accumulate: false });
  const ref = matmulNaive(a, b, { m, n, k, transA: false, transB: false });
  ref.forEach((v, i) => expect(c[i]).toBeCloseTo(v, 3));
}

describe('worker pool', () => {
  it('splits rows into aligned, contiguous, covering chunks', () => {
    expect(splitRows(10, 4, 2)).toEqual([[0, 8], [8, 10]]);
    expect(splitRows(17, 4, 3)).toEqual([[0, 8], [8, 16], [16, 17]]);
    expect(splitRows(3, 4, 4)).toEqual([[0, 3]]);
  });

  it('starts lazily and runs jobs posted right after start (no missed job)', () => {
    shutdownPool();
    setThreads(3);
    setParallelMinCost(0);
    expect(poolSize()).toBe(0);
    checkGemm(); // the very first dispatch goes to workers that are just starting
    expect(poolSize()).toBe(2);
    for (let i = 0; i < 50; i++) checkGemm();
  });

  it('counts worker busy time: none before any job, then within the wall time of the interval', () => {
    shutdownPool();
    setThreads(2);
    setParallelMinCost(0);
    checkGemm(); // starts the pool
    resetPoolStats();
    expect(poolStats().busyMs).toEqual([0]);
    for (let i = 0; i < 20; i++) checkGemm();
    const { wallMs, busyMs, idleShare } = poolStats();
    expect(busyMs).toHaveLength(1);
    expect(busyMs[0]).toBeGreaterThan(0);
    expect(busyMs[0]).toBeLessThanOrEqual(wallMs);
    expect(idleShare).toBeCloseTo(1 - busyMs[0]! / wallMs, 12);
    resetPoolStats();
    expect(poolStats().busyMs).toEqual([0]);
  });

  it('a job that throws surfaces as a WorkerError, and the pool recovers', () => {
    setThreads(2);
    setParallelMinCost(0);
    const out = allocF32(4096);
    expect(() => parallelRows('throwingRows', { out, failAt: 4000 }, 4096, 1, 1e9)).toThrow(WorkerError);
    expect(() => parallelRows('throwingRows', { out, failAt: 4000 }, 4096, 1, 1e9)).toThrow(/injected failure at row 4000/);
    checkGemm();
  });

  it('a worker killed mid-task surfaces as a WorkerError (never a hang), and the pool recovers', () => {
    setThreads(2);
    setParallelMinCost(0);
    const out = allocF32(4096);
    const t0 = Date.now();
    expect(() => parallelRows('exitingRows', { out, failAt: 3000 }, 4096, 1, 1e9)).toThrow(/worker died/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    checkGemm();
    expect(poolSize()).toBe(1);
  });

  it('rejects invalid thread counts with a typed error', () => {
    expect(() => setThreads(0)).toThrow(WorkerError);
    expect(() => setThreads(1.5)).toThrow(/setThreads: thread count must be an integer/);
  });
});
