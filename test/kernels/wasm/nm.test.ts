import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../../src/autograd/tensor.js';
import { Rng } from '../../../src/kernels/random.js';
import { allocF32, arenaCopy } from '../../../src/kernels/memory/storage.js';
import { setParallelMinCost, setThreads } from '../../../src/kernels/threads/pool.js';
import { hasRelaxedSimd } from '../../../src/kernels/wasm/features.js';
import { DEFAULT_NM_SHAPE, buildNmModule } from '../../../src/kernels/wasm/nm-module.js';
import { WASM_NM_DW_MIN_ROWS, WASM_NM_MIN_VOLUME } from '../../../src/kernels/wasm/placement.js';
import { wasmNmForward, wasmNmInputGrad, wasmNmKeptWeightGrad } from '../../../src/kernels/wasm/nm-dispatch.js';
import { backendByName, listBackends } from '../../../src/kernels/backends.js';
import { createWasmNm, type WasmNm } from '../../../src/kernels/wasm/nm.js';
import { validates } from '../../../src/kernels/memory/wasm-runtime.js';
import { NMSparseTensor } from '../../../src/sparse/nm-tensor.js';
import { RUNS, restoreThreadsAfterAll } from '../../helpers.js';

restoreThreadsAfterAll();

const U = 2 ** -23;
const bits = (x: Float32Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

function rand(n: number, rng: Rng): Float32Array {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** A random [out, in] weight with ties (a third of the values rounded to halves), compressed to n:m. */
function randomPattern(outDim: number, inDim: number, n: number, m: number, rng: Rng): NMSparseTensor {
  const w = rand(outDim * inDim, rng);
  for (let i = 0; i < w.length; i += 3) w[i] = Math.round(w[i]! * 2) / 2;
  return NMSparseTensor.fromDense(new Tensor(w, [outDim, inDim]), n, m);
}

interface Problem {
  rows: number;
  inDim: number;
  outDim: number;
  sp: NMSparseTensor;
  /** The masked weight, dense. */
  wd: Float32Array;
  x: Float32Array;
  dy: Float32Array;
  bias: Float32Array;
}

function problem(rows: number, outDim: number, groups: number, n: number, m: number, seed: number): Problem {
  const rng = new Rng(seed);
  const inDim = groups * m;
  const sp = randomPattern(outDim, inDim, n, m, rng);
  return { rows, inDim, outDim, sp, wd: sp.toDense().data, x: rand(rows * inDim, rng), dy: rand(rows * outDim, rng), bias: rand(outDim, rng) };
}

/**
 * |got − Σ a·b| ≤ (k + 2)·2⁻²³·Σ|a·b| + 2⁻²³·|c| for each element against a float64 oracle
 * (the recursive-summation bound for any summation order, room for a final bias add c).
 */
function expectWithin(what: string, got: Float32Array, ref: Float64Array, mag: Float64Array, k: number, extra: (i: number) => number = () => 0): void {
  for (let i = 0; i < ref.length; i++) {
    const tol = (k + 2) * U * mag[i]! + U * extra(i) + 1e-30;
    if (!(Math.abs(got[i]! - ref[i]!) <= tol)) expect.fail(`${what}: element ${i} is ${got[i]}, want ${ref[i]} ± ${tol}`);
  }
}

function forwardOracle(p: Problem, withBias: boolean): [Float64Array, Float64Array] {
  const { rows, inDim, outDim, x, wd, bias } = p;
  const ref = new Float64Array(rows * outDim);
  const mag = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = withBias ? bias[o]! : 0;
      let a = 0;
      for (let c = 0; c < inDim; c++) {
        s += x[r * inDim + c]! * wd[o * inDim + c]!;
        a += Math.abs(x[r * inDim + c]! * wd[o * inDim + c]!);
      }
      ref[r * outDim + o] = s;
      mag[r * outDim + o] = a;
    }
  }
  return [ref, mag];
}

function inputGradOracle(p: Problem): [Float64Array, Float64Array] {
  const { rows, inDim, outDim, dy, wd } = p;
  const ref = new Float64Array(rows * inDim);
  const mag = new Float64Array(rows * inDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      for (let c = 0; c < inDim; c++) {
        ref[r * inDim + c]! += dy[r * outDim + o]! * wd[o * inDim + c]!;
        mag[r * inDim + c]! += Math.abs(dy[r * outDim + o]! * wd[o * inDim + c]!);
      }
    }
  }
  return [ref, mag];
}

function keptGradOracle(p: Problem): [Float64Array, Float64Array] {
  const { rows, inDim, outDim, dy, x, sp } = p;
  const ref = new Float64Array(sp.nnz);
  const mag = new Float64Array(sp.nnz);
  sp.forEachEntry((e, flat) => {
    const o = Math.floor(flat / inDim);
    const c = flat % inDim;
    for (let r = 0; r < rows; r++) {
      ref[e]! += dy[r * outDim + o]! * x[r * inDim + c]!;
      mag[e]! += Math.abs(dy[r * outDim + o]! * x[r * inDim + c]!);
    }
  });
  return [ref, mag];
}

function runForward(k: WasmNm, p: Problem, bias: Float32Array | null, r0 = 0, r1 = p.rows, y = new Float32Array(p.rows * p.outDim)): Float32Array {
  const { rowPtr, col } = p.sp.rowsCsr();
  k.gatherRows({ x: p.x, inDim: p.inDim, rowPtr, col, val: p.sp.values, y, bias }, r0, r1);
  return y;
}

function runInputGrad(k: WasmNm, p: Problem, r0 = 0, r1 = p.rows, dx = new Float32Array(p.rows * p.inDim)): Float32Array {
  const t = p.sp.transposedCsr();
  k.gatherRows({ x: p.dy, inDim: p.outDim, rowPtr: t.rowPtr, col: t.col, val: t.val, y: dx, bias: null }, r0, r1);
  return dx;
}

function runKeptGrad(k: WasmNm, p: Problem, i0 = 0, i1 = p.outDim, grad = new Float32Array(p.sp.nnz)): Float32Array {
  const { rowPtr, col } = p.sp.rowsCsr();
  k.keptGradRows({ dy: p.dy, x: p.x, rows: p.rows, inDim: p.inDim, rowPtr, col, grad }, i0, i1);
  return grad;
}

/** Every N:M of the recipes and beyond: M in 2..255 (M = 255 the largest one-byte offset range), any N ≤ M. */
const arbPattern = fc
  .record({
    m: fc.constantFrom(2, 3, 4, 5, 8, 16, 32, 64, 255),
    nFrac: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    groups: fc.integer({ min: 1, max: 3 }),
  })
  .map(({ m, nFrac, groups }) => ({ m, n: 1 + Math.floor(nFrac * m), groups: m >= 64 ? 1 : groups }));
/** Token counts around the 16-token block and the dW chunks. */
const arbRows = fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constantFrom(15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129));
const arbOut = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constantFrom(4, 5, 8, 13, 16, 33));

const kernels: [string, WasmNm][] = [
  ['default', createWasmNm({ relaxed: false })],
  ['tv 1, unroll 1; 1-way dots, chunk 16, panels of 3 columns', createWasmNm({ tv: 1, unroll: 1, ways: 1, dotUnroll: 1, chunk: 16, panelBytes: 200, relaxed: false })],
  ['tv 3, unroll 3; 6-way dots, chunk 32, panels of 8 columns', createWasmNm({ tv: 3, unroll: 3, ways: 6, dotUnroll: 4, chunk: 32, panelBytes: 1024, relaxed: false })],
  ['tv 8, unroll 4; 8-way dots, chunk 48', createWasmNm({ tv: 8, unroll: 4, ways: 8, dotUnroll: 2, chunk: 48, relaxed: false })],
];
if (hasRelaxedSimd()) kernels.push(['default, relaxed_madd', createWasmNm({ relaxed: true })]);

describe('wasm N:M module', () => {
  it('validates for every kernel shape, with and without relaxed_madd where the engine has it', () => {
    for (const tv of [1, 2, 4, 8]) for (const unroll of [1, 2, 4]) expect(validates(buildNmModule({ ...DEFAULT_NM_SHAPE, tv, unroll, relaxed: false }))).toBe(true);
    for (const ways of [1, 3, 4, 8]) for (const dotUnroll of [1, 2, 4]) expect(validates(buildNmModule({ ...DEFAULT_NM_SHAPE, ways, dotUnroll, relaxed: false }))).toBe(true);
    expect(validates(buildNmModule({ ...DEFAULT_NM_SHAPE, relaxed: true }))).toBe(hasRelaxedSimd());
  });

  it('rejects kernel options it cannot run, naming the option and value', () => {
    expect(() => createWasmNm({ chunk: 24 })).toThrow(/wasm.nm: dW chunk must be a positive multiple of 16 tokens, got 24/);
    expect(() => createWasmNm({ chunk: 0 })).toThrow(/got 0/);
    expect(() => createWasmNm({ dotUnroll: 3 })).toThrow(/wasm.nm: dotUnroll must be 1, 2 or 4, got 3/);
    expect(() => createWasmNm({ tv: 0 })).toThrow(/wasm.nm: tv must be an integer in \[1, 16\], got 0/);
    expect(() => createWasmNm({ ways: 1.5 })).toThrow(/wasm.nm: ways must be an integer in \[1, 16\], got 1.5/);
    expect(() => createWasmNm({ panelBytes: -1 })).toThrow(/wasm.nm: panelBytes must be a positive integer, got -1/);
  });

  for (const [label, k] of kernels) {
    it(`${label}: forward (with and without bias), dX and kept dW match the float64 dense product on the masked weight`, () => {
      fc.assert(
        fc.property(arbPattern, arbRows, arbOut, fc.nat(10_000), ({ m, n, groups }, rows, outDim, seed) => {
          const p = problem(rows, outDim, groups, n, m, seed);
          const perRow = groups * n;
          const [yRef, yMag] = forwardOracle(p, true);
          expectWithin('forward + bias', runForward(k, p, p.bias), yRef, yMag, perRow, (i) => Math.abs(p.bias[i % outDim]!));
          const [y0Ref, y0Mag] = forwardOracle(p, false);
          expectWithin('forward', runForward(k, p, null), y0Ref, y0Mag, perRow);
          const [dxRef, dxMag] = inputGradOracle(p);
          expectWithin('dX', runInputGrad(k, p), dxRef, dxMag, outDim);
          const [dwRef, dwMag] = keptGradOracle(p);
          expectWithin('kept dW', runKeptGrad(k, p), dwRef, dwMag, rows);
        }),
        { numRuns: RUNS * 2 },
      );
    });
  }

  it('every spmm shape gives the same bits (one f32 sequence per element: entries in storage order)', () => {
    fc.assert(
      fc.property(arbPattern, arbRows, arbOut, fc.nat(10_000), ({ m, n, groups }, rows, outDim, seed) => {
        const p = problem(rows, outDim, groups, n, m, seed);
        const [ref, ...others] = kernels.filter(([label]) => !label.includes('relaxed')).map(([, k]) => [runForward(k, p, p.bias), runInputGrad(k, p)]);
        for (const o of others) {
          expect(bits(o[0]!).equals(bits(ref![0]!))).toBe(true);
          expect(bits(o[1]!).equals(bits(ref![1]!))).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('kept dW split by input columns (keptGradCols) gives the same bits as the whole rows, in and outside the arena', () => {
    for (const [label, k] of kernels) {
      if (label.includes('relaxed')) continue;
      fc.assert(
        fc.property(arbPattern, arbRows, arbOut, fc.nat(10_000), fc.array(fc.nat(1023), { maxLength: 4 }), fc.boolean(), ({ m, n, groups }, rows, outDim, seed, cutAt, arena) => {
          const p = problem(rows, outDim, groups, n, m, seed);
          const { rowPtr, col } = p.sp.rowsCsr();
          // Each block writes only its own entries: start from garbage.
          const plainGrad = new Float32Array(p.sp.nnz).fill(Number.NaN);
          const grad = arena ? arenaCopy(plainGrad)!.view : plainGrad;
          const cuts = [...new Set([0, ...cutAt.map((c) => c % p.inDim), p.inDim])].sort((a, b) => a - b);
          const args = { dy: p.dy, x: p.x, rows, inDim: p.inDim, rowPtr, col: arena ? arenaCopy(col)!.view : col, grad };
          for (let j = 0; j + 1 < cuts.length; j++) k.keptGradCols(args, cuts[j]!, cuts[j + 1]!);
          expect(bits(grad).equals(bits(runKeptGrad(k, p)))).toBe(true);
        }),
        { numRuns: RUNS },
      );
    }
  });

  it('dW bits depend on the token chunk only, not on entry grouping, unrolling or column panels', () => {
    const variants = [
      createWasmNm({ relaxed: false }),
      createWasmNm({ relaxed: false, ways: 1, dotUnroll: 1 }),
      createWasmNm({ relaxed: false, ways: 5, dotUnroll: 4, panelBytes: 300 }),
    ];
    fc.assert(
      fc.property(arbPattern, arbRows, arbOut, fc.nat(10_000), ({ m, n, groups }, rows, outDim, seed) => {
        const p = problem(rows * 3, outDim, groups, n, m, seed);
        const [ref, ...others] = variants.map((k) => runKeptGrad(k, p));
        for (const o of others) expect(bits(o).equals(bits(ref!))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('row ranges: writes only its rows (forward, dX) or entries (dW), bitwise as the full call, from any start', () => {
    const k = kernels[0]![1];
    fc.assert(
      fc.property(arbPattern, arbRows, arbOut, fc.nat(10_000), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), ({ m, n, groups }, rows, outDim, seed, u, v) => {
        const p = problem(rows, outDim, groups, n, m, seed);
        const [r0, r1] = [Math.floor(u * rows), Math.floor(v * rows)].sort((a, b) => a - b) as [number, number];
        const sentinel = 12345.5;
        const full = runForward(k, p, p.bias);
        const part = runForward(k, p, p.bias, r0, r1, new Float32Array(rows * outDim).fill(sentinel));
        for (let i = 0; i < part.length; i++) {
          const inside = i >= r0 * outDim && i < r1 * outDim;
          expect(Object.is(part[i], inside ? full[i] : sentinel)).toBe(true);
        }
        const dxFull = runInputGrad(k, p);
        const dxPart = runInputGrad(k, p, r0, r1, new Float32Array(rows * p.inDim).fill(sentinel));
        for (let i = 0; i < dxPart.length; i++) expect(Object.is(dxPart[i], i >= r0 * p.inDim && i < r1 * p.inDim ? dxFull[i] : sentinel)).toBe(true);
        const [i0, i1] = [Math.floor(u * outDim), Math.floor(v * outDim)].sort((a, b) => a - b) as [number, number];
        const { rowPtr } = p.sp.rowsCsr();
        const gFull = runKeptGrad(k, p);
        const gPart = runKeptGrad(k, p, i0, i1, new Float32Array(p.sp.nnz).fill(sentinel));
        for (let e = 0; e < gPart.length; e++) expect(Object.is(gPart[e], e >= rowPtr[i0]! && e < rowPtr[i1]! ? gFull[e] : sentinel)).toBe(true);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('a non-finite activation reaches only the outputs that read it; zero padding adds nothing to dW', () => {
    const k = createWasmNm({ relaxed: false, chunk: 16 });
    const p = problem(21, 6, 2, 1, 4, 3); // 21 tokens: a partial spmm block and a padded dW chunk
    const bad = 18;
    p.x[bad * p.inDim + 5] = Infinity;
    const y = runForward(k, p, null);
    const keep = p.sp.mask().data;
    const reads = (o: number): boolean => keep[o * p.inDim + 5] === 1;
    for (let r = 0; r < p.rows; r++) {
      for (let o = 0; o < p.outDim; o++) expect(Number.isFinite(y[r * p.outDim + o]!)).toBe(!(r === bad && reads(o)));
    }
    const g = runKeptGrad(k, p);
    const [ref] = keptGradOracle(p);
    for (let e = 0; e < g.length; e++) expect(Number.isFinite(g[e]!)).toBe(Number.isFinite(ref[e]!));
  });

  it('zero tokens or an empty weight leave the outputs untouched', () => {
    const k = kernels[0]![1];
    const p = problem(5, 3, 1, 2, 4, 9);
    const y = new Float32Array(5 * 3).fill(7);
    runForward(k, p, p.bias, 2, 2, y);
    expect(Array.from(y)).toEqual(new Array(15).fill(7));
    const empty = NMSparseTensor.fromDense(Tensor.zeros([0, 8]), 1, 4);
    const grad = new Float32Array(0);
    k.keptGradRows({ dy: new Float32Array(0), x: p.x, rows: 5, inDim: 8, rowPtr: empty.rowsCsr().rowPtr, col: empty.rowsCsr().col, grad }, 0, 0);
    expect(grad.length).toBe(0);
  });
});

describe('wasm N:M kernels on the worker pool', () => {
  it('forward, dX and kept dW give the same bits on 1, 2 and 3 threads and match the oracle', () => {
    setParallelMinCost(0);
    for (const [rows, outDim, groups, n, m] of [[70, 37, 4, 3, 16], [45, 20, 3, 1, 8], [33, 9, 1, 7, 255]] as const) {
      const p = problem(rows, outDim, groups, n, m, rows);
      const runs = [1, 2, 3].map((t) => {
        setThreads(t);
        const y = allocF32(rows * outDim);
        wasmNmForward(p.x, rows, p.sp, p.bias, y);
        return [y, wasmNmInputGrad(p.dy, rows, p.sp), wasmNmKeptWeightGrad(p.dy, p.x, rows, p.sp)];
      });
      const [yRef, yMag] = forwardOracle(p, true);
      expectWithin('forward', runs[0]![0]!, yRef, yMag, groups * n, (i) => Math.abs(p.bias[i % outDim]!));
      const [dxRef, dxMag] = inputGradOracle(p);
      expectWithin('dX', runs[0]![1]!, dxRef, dxMag, outDim);
      const [dwRef, dwMag] = keptGradOracle(p);
      expectWithin('kept dW', runs[0]![2]!, dwRef, dwMag, rows);
      for (const run of runs.slice(1)) for (let j = 0; j < 3; j++) expect(bits(run[j]!).equals(bits(runs[0]![j]!))).toBe(true);
    }
  });
});

describe.runIf(listBackends().includes('wasm'))('cross-backend: wasm N:M kernels against js and a float64 oracle', () => {
  it('forward, dX and kept dW through the backends on 1 and 2 threads: both within the f32 bound of float64, wasm the same bits on both thread counts', () => {
    setParallelMinCost(0);
    const [wasm, js] = [backendByName('wasm'), backendByName('js')];
    fc.assert(
      fc.property(arbPattern, arbRows, arbOut, fc.nat(10_000), ({ m, n, groups }, rows, outDim, seed) => {
        const p = problem(rows, outDim, groups, n, m, seed);
        const [yRef, yMag] = forwardOracle(p, true);
        const [dxRef, dxMag] = inputGradOracle(p);
        const [dwRef, dwMag] = keptGradOracle(p);
        const biasTol = (i: number): number => Math.abs(p.bias[i % outDim]!);
        const runs = [1, 2].map((threads) => {
          setThreads(threads);
          return [wasm, js].map((b) => {
            const y = allocF32(rows * outDim);
            b.nmForward(p.x, rows, p.sp, p.bias, y);
            return [y, b.nmInputGrad(p.dy, rows, p.sp), b.nmKeptWeightGrad(p.dy, p.x, rows, p.sp)] as const;
          });
        });
        for (const [label, [y, dx, dw]] of [['wasm', runs[0]![0]!], ['js', runs[0]![1]!]] as const) {
          expectWithin(`${label} forward`, y, yRef, yMag, groups * n, biasTol);
          expectWithin(`${label} dX`, dx, dxRef, dxMag, outDim);
          expectWithin(`${label} kept dW`, dw, dwRef, dwMag, rows);
        }
        for (let j = 0; j < 3; j++) expect(bits(runs[1]![0]![j]!).equals(bits(runs[0]![0]![j]!))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('products below the size thresholds run the js kernels (same bits), larger ones the wasm kernels', () => {
    setThreads(1);
    const [wasm, js] = [backendByName('wasm'), backendByName('js')];
    const direct = createWasmNm();
    const cases: [number, number, number, number, number][] = [[1, 4, 1, 1, 4], [3, 8, 2, 2, 8], [2, 64, 2, 1, 8], [5, 16, 2, 2, 4], [40, 16, 2, 2, 4]];
    for (const [rows, outDim, groups, n, m] of cases) {
      const p = problem(rows, outDim, groups, n, m, rows * 7 + outDim);
      const volume = rows * p.sp.nnz;
      const y = new Float32Array(rows * outDim);
      wasm.nmForward(p.x, rows, p.sp, p.bias, y);
      const yJs = new Float32Array(rows * outDim);
      js.nmForward(p.x, rows, p.sp, p.bias, yJs);
      const dx = wasm.nmInputGrad(p.dy, rows, p.sp);
      const dw = wasm.nmKeptWeightGrad(p.dy, p.x, rows, p.sp);
      const small = volume < WASM_NM_MIN_VOLUME;
      expect(bits(y).equals(bits(small ? yJs : runForward(direct, p, p.bias)))).toBe(true);
      expect(bits(dx).equals(bits(small ? js.nmInputGrad(p.dy, rows, p.sp) : runInputGrad(direct, p)))).toBe(true);
      const smallDw = rows < WASM_NM_DW_MIN_ROWS || volume < 2 * WASM_NM_MIN_VOLUME;
      expect(bits(dw).equals(bits(smallDw ? js.nmKeptWeightGrad(p.dy, p.x, rows, p.sp) : runKeptGrad(direct, p)))).toBe(true);
    }
  });
});
