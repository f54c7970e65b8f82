import { afterEach, describe, expect, it } from 'vitest';
import { WorkerError } from '../../src/errors.js';
import { gemm } from '../../src/kernels/js/gemm-dispatch.js';
import { matmulNaive } from '../../src/kernels/js/gemm.js';
import { allocF32 } from '../../src/kernels/memory/storage.js';
import { jobTransportCounts, poolHasDeadWorker, poolSize, poolStats, resetPoolStats, setParallelMinCost, setThreads, setWorkStealing, shutdownPool, splitRows } from '../../src/kernels/threads/pool.js';
import { parallelRows } from '../../src/kernels/tasks.js';
import { restoreThreadsAfterAll } from '../helpers.js';

restoreThreadsAfterAll({ shutdown: true });

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
  // The fault tests place a fault in the first worker's chunk; with stealing off it fires there.
  afterEach(() => setWorkStealing(true));

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
    // With stealing on, a caller that finishes first may take the worker's chunk too (a slow or
    // loaded machine can run all 20 products on the main thread); off, each chunk stays put.
    setWorkStealing(false);
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

  it('every job reaches the worker exactly, however its arguments travel (JSON, v8 serialization, a message), awake or idle', async () => {
    setWorkStealing(false); // the worker's first chunk (rows [512, 1024)) always runs in the worker
    setThreads(2);
    setParallelMinCost(0);
    const arena = allocF32(4096);
    const plainShared = new Float32Array(new SharedArrayBuffer(4096 * 4)); // outside the arena: shared only by a message
    const cases: [Float32Array, number, string][] = [
      [arena, 2.5, 'json'],
      [arena, Number.NEGATIVE_INFINITY, 'v8: not finite'],
      [arena, -0, 'v8: negative zero'],
      [arena, 3, 'v8: a non-ASCII string \u00e9'],
      [plainShared, 1.5, 'a message: a SharedArrayBuffer outside the arena'],
    ];
    for (const idle of [false, true]) {
      for (const [out, value, label] of cases) {
        out.fill(7);
        const before = jobTransportCounts();
        if (idle) await new Promise((r) => setTimeout(r, 30)); // the worker is back on its event loop
        parallelRows('fillValueRows', { out, value, nested: { value, label } }, 4096, 1, 1e9);
        for (let r = 0; r < 4096; r += 97) expect(Object.is(out[r], value), `${label}, row ${r}: ${out[r]}`).toBe(true);
        expect(Object.is(out[700], value), label).toBe(true);
        const after = jobTransportCounts();
        const used = (['json', 'v8', 'port'] as const).filter((k) => after[k] > before[k]);
        expect(used, label).toEqual([label.startsWith('json') ? 'json' : label.startsWith('v8') ? 'v8' : 'port']);
      }
    }
  });

  it('a job that throws surfaces as a WorkerError, and the pool recovers', () => {
    setWorkStealing(false);
    setThreads(2);
    setParallelMinCost(0);
    const out = allocF32(4096);
    // 4096 rows on 2 threads are 4 chunks of 1024: row 1100 lies in the worker's first chunk
    expect(() => parallelRows('throwingRows', { out, failAt: 1100 }, 4096, 1, 1e9)).toThrow(WorkerError);
    expect(() => parallelRows('throwingRows', { out, failAt: 1100 }, 4096, 1, 1e9)).toThrow(/injected failure at row 1100/);
    checkGemm();
  });

  it('a worker killed mid-task surfaces as a WorkerError (never a hang), and the pool recovers', () => {
    setWorkStealing(false);
    setThreads(2);
    setParallelMinCost(0);
    const out = allocF32(4096);
    const t0 = Date.now();
    expect(() => parallelRows('exitingRows', { out, failAt: 1100 }, 4096, 1, 1e9)).toThrow(/worker died/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    checkGemm();
    expect(poolSize()).toBe(1);
  });

  it('a worker that dies while idle is replaced quietly: the next healthy call succeeds', async () => {
    setWorkStealing(false);
    setThreads(2);
    setParallelMinCost(0);
    const out = allocF32(4096);
    parallelRows('exitingAfterRows', { out, failAt: -1 }, 4096, 1, 1e9);
    out.forEach((v, r) => expect(v).toBe(r)); // the job itself completed
    // Its worker exits just after; wait (bounded) until the pool has seen the exit.
    for (let i = 0; i < 200 && !poolHasDeadWorker(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(poolHasDeadWorker()).toBe(true);
    checkGemm(); // formerly: WorkerError 'a worker died while running a job'
    expect(poolHasDeadWorker()).toBe(false);
    expect(poolSize()).toBe(1);
  });

  it('NMGRAD_WORKER_TIMEOUT_MS must be a positive integer; a valid one bounds the wait', () => {
    setWorkStealing(false);
    const saved = process.env.NMGRAD_WORKER_TIMEOUT_MS;
    setThreads(2);
    setParallelMinCost(0);
    try {
      for (const bad of ['abc', '0', '-5', '1.5', 'Infinity']) {
        process.env.NMGRAD_WORKER_TIMEOUT_MS = bad;
        shutdownPool();
        // Formerly read as NaN (or 0): a deadline that never expires, or one that always has.
        expect(() => checkGemm()).toThrow(new RegExp(`pool: NMGRAD_WORKER_TIMEOUT_MS must be a positive integer \\(milliseconds\\), got '${bad}'`));
        expect(() => checkGemm()).toThrow(WorkerError);
      }
      process.env.NMGRAD_WORKER_TIMEOUT_MS = '200';
      shutdownPool();
      const out = allocF32(4096);
      expect(() => parallelRows('stallingRows', { out, failAt: 3000 }, 4096, 1, 1e9)).toThrow(/workers did not finish within 200 ms \(3\/4 chunks done\)/);
    } finally {
      if (saved === undefined) delete process.env.NMGRAD_WORKER_TIMEOUT_MS;
      else process.env.NMGRAD_WORKER_TIMEOUT_MS = saved;
      shutdownPool();
    }
    checkGemm();
  });

  it('with stealing on, every chunk runs exactly once (fast and slow dispatches), and a failure on this thread still recovers', () => {
    setThreads(3);
    setParallelMinCost(0);
    for (let trial = 0; trial < 300; trial++) {
      const rows = 8 + (trial % 97) * 41;
      // out += v row by row: a chunk run twice (or never) leaves 2 (or 0) in its rows.
      const out = allocF32(rows * 2);
      parallelRows('addRowVectorRange', { out, cols: 2, v: Float32Array.of(1, 1) }, rows, 1, 1e9);
      out.forEach((v) => expect(v).toBe(1));
    }
    const out = allocF32(4096);
    // Row 3 is in chunk 0, which this thread always runs: the error is this thread's own.
    expect(() => parallelRows('throwingRows', { out, failAt: 3 }, 4096, 1, 1e9)).toThrow(/injected failure at row 3/);
    checkGemm();
  });

  it('rejects invalid thread counts with a typed error', () => {
    expect(() => setThreads(0)).toThrow(WorkerError);
    expect(() => setThreads(1.5)).toThrow(/setThreads: thread count must be an integer/);
  });
});
