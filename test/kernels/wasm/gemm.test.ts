import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matmulNaive, matmulRows } from '../../../src/kernels/js/gemm.js';
import { type MatmulSpec } from '../../../src/kernels/backend.js';
import { Rng } from '../../../src/kernels/random.js';
import { allocF32 } from '../../../src/kernels/memory/storage.js';
import { inArena } from '../../../src/kernels/memory/arena.js';
import { setParallelMinCost, setThreads } from '../../../src/kernels/threads/pool.js';
import { hasRelaxedSimd } from '../../../src/kernels/wasm/features.js';
import { buildGemmModule, DEFAULT_SHAPE } from '../../../src/kernels/wasm/gemm-module.js';
import { WASM_MIN_VOLUME } from '../../../src/kernels/wasm/placement.js';
import { wasmGemm, wasmGemmBatched, wasmGemmBias } from '../../../src/kernels/wasm/gemm-dispatch.js';
import { createWasmGemm, type WasmGemm } from '../../../src/kernels/wasm/gemm.js';
import { validates } from '../../../src/kernels/memory/wasm-runtime.js';
import { RUNS, restoreThreadsAfterAll } from '../../helpers.js';

function rand(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

const abs = (x: Float32Array): Float32Array => x.map(Math.abs);
const bits = (x: Float32Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

/**
 * f32 accumulation against the float64 oracle: |c − ref| ≤ (k + 2)·2⁻²³·Σ|a||b| + 2⁻²³·|c₀|,
 * the recursive-summation error bound with room for the final add into C.
 */
function expectClose(c: Float32Array, a: Float32Array, b: Float32Array, c0: Float32Array | null, spec: MatmulSpec, rowStart = 0, rowEnd = spec.m): void {
  const ref = matmulNaive(a, b, spec);
  const mag = matmulNaive(abs(a), abs(b), spec);
  const u = 2 ** -23;
  for (let i = rowStart * spec.n; i < rowEnd * spec.n; i++) {
    const want = ref[i]! + (c0 ? c0[i]! : 0);
    const tol = (spec.k + 2) * u * mag[i]! + (c0 ? u * Math.abs(c0[i]!) : 0) + 1e-30;
    if (!(Math.abs(c[i]! - want) <= tol)) expect.fail(`element ${i} of ${JSON.stringify(spec)}: got ${c[i]}, want ${want} ± ${tol}`);
  }
}

/** Dims around every block edge: MR 4–6, NR 8–16, MC 18/120, KC 64/256 (1 and primes included). */
const arbDim = fc.oneof(fc.integer({ min: 1, max: 14 }), fc.constantFrom(16, 17, 18, 19, 23, 25, 31, 33, 63, 65, 119, 121, 127, 255, 257, 263));
const arbSpec = fc.record({ m: arbDim, n: arbDim, k: arbDim, transA: fc.boolean(), transB: fc.boolean(), accumulate: fc.boolean() });

const candidates: [string, WasmGemm][] = [
  ['default block', createWasmGemm({ relaxed: false })],
  ['6×8 block, unroll 4, MC 18, KC 64', createWasmGemm({ mr: 6, nv: 2, unroll: 4, relaxed: false, mc: 16, kc: 64 })],
  ['4×12 block, unroll 1', createWasmGemm({ mr: 4, nv: 3, unroll: 1, relaxed: false })],
  ['5×16 block, unroll 3', createWasmGemm({ mr: 5, nv: 4, unroll: 3, relaxed: false, mc: 10 })],
];
if (hasRelaxedSimd()) candidates.push(['default block, relaxed_madd', createWasmGemm({ relaxed: true })]);

restoreThreadsAfterAll();

describe('wasm GEMM module', () => {
  it('validates for every block shape, with and without relaxed_madd where the engine has it', () => {
    for (const mr of [1, 4, 6, 8]) {
      for (const nv of [1, 2, 4]) expect(validates(buildGemmModule({ mr, nv, unroll: 4, relaxed: false }))).toBe(true);
    }
    expect(validates(buildGemmModule({ ...DEFAULT_SHAPE, relaxed: true }))).toBe(hasRelaxedSimd());
  });

  for (const [label, g] of candidates) {
    it(`${label}: every MatmulSpec form equals the float64 naive product`, () => {
      fc.assert(
        fc.property(arbSpec, fc.nat(1000), (spec, seed) => {
          const { m, n, k } = spec;
          const a = rand(m * k, seed);
          const b = rand(k * n, seed + 1);
          const c0 = rand(m * n, seed + 2);
          const c = Float32Array.from(c0);
          g.matmulRows(a, 0, b, 0, c, 0, spec, 0, m);
          expectClose(c, a, b, spec.accumulate ? c0 : null, spec);
        }),
        { numRuns: RUNS * 2 },
      );
    });
  }

  it('fixed edge cases: 1×1, k = 1, k = 0, n past one NC panel, wide k past several KC blocks', () => {
    const g = candidates[0]![1];
    const cases: MatmulSpec[] = [
      { m: 1, n: 1, k: 1, transA: false, transB: false, accumulate: false },
      { m: 1, n: 1, k: 1, transA: true, transB: true, accumulate: true },
      { m: 9, n: 13, k: 1, transA: true, transB: false, accumulate: false },
      { m: 7, n: 1030, k: 5, transA: false, transB: true, accumulate: true },
      { m: 3, n: 5, k: 777, transA: true, transB: true, accumulate: false },
    ];
    for (const spec of cases) {
      const a = rand(spec.m * spec.k, 3);
      const b = rand(spec.k * spec.n, 4);
      const c0 = rand(spec.m * spec.n, 5);
      const c = Float32Array.from(c0);
      g.matmulRows(a, 0, b, 0, c, 0, spec, 0, spec.m);
      expectClose(c, a, b, spec.accumulate ? c0 : null, spec);
    }
    // k = 0: C = 0 (or unchanged when accumulating); n = 0 and empty row ranges touch nothing.
    const c = Float32Array.of(1, 2, 3, 4, 5, 6);
    g.matmulRows(new Float32Array(0), 0, new Float32Array(0), 0, c, 0, { m: 2, n: 3, k: 0, transA: false, transB: false, accumulate: true }, 0, 2);
    expect(Array.from(c)).toEqual([1, 2, 3, 4, 5, 6]);
    g.matmulRows(new Float32Array(0), 0, new Float32Array(0), 0, c, 0, { m: 2, n: 3, k: 0, transA: false, transB: false, accumulate: false }, 1, 2);
    expect(Array.from(c)).toEqual([1, 2, 3, 0, 0, 0]);
    g.matmulRows(rand(4, 1), 0, rand(4, 2), 0, c, 0, { m: 2, n: 2, k: 2, transA: false, transB: false, accumulate: false }, 1, 1);
    expect(Array.from(c)).toEqual([1, 2, 3, 0, 0, 0]);
  });

  it('respects operand offsets and leaves C outside the row range untouched', () => {
    const g = candidates[0]![1];
    fc.assert(
      fc.property(arbSpec, fc.nat(20), fc.nat(20), fc.nat(20), fc.nat(1000), (spec, aOff, bOff, cOff, seed) => {
        const { m, n, k } = spec;
        const a = rand(aOff + m * k, seed);
        const b = rand(bOff + k * n, seed + 1);
        const c = rand(cOff + m * n + 3, seed + 2);
        const before = Float32Array.from(c);
        const rowStart = Math.floor(m / 3);
        const rowEnd = m - Math.floor(m / 4);
        g.matmulRows(a, aOff, b, bOff, c, cOff, spec, rowStart, rowEnd);
        const view = c.subarray(cOff, cOff + m * n);
        expectClose(view, a.subarray(aOff), b.subarray(bOff), spec.accumulate ? before.subarray(cOff, cOff + m * n) : null, spec, rowStart, rowEnd);
        for (let i = 0; i < c.length; i++) {
          const inside = i >= cOff + rowStart * n && i < cOff + rowEnd * n;
          if (!inside && c[i] !== before[i]) expect.fail(`C[${i}] outside rows [${rowStart}, ${rowEnd}) changed`);
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('is bitwise identical however the rows are split, splits not aligned to the tile included', () => {
    const g = candidates[0]![1];
    fc.assert(
      fc.property(arbSpec, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }), fc.nat(1000), (spec, cuts, seed) => {
        const { m, n, k } = spec;
        const a = rand(m * k, seed);
        const b = rand(k * n, seed + 1);
        const c0 = rand(m * n, seed + 2);
        const whole = Float32Array.from(c0);
        g.matmulRows(a, 0, b, 0, whole, 0, spec, 0, m);
        const points = [0, ...cuts.map((x) => Math.floor(x * m)).sort((x, y) => x - y), m];
        const split = Float32Array.from(c0);
        for (let i = 0; i + 1 < points.length; i++) g.matmulRows(a, 0, b, 0, split, 0, spec, points[i]!, points[i + 1]!);
        expect(bits(split).equals(bits(whole))).toBe(true);
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

describe('wasm GEMM batches in one call', () => {
  it('matmulBatches gives each product the bits of matmulRows over all its rows, one-block products and larger ones alike', () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 1, max: 5 }), fc.nat(1000), (spec, count, seed) => {
        const { m, n, k } = spec;
        const [aSize, bSize, cSize] = [m * k, k * n, m * n];
        // Products in reverse order, with a gap, so no offset is its index times the size.
        const aOffs = Array.from({ length: count }, (_, i) => (count - 1 - i) * aSize + 3);
        const bOffs = Array.from({ length: count }, (_, i) => i * bSize + 1);
        const cOffs = Array.from({ length: count }, (_, i) => (count - 1 - i) * cSize + 2);
        // At least 4096 elements each, so the operands lie in the arena and the one-call path runs.
        const a = rand(Math.max(4096, count * aSize + 3), seed);
        const b = rand(Math.max(4096, count * bSize + 1), seed + 1);
        const c0 = rand(Math.max(4096, count * cSize + 2), seed + 2);
        expect(inArena(a) && inArena(b) && inArena(c0)).toBe(true);
        for (const [label, g] of candidates.filter(([l]) => !l.includes('relaxed'))) {
          const viaBatches = allocF32(c0.length);
          viaBatches.set(c0);
          g.matmulBatches(a, aOffs, b, bOffs, viaBatches, cOffs, spec, 0, count);
          const viaRows = allocF32(c0.length);
          viaRows.set(c0);
          for (let i = 0; i < count; i++) g.matmulRows(a, aOffs[i]!, b, bOffs[i]!, viaRows, cOffs[i]!, spec, 0, m);
          if (!bits(viaBatches).equals(bits(viaRows))) expect.fail(`${label}: ${JSON.stringify(spec)} × ${count}`);
          // A sub-range writes only its own products.
          const part = allocF32(c0.length);
          part.set(c0);
          g.matmulBatches(a, aOffs, b, bOffs, part, cOffs, spec, count - 1, count);
          const last = cOffs[count - 1]!;
          expect(bits(part.subarray(last, last + cSize)).equals(bits(viaRows.subarray(last, last + cSize)))).toBe(true);
          for (let i = 0; i < c0.length; i++) if ((i < last || i >= last + cSize) && !Object.is(part[i], c0[i])) expect.fail(`${label}: element ${i} outside the last product changed`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('wasm GEMM packed-B reuse across the chunks of one dispatch', () => {
  // References from separate instances of the same shapes, so nothing resets the cache under test.
  const refs = [createWasmGemm({ relaxed: false }), createWasmGemm({ mr: 6, nv: 2, unroll: 4, relaxed: false, mc: 16, kc: 64 })];
  let seq = 1;
  it('chunks with one seq give the bits of the whole product; the next seq repacks a changed B', () => {
    fc.assert(
      fc.property(arbSpec, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }), fc.nat(1000), fc.integer({ min: 0, max: 1 }), (spec, cuts, seed, which) => {
        const g = candidates[which]![1]; // the default block, and one with KC 64 (several B slices)
        const ref = refs[which]!;
        const { m, n, k } = spec;
        const a = rand(m * k, seed);
        const b = rand(k * n, seed + 1);
        const c0 = rand(m * n, seed + 2);
        const points = [0, ...cuts.map((x) => Math.floor(x * m)).sort((x, y) => x - y), m];
        const chunked = (dispatch: number): Float32Array => {
          const out = Float32Array.from(c0);
          for (let i = 0; i + 1 < points.length; i++) g.matmulRows(a, 0, b, 0, out, 0, spec, points[i]!, points[i + 1]!, dispatch);
          return out;
        };
        const whole = Float32Array.from(c0);
        ref.matmulRows(a, 0, b, 0, whole, 0, spec, 0, m);
        expect(bits(chunked(++seq)).equals(bits(whole))).toBe(true);
        // The same buffer with new contents in the next dispatch (a recycled buffer, the next step).
        b.set(rand(k * n, seed + 3));
        const fresh = Float32Array.from(c0);
        ref.matmulRows(a, 0, b, 0, fresh, 0, spec, 0, m);
        expect(bits(chunked(++seq)).equals(bits(fresh))).toBe(true);
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

describe('wasm GEMM on the worker pool', () => {
  it('wasmGemm / wasmGemmBatched give the same bits on 1, 2 and 3 threads, and match the oracle', () => {
    setParallelMinCost(0);
    const cases: MatmulSpec[] = [
      { m: 130, n: 70, k: 300, transA: false, transB: false, accumulate: false },
      { m: 67, n: 129, k: 33, transA: true, transB: false, accumulate: true },
      { m: 64, n: 31, k: 257, transA: false, transB: true, accumulate: false },
      { m: 9, n: 5, k: 3, transA: true, transB: true, accumulate: false },
    ];
    for (const spec of cases) {
      const a = rand(spec.m * spec.k, spec.m);
      const b = rand(spec.k * spec.n, spec.n);
      const c0 = rand(spec.m * spec.n, 7);
      const results = [1, 2, 3].map((t) => {
        setThreads(t);
        const c = allocF32(spec.m * spec.n);
        c.set(c0);
        wasmGemm(a, 0, b, 0, c, 0, spec);
        return c;
      });
      expectClose(results[0]!, a, b, spec.accumulate ? c0 : null, spec);
      expect(bits(results[1]!).equals(bits(results[0]!))).toBe(true);
      expect(bits(results[2]!).equals(bits(results[0]!))).toBe(true);
    }
    const spec: MatmulSpec = { m: 12, n: 9, k: 20, transA: false, transB: true, accumulate: false };
    const a = rand(5 * 12 * 20, 4);
    const b = rand(20 * 9, 5); // one B broadcast over the batch
    const batched = [1, 2, 3].map((t) => {
      setThreads(t);
      const c = allocF32(5 * 12 * 9);
      const offs = (stride: number): Int32Array => Int32Array.from({ length: 5 }, (_, i) => i * stride);
      wasmGemmBatched({ a, b, c, aOffs: offs(12 * 20), bOffs: new Int32Array(5), cOffs: offs(12 * 9), spec });
      return c;
    });
    for (let i = 0; i < 5; i++) expectClose(batched[0]!.subarray(i * 108, (i + 1) * 108), a.subarray(i * 240, (i + 1) * 240), b, null, spec);
    expect(bits(batched[1]!).equals(bits(batched[0]!))).toBe(true);
    expect(bits(batched[2]!).equals(bits(batched[0]!))).toBe(true);
    // The broadcast operand's gradient: every batch accumulates into one C (repeated cOffs).
    const gradSpec: MatmulSpec = { m: 20, n: 9, k: 12, transA: true, transB: false, accumulate: true };
    const dy = rand(5 * 12 * 9, 6);
    const summed = [1, 2, 3].map((t) => {
      setThreads(t);
      const gb = allocF32(20 * 9);
      wasmGemmBatched({ a, b: dy, c: gb, aOffs: Int32Array.from({ length: 5 }, (_, i) => i * 240), bOffs: Int32Array.from({ length: 5 }, (_, i) => i * 108), cOffs: new Int32Array(5), spec: gradSpec });
      return gb;
    });
    const want = new Float64Array(20 * 9);
    for (let i = 0; i < 5; i++) matmulNaive(a.subarray(i * 240, (i + 1) * 240), dy.subarray(i * 108, (i + 1) * 108), gradSpec).forEach((v, j) => (want[j] += v));
    for (let j = 0; j < want.length; j++) expect(summed[0]![j]).toBeCloseTo(want[j]!, 3);
    expect(bits(summed[1]!).equals(bits(summed[0]!))).toBe(true);
    expect(bits(summed[2]!).equals(bits(summed[0]!))).toBe(true);
  });

  it('wasmGemmBias: C = op(A)·op(B) + bias on every row, same bits on 1, 2 and 3 threads, every element written', () => {
    setParallelMinCost(0);
    const cases: MatmulSpec[] = [
      { m: 130, n: 70, k: 300, transA: false, transB: false, accumulate: false }, // two KC blocks
      { m: 64, n: 31, k: 257, transA: false, transB: true, accumulate: false },
      { m: 67, n: 129, k: 33, transA: true, transB: true, accumulate: false },
      { m: 9, n: 5, k: 2, transA: false, transB: true, accumulate: false }, // below WASM_MIN_VOLUME: the JS kernel
      { m: 6, n: 10, k: 0, transA: false, transB: false, accumulate: false },
    ];
    for (const spec of cases) {
      const a = rand(spec.m * spec.k, spec.m + 1);
      const b = rand(spec.k * spec.n, spec.n + 2);
      const bias = rand(spec.n, 9);
      const biasRows = allocF32(spec.m * spec.n).map((_v, i) => bias[i % spec.n]!);
      const results = [1, 2, 3].map((t) => {
        setThreads(t);
        const c = allocF32(spec.m * spec.n).fill(Number.NaN);
        wasmGemmBias(a, b, c, spec, bias);
        return c;
      });
      expectClose(results[0]!, a, b, biasRows, spec);
      if (spec.m * spec.n * spec.k >= WASM_MIN_VOLUME) {
        // The wasm kernel's bits of the product added onto rows that hold the bias (what its add-from-bias replaces).
        const onto = allocF32(spec.m * spec.n);
        onto.set(biasRows);
        wasmGemm(a, 0, b, 0, onto, 0, { ...spec, accumulate: true });
        expect(bits(results[0]!).equals(bits(onto)), `${spec.m}×${spec.n}×${spec.k}`).toBe(true);
      }
      expect(bits(results[1]!).equals(bits(results[0]!))).toBe(true);
      expect(bits(results[2]!).equals(bits(results[0]!))).toBe(true);
    }
    setThreads(1);
    expect(() => wasmGemmBias(rand(64 * 20, 1), rand(20 * 16, 2), allocF32(64 * 16), { m: 64, n: 16, k: 20, transA: false, transB: false, accumulate: true }, rand(16, 3))).toThrow(/wasm\.gemm: a bias needs accumulate = false and 16 values/);
  });
});

describe('wasm GEMM size dispatch', () => {
  it('products below WASM_MIN_VOLUME run the JS kernel, larger ones the wasm kernel (same bits as each)', () => {
    const threadDefault = createWasmGemm(); // what wasmGemm instantiates: relaxed wherever the engine has it
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.boolean(), fc.nat(1000), (m, n, k, transB, seed) => {
        const spec: MatmulSpec = { m, n, k, transA: false, transB, accumulate: false };
        const a = rand(m * k, seed);
        const b = rand(k * n, seed + 1);
        const viaTask = new Float32Array(m * n);
        wasmGemm(a, 0, b, 0, viaTask, 0, spec);
        const direct = new Float32Array(m * n);
        if (m * n * k < WASM_MIN_VOLUME) matmulRows(a, 0, b, 0, direct, 0, spec, 0, m);
        else threadDefault.matmulRows(a, 0, b, 0, direct, 0, spec, 0, m);
        expect(bits(viaTask).equals(bits(direct))).toBe(true);
      }),
      { numRuns: RUNS * 4 },
    );
  });
});

describe('wasm GEMM with relaxed_madd', () => {
  it('matches the float64 oracle in a node with relaxed SIMD enabled (a flag on Node 20)', () => {
    const dist = fileURLToPath(new URL('../../../dist/src/kernels/wasm/', import.meta.url));
    const script = `
      import { createWasmGemm } from '${dist}gemm.js';
      import { hasRelaxedSimd } from '${dist}features.js';
      import { matmulNaive } from '${dist}../js/gemm.js';
      if (!hasRelaxedSimd()) { console.log('unsupported'); process.exit(0); }
      const g = createWasmGemm({ relaxed: true });
      let worst = 0;
      for (const [m, n, k, transA, transB] of [[13, 17, 300, false, true], [64, 33, 257, true, false], [1, 1, 1, true, true], [30, 30, 32, false, false]]) {
        const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i + 1));
        const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.7));
        const c = new Float32Array(m * n);
        const spec = { m, n, k, transA, transB, accumulate: false };
        g.matmulRows(a, 0, b, 0, c, 0, spec, 0, m);
        const ref = matmulNaive(a, b, spec);
        const mag = matmulNaive(a.map(Math.abs), b.map(Math.abs), spec);
        for (let i = 0; i < m * n; i++) worst = Math.max(worst, Math.abs(c[i] - ref[i]) / ((k + 2) * 2 ** -23 * mag[i] + 1e-30));
      }
      console.log('worst/bound', worst);`;
    const out = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim();
    if (out === 'unsupported') return; // an engine without relaxed SIMD at all: nothing to exercise
    const ratio = Number(/worst\/bound (\S+)/.exec(out)![1]);
    expect(ratio).toBeLessThanOrEqual(1);
    expect(ratio).toBeGreaterThan(0); // it did compute something
  });
});
