import { describe, expect, it } from 'vitest';
import { allocF32 } from '../../src/kernels/storage.js';
import { SHARED_GC_BUDGET_BYTES, sharedGcStats } from '../../src/kernels/shared-gc.js';

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
    // Without the forced collections this reaches about 3 GiB (the dropped buffers are never freed).
    expect(process.memoryUsage().arrayBuffers).toBeLessThan(2 * SHARED_GC_BUDGET_BYTES + 64 * 2 ** 20);
  });
});
