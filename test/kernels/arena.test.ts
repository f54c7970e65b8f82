import { afterAll, describe, expect, it } from 'vitest';
import { arenaClassBytes, allocF32, storagePoolStats } from '../../src/kernels/memory/storage.js';
import { arenaUsedBytes, inArena, ptrOf } from '../../src/kernels/memory/arena.js';
import { SHARED_GC_BUDGET_BYTES, noteSharedBytes, recyclesSynchronously } from '../../src/kernels/memory/shared-gc.js';
import { backendByName, type Backend, type NMWeight } from '../../src/kernels/backend.js';
import '../../src/kernels/wasm/backend.js';
import { hasSimd } from '../../src/kernels/wasm/features.js';
import { PARALLEL_MIN_COST, dispatchCount, getThreads, setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';

/** Deterministic values in about [-2, 2]. */
function values(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 4;
  }
  return a;
}

const SENTINEL = 12345.5;

/**
 * Operands laid out in one arena tensor, each `gap` floats from the next (gaps hold SENTINEL),
 * at float offsets that are not multiples of 4 when `odd`: what a kernel reads or writes past
 * an operand shows up in the gaps, and misaligned addresses are exercised.
 */
function inArenaCopies(parts: Float32Array[], odd: boolean): { views: Float32Array[]; check: (outputs: Set<number>) => void } {
  const gap = 8;
  const total = parts.reduce((s, p) => s + p.length + gap, gap + 3);
  const big = allocF32(Math.max(total, 4096));
  expect(inArena(big)).toBe(true);
  big.fill(SENTINEL);
  let at = gap + (odd ? 1 : 0);
  const starts: number[] = [];
  const views = parts.map((p) => {
    const v = big.subarray(at, at + p.length);
    v.set(p);
    starts.push(at);
    at += p.length + gap + (odd ? 1 : 0);
    return v;
  });
  const inputs = parts.map((p) => p.slice());
  return {
    views,
    check(outputs) {
      // Inputs are unchanged, and nothing outside the operands was written.
      views.forEach((v, i) => {
        if (!outputs.has(i)) expect(Array.from(v)).toEqual(Array.from(inputs[i]!));
      });
      const owned = new Uint8Array(big.length);
      starts.forEach((s, i) => owned.fill(1, s, s + parts[i]!.length));
      for (let i = 0; i < big.length; i++) if (!owned[i] && big[i] !== SENTINEL) expect.fail(`element ${i} outside every operand was written: ${big[i]}`);
    },
  };
}

/** Equal bits (NaN equal to NaN). */
function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]) && Number.isNaN(got[i])) continue;
    if (!Object.is(got[i], want[i])) expect.fail(`${what}: element ${i}: in place ${got[i]}, staged ${want[i]}`);
  }
}

/**
 * Runs `call` twice on the same operands: once on plain Float32Arrays (outside the arena, so the
 * kernel stages them through scratch) and once on views inside the arena (read and written in
 * place). Outputs (indices in `outputs`) must be the same bits, and the arena run must touch
 * nothing but its outputs.
 */
function inPlaceMatchesStaged(parts: Float32Array[], outputs: number[], call: (ops: Float32Array[]) => void): void {
  for (const odd of [false, true]) {
    const staged = parts.map((p) => p.slice());
    call(staged);
    const { views, check } = inArenaCopies(parts, odd);
    call(views);
    for (const o of outputs) expectSameBits(views[o]!, staged[o]!, `operand ${o}${odd ? ' (misaligned)' : ''}`);
    check(new Set(outputs));
  }
}

describe('tensor arena storage', () => {
  it('hands out large tensors from the arena, zeroed, never overlapping while alive', () => {
    const live = [5000, 2048, 70000, 2049, 9999].map((n) => allocF32(n));
    for (const a of live) {
      expect(inArena(a)).toBe(true);
      expect(a.byteOffset % 64).toBe(0);
      expect(a.every((v) => v === 0)).toBe(true);
    }
    const spans = live.map((a) => [a.byteOffset, a.byteOffset + a.byteLength] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    expect(inArena(allocF32(100))).toBe(false); // small tensors stay on ordinary memory
  });

  it('size classes: 4 per power of two, never below the request, at most 25% above it', () => {
    for (const bytes of [8192, 8193, 10000, 12288, 16383, 65536 + 4, 3 * 2 ** 20 + 12, 123456789]) {
      const c = arenaClassBytes(bytes);
      expect(c).toBeGreaterThanOrEqual(bytes);
      expect(c).toBeLessThanOrEqual(bytes * 1.25);
      expect(arenaClassBytes(c)).toBe(c);
    }
  });

  it('returns a dropped block after a collection and a turn of the event loop, and hands it out again zeroed', async () => {
    const n = 33333; // a class nothing else here allocates
    let a: Float32Array | null = allocF32(n);
    a.fill(7);
    const at = a.byteOffset;
    a = null;
    const before = storagePoolStats();
    let b: Float32Array | null = null;
    for (let i = 0; i < 10; i++) {
      noteSharedBytes(SHARED_GC_BUDGET_BYTES); // forces a collection
      await new Promise((r) => setTimeout(r, 10));
      if (storagePoolStats().returned > before.returned) break;
    }
    const used = arenaUsedBytes();
    b = allocF32(n);
    expect(b.byteOffset).toBe(at); // the same block again, not a new one from the top
    expect(arenaUsedBytes()).toBe(used);
    expect(b.every((v) => v === 0)).toBe(true);
  });
});

describe.runIf(recyclesSynchronously())('tensor arena recycling in a loop that never yields', () => {
  it('a dropped block comes back right after a pressure collection, with no turn of the event loop', () => {
    const n = 77777; // a size class no other test here allocates
    let a: Float32Array | null = allocF32(n);
    a.fill(7);
    a = null;
    const before = storagePoolStats().returned;
    for (let i = 0; i < 3 && storagePoolStats().returned === before; i++) noteSharedBytes(SHARED_GC_BUDGET_BYTES); // a forced collection, then the drain
    expect(storagePoolStats().returned).toBeGreaterThan(before);
    const used = arenaUsedBytes();
    const b = allocF32(n);
    expect(inArena(b)).toBe(true);
    expect(arenaUsedBytes()).toBe(used); // a recycled block, not a new one from the top
    expect(b.every((v) => v === 0)).toBe(true);
  });

  it('1.5 GiB of 4 MiB tensors, 8 alive at a time: the arena grows by about two collection budgets, not by 1.5 GiB', () => {
    const n = 1 << 20;
    const start = arenaUsedBytes();
    const before = storagePoolStats();
    const live: Float32Array[] = [];
    let total = 0;
    for (let i = 0; i < 384; i++) {
      const a = allocF32(n);
      expect(inArena(a)).toBe(true);
      a[i % n] = i;
      live.push(a);
      if (live.length > 8) total += live.shift()![0]!;
    }
    expect(total).toBe(0); // every block handed out again was zeroed
    expect(storagePoolStats().reused - before.reused).toBeGreaterThan(200);
    expect(arenaUsedBytes() - start).toBeLessThan(2 * SHARED_GC_BUDGET_BYTES + 16 * 4 * n);
  });
});

describe.runIf(hasSimd())('wasm kernels on arena tensors: in place, the same bits as staged, nothing written outside', () => {
  const wasm: Backend = backendByName('wasm');
  const threadsBefore = getThreads();
  const minCostBefore = PARALLEL_MIN_COST;
  afterAll(() => {
    setThreads(threadsBefore);
    setParallelMinCost(minCostBefore);
  });
  /** On 2 threads every split kernel goes to the pool, so workers see the arena operands by reference. */
  const useThreads = (threads: number): void => {
    setThreads(threads);
    setParallelMinCost(threads > 1 ? 0 : minCostBefore);
  };

  for (const threads of [1, 2]) {
    it(`gemm (every transpose form, accumulate) and gemmBias, ${threads} thread(s)`, () => {
      useThreads(threads);
      const [m, n, k] = [67, 45, 130];
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const accumulate of [false, true]) {
            const spec = { m, n, k, transA, transB, accumulate };
            inPlaceMatchesStaged([values(m * k + 3, 1), values(k * n + 5, 2), values(m * n + 2, 3)], [2], ([a, b, c]) => wasm.gemm(a!, 3, b!, 5, c!, 2, spec));
          }
        }
      }
      const spec = { m, n, k, transA: false, transB: true, accumulate: false };
      const before = dispatchCount();
      inPlaceMatchesStaged([values(m * k, 4), values(k * n, 5), values(m * n, 6), values(n, 7)], [2], ([a, b, c, bias]) => wasm.gemmBias(a!, b!, c!, spec, bias!));
      expect(dispatchCount() > before).toBe(threads > 1);
      expect(ptrOf(values(4, 1))).toBe(-1);
    });

    it(`elementwise, permute, masked fill and layer norm, ${threads} thread(s)`, () => {
      useThreads(threads);
      for (const len of [257, 1001, 16385]) {
        for (const op of ['add', 'sub', 'mul', 'div'] as const) {
          inPlaceMatchesStaged([values(len, 8), values(len, 9), values(len, 10)], [2], ([a, b, out]) => wasm.binary(op, a!, [len], b!, [len], [len], out!));
        }
        inPlaceMatchesStaged([values(len, 11), values(len, 12)], [1], ([x, out]) => wasm.unary('relu', x!, out!, 0));
        inPlaceMatchesStaged([values(len, 13), values(len, 14), values(len, 15)], [2], ([x, g, gx]) => wasm.unaryBackward('relu', x!, x!, g!, gx!, 0));
        inPlaceMatchesStaged([values(len, 16), values(len, 17)], [0], ([dst, src]) => wasm.addInto(dst!, src!));
      }
      const shape = [6, 25, 4, 16];
      const size = 6 * 25 * 4 * 16;
      inPlaceMatchesStaged([values(size, 18), values(size, 19)], [1], ([src, out]) => wasm.permute(src!, shape, [0, 2, 1, 3], out!));
      const mask = values(6 * 16, 20).map((v) => (v > 0 ? 1 : 0));
      inPlaceMatchesStaged([values(size, 21), mask, values(size, 22)], [2], ([x, mk, out]) => wasm.maskedFill(x!, shape, mk!, [6, 1, 1, 16], -1e9, out!));
      // masks broadcast over the first dim (the pooled split keeps them whole): rank 4 and rank 2
      const mask2 = values(4 * 16, 51).map((v) => (v > 0 ? 1 : 0));
      inPlaceMatchesStaged([values(size, 52), mask2, values(size, 53)], [2], ([x, mk, out]) => wasm.maskedFill(x!, shape, mk!, [1, 1, 4, 16], -Infinity, out!));
      inPlaceMatchesStaged([values(size, 54), mask2, values(size, 55)], [2], ([x, mk, out]) => wasm.maskedFill(x!, shape, mk!, [4, 16], 0, out!));
      const [rows, cols] = [150, 64];
      inPlaceMatchesStaged([values(rows * cols, 23), values(cols, 24), values(cols, 25), values(rows * cols, 26), values(rows, 27), values(rows, 28)], [3, 4, 5], ([x, g, b, out, mean, rstd]) =>
        wasm.layerNormRows(x!, rows, cols, g!, b!, 1e-5, out!, mean!, rstd!),
      );
      const grads: Float32Array[][] = [];
      inPlaceMatchesStaged([values(rows * cols, 29), values(rows * cols, 30), values(cols, 31), values(rows, 32), values(rows, 33).map((v) => Math.abs(v) + 0.5)], [], ([x, dy, g, mean, rstd]) => {
        const r = wasm.layerNormBackwardRows(x!, dy!, rows, cols, g!, mean!, rstd!, { dx: true, dGamma: true, dBeta: true });
        grads.push([r.dx!, r.dGamma!, r.dBeta!]);
      });
      for (let i = 1; i < grads.length; i++) grads[i]!.forEach((t, j) => expectSameBits(t, grads[0]![j]!, `layer-norm backward output ${j}`));
    });

    it(`softmax rows (widths on and off a multiple of 4), their backward and cross-entropy backward, ${threads} thread(s)`, () => {
      useThreads(threads);
      for (const cols of [25, 64, 301]) {
        const rows = 97;
        for (const logSpace of [false, true]) {
          inPlaceMatchesStaged([values(rows * cols, 34), values(rows * cols, 35)], [1], ([x, out]) => wasm.softmaxRows(x!, rows, cols, out!, logSpace));
        }
        inPlaceMatchesStaged([values(rows * cols, 36), values(rows * cols, 37), values(rows * cols, 38)], [2], ([y, dy, dx]) => wasm.softmaxBackwardRows(y!, dy!, rows, cols, dx!));
        inPlaceMatchesStaged([values(rows * cols, 39), values(rows * cols, 40), values(rows * cols, 41)], [2], ([y, dy, dx]) => wasm.logSoftmaxBackwardRows(y!, dy!, rows, cols, dx!));
        const targets = Int32Array.from({ length: rows }, (_, i) => (i * 7) % cols);
        targets[3] = 0; // the ignored class
        inPlaceMatchesStaged([values(rows * cols, 42).map((v) => v - 3), values(rows * cols, 43)], [1], ([logp, gx]) => wasm.crossEntropyBackward(logp!, targets, rows, cols, 0, 0.1, 1 / rows, gx!));
      }
    });

    it(`N:M forward, dX and kept dW, ${threads} thread(s)`, () => {
      useThreads(threads);
      const [rows, inDim, outDim, n, m] = [83, 64, 48, 1, 8];
      const dense = values(outDim * inDim, 44);
      const indices = new Uint8Array((outDim * inDim * n) / m);
      wasm.nmKeepOffsets(dense, outDim, inDim, n, m, indices);
      const w: NMWeight = { shape: [outDim, inDim], n, m, values: values(indices.length, 45), indices };
      inPlaceMatchesStaged([values(rows * inDim, 46), values(rows * outDim, 47), values(outDim, 48)], [1], ([x, y, bias]) => wasm.nmForward(x!, rows, w, bias!, y!));
      const outs: Float32Array[][] = [];
      inPlaceMatchesStaged([values(rows * outDim, 49), values(rows * inDim, 50)], [], ([dy, x]) => {
        outs.push([wasm.nmInputGrad(dy!, rows, w), wasm.nmKeptWeightGrad(dy!, x!, rows, w)]);
      });
      for (let i = 1; i < outs.length; i++) outs[i]!.forEach((t, j) => expectSameBits(t, outs[0]![j]!, j === 0 ? 'dX' : 'kept dW'));
    });
  }
});
