import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOL_MAX_BYTES, RECYCLE_WINDOW_BYTES, allocF32, clearStoragePool, setArenaBudgetBytes, storagePoolStats } from '../../src/kernels/memory/storage.js';
import { SHARED_GC_BUDGET_BYTES, noteSharedBytes, sharedGcStats } from '../../src/kernels/memory/shared-gc.js';

describe('shared storage collection pressure', () => {
  it('keeps dropped SharedArrayBuffer tensors from piling up in a synchronous loop', () => {
    const before = sharedGcStats().collections;
    const n = 1 << 20; // 4 MiB each, shared
    const live: Float32Array[] = [];
    let total = 0;
    // 3 GiB allocated in all, a window of 8 live at a time, as a training step's graph would hold.
    for (let i = 0; i < 768; i++) {
      const a = allocF32(n);
      a[i % n] = i;
      live.push(a);
      if (live.length > 8) total += live.shift()![0]!;
    }
    expect(total).toBe(0);
    const stats = sharedGcStats();
    expect(stats.collections - before).toBeGreaterThanOrEqual(Math.floor((3 * 2 ** 30) / SHARED_GC_BUDGET_BYTES) - 1);
    // Without the forced collections this reaches about 3 GiB (the dropped buffers are never
    // freed); with them, what is left is the recycling window the registry holds in a loop that
    // never yields, the pool, and the buffers between two collections.
    expect(process.memoryUsage().arrayBuffers).toBeLessThan(RECYCLE_WINDOW_BYTES + POOL_MAX_BYTES + 2 * SHARED_GC_BUDGET_BYTES + 64 * 2 ** 20);
  });
});

// Tensors live in the arena (arena.test.ts) until its budget is spent; past it they fall back to
// plain shared buffers, recycled by exact size. A zero budget sends every tensor there.
describe('shared storage recycling (past the arena budget)', () => {
  beforeAll(() => setArenaBudgetBytes(0));
  afterAll(() => setArenaBudgetBytes(null));
  it('returns a dropped buffer to the pool after a collection and a turn of the event loop, zeroed', async () => {
    const n = 12345 * 4; // a size nothing else in this file allocates
    // Let what earlier tests dropped come back first, then empty the pool (its cap must not turn our buffer away).
    for (let i = 0; i < 3; i++) {
      noteSharedBytes(SHARED_GC_BUDGET_BYTES);
      await new Promise((r) => setTimeout(r, 10));
    }
    clearStoragePool();
    let a: Float32Array | null = allocF32(n);
    a.fill(3);
    const sab = a.buffer;
    a = null;
    for (let i = 0; i < 10 && storagePoolStats(n * 4).pooledOfSize === 0; i++) {
      noteSharedBytes(SHARED_GC_BUDGET_BYTES); // forces a collection
      await new Promise((r) => setTimeout(r, 10));
    }
    const before = storagePoolStats(n * 4);
    expect(before.pooledOfSize).toBe(1);
    const b = allocF32(n);
    expect(b.buffer).toBe(sab); // the same memory, handed out again
    expect(b.every((v) => v === 0)).toBe(true);
    expect(storagePoolStats().reused).toBe(before.reused + 1);
    clearStoragePool();
    expect(storagePoolStats().pooledBytes).toBe(0);
  });

  it('a live buffer is never handed out twice', async () => {
    const live = Array.from({ length: 16 }, () => allocF32(4096));
    live.forEach((a, i) => a.fill(i + 1));
    noteSharedBytes(SHARED_GC_BUDGET_BYTES);
    await new Promise((r) => setTimeout(r, 20));
    const more = Array.from({ length: 16 }, () => allocF32(4096));
    const buffers = new Set([...live, ...more].map((a) => a.buffer));
    expect(buffers.size).toBe(32);
    live.forEach((a, i) => expect(a.every((v) => v === i + 1)).toBe(true));
  });
});
