import { describe, expect, it } from 'vitest';
import { allocF32, allocOwned, arenaClassBytes, releaseOwned, storagePoolStats } from '../../src/kernels/memory/storage.js';
import { arenaMemory, arenaUsedBytes, inArena } from '../../src/kernels/memory/arena.js';
import { recyclesSynchronously, sharedGcStats } from '../../src/kernels/memory/shared-gc.js';

const MiB = 2 ** 20;

describe.runIf(arenaMemory() !== null)('tensor arena: freed blocks serve other size classes', () => {
  it('eight released neighbours of one class give a block of a class far above theirs, without the arena growing', () => {
    const small = 12345; // 49 380 bytes: class 57 344
    const large = 100000; // 400 000 bytes: class 458 752 = 8 × 57 344, ten classes up
    expect(arenaClassBytes(small * 4) * 8).toBe(arenaClassBytes(large * 4));
    const blocks = Array.from({ length: 8 }, () => allocOwned(() => allocF32(small)));
    // Fresh from the top, one after the other: one run of free memory once all are released.
    blocks.forEach((b, i) => expect(b.byteOffset).toBe(blocks[0]!.byteOffset + i * arenaClassBytes(small * 4)));
    const first = blocks[0]!.byteOffset;
    blocks.forEach((b) => b.fill(3));
    for (const b of blocks) expect(releaseOwned(b)).toBe(true);
    const used = arenaUsedBytes();
    const free = storagePoolStats().arenaFreeBytes;
    const big = allocF32(large);
    expect(inArena(big)).toBe(true);
    expect(arenaUsedBytes()).toBe(used); // no fresh memory from the top
    expect(big.byteOffset).toBe(first); // the run the eight blocks made
    expect(big.every((v) => v === 0)).toBe(true); // handed out zeroed
    expect(storagePoolStats().arenaFreeBytes).toBe(free - arenaClassBytes(large * 4));
  });
});

describe.runIf(arenaMemory() !== null && recyclesSynchronously())('tensor arena: bounded in a loop that never yields', () => {
  it('1 GiB of dying tensors of ever-changing shapes (as in a long decode) grows the arena by far less than the 512 MiB collection budget', () => {
    const start = arenaUsedBytes();
    const collections = sharedGcStats().collections;
    const live: Float32Array[] = [];
    let allocated = 0;
    // Rows × a length that grows step by step, as a batch's KV caches and logits do, over
    // batches of different widths: hundreds of size classes, each met for a while, then not.
    for (let batch = 0; allocated < 1024 * MiB; batch++) {
      const rows = 16 + ((batch * 37) % 97);
      for (let t = 1; t <= 60 && allocated < 1024 * MiB; t++) {
        const a = allocF32(rows * 64 * t + 2048);
        a[0] = t;
        allocated += a.length * 4;
        live.push(a);
        if (live.length > 6) live.shift();
      }
    }
    const grown = arenaUsedBytes() - start;
    expect(sharedGcStats().collections).toBeGreaterThan(collections); // dead blocks did come back
    expect(grown).toBeLessThan(320 * MiB);
  });
});
