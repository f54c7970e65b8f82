import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as ng from '../../src/index.js';
import { NMSparseTensor, SparsityConfigError, Tensor, nmMask, sparseLinear, unstructuredMask } from '../../src/index.js';
import { sparseLinearValues } from '../../src/sparse/linear-op.js';
import { DEFAULT_PARALLEL_MIN_COST, setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';
import { RUNS, expectGrad, maxAbsDiff, randTensor, restoreThreadsAfterAll } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

restoreThreadsAfterAll();

/** (rows, groups, n, m) with m ∈ {2, 4, 8, 16, 32} and every n in 1..m reachable. */
const arbNM = fc
  .record({ mExp: fc.integer({ min: 1, max: 5 }), nFrac: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), rows: fc.integer({ min: 1, max: 6 }), groups: fc.integer({ min: 1, max: 3 }) })
  .map(({ mExp, nFrac, rows, groups }) => {
    const m = 2 ** mExp;
    return { rows, groups, m, n: 1 + Math.floor(nFrac * m) };
  });

/** Weights with deliberate ties (values drawn from a small set) to exercise tie-breaking. */
function tiedWeights(rows: number, cols: number, seed: number): Tensor {
  const t = randTensor([rows, cols], seed, {}, false);
  for (let i = 0; i < t.size; i++) if (i % 3 === 0) t.data[i] = Math.round(t.data[i]! * 2) / 2;
  return t;
}

describeEachBackend('N:M masks', () => {
  it('keep exactly n per group, the n largest |w|, ties to the lower index; idempotent', () => {
    fc.assert(
      fc.property(arbNM, fc.nat(1000), ({ rows, groups, n, m }, seed) => {
        const cols = groups * m;
        const w = tiedWeights(rows, cols, seed);
        const mask = nmMask(w, n, m);
        for (let r = 0; r < rows; r++) {
          for (let g = 0; g < groups; g++) {
            const base = r * cols + g * m;
            const idx = Array.from({ length: m }, (_v, j) => j);
            // Reference: stable sort by |w| descending keeps lower indices first on ties.
            const ref = [...idx].sort((a, b) => Math.abs(w.data[base + b]!) - Math.abs(w.data[base + a]!) || a - b).slice(0, n);
            const kept = idx.filter((j) => mask.data[base + j] === 1);
            expect(kept.length).toBe(n);
            expect(kept).toEqual([...ref].sort((a, b) => a - b));
          }
        }
        const masked = ng.mul(w, mask);
        expect(Array.from(nmMask(masked, n, m).data)).toEqual(Array.from(mask.data));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('the selection split over 2 threads (pool forced) gives the same masks as 1 thread', () => {
    try {
      fc.assert(
        fc.property(arbNM, fc.nat(1000), ({ rows, groups, n, m }, seed) => {
          const w = tiedWeights(rows * 3, groups * m, seed);
          setParallelMinCost(0);
          setThreads(1);
          const one = nmMask(w, n, m);
          setThreads(2);
          const two = nmMask(w, n, m);
          expect(Array.from(two.data)).toEqual(Array.from(one.data));
        }),
        { numRuns: RUNS },
      );
    } finally {
      setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
    }
  });

  it('unstructured mask keeps the top (1 − s) fraction per tensor', () => {
    const w = randTensor([8, 16], 3, {}, false);
    const mask = unstructuredMask(w, 0.875);
    expect(mask.data.reduce((a, v) => a + v, 0)).toBe(16);
    const keptMin = Math.min(...Array.from(w.data).filter((_v, i) => mask.data[i]).map(Math.abs));
    const prunedMax = Math.max(...Array.from(w.data).filter((_v, i) => !mask.data[i]).map(Math.abs));
    expect(keptMin).toBeGreaterThanOrEqual(prunedMax);
  });

  it('invalid configurations raise SparsityConfigError naming the tensor and the rule', () => {
    const w = Tensor.zeros([4, 12]);
    expect(() => nmMask(w, 0, 4, 'ffn.linear1')).toThrow(SparsityConfigError);
    expect(() => nmMask(w, 0, 4, 'ffn.linear1')).toThrow(/ffn.linear1: N must be at least 1/);
    expect(() => nmMask(w, 5, 4)).toThrow(/N must not exceed M/);
    expect(() => nmMask(Tensor.zeros([2, 512]), 1, 512)).toThrow(/M must be at most 256/);
    expect(() => nmMask(w, 1, 8, 'enc.0.ffn')).toThrow(/enc.0.ffn: the input dim 12 is not a multiple of M=8/);
    expect(() => unstructuredMask(w, 1)).toThrow(/sparsity must be in \[0, 1\), got 1/);
    expect(() => unstructuredMask(w, -0.1)).toThrow(SparsityConfigError);
  });
});

describeEachBackend('NMSparseTensor', () => {
  it('toDense(fromDense(W)) equals W ⊙ mask; sizes and serialisation round-trip', () => {
    fc.assert(
      fc.property(arbNM, fc.nat(1000), ({ rows, groups, n, m }, seed) => {
        const cols = groups * m;
        const w = tiedWeights(rows, cols, seed);
        const sp = NMSparseTensor.fromDense(w, n, m);
        expect(Array.from(sp.toDense().data, (v) => v + 0)).toEqual(Array.from(ng.mul(w, nmMask(w, n, m)).data, (v) => v + 0)); // -0 → +0
        expect(sp.nnz).toBe((rows * cols * n) / m);
        expect(sp.density).toBe(n / m);
        expect(sp.byteLength).toBe(sp.nnz * 5);
        expect(sp.compressionRatio).toBeLessThanOrEqual((n / m) * 1.25 + 1e-12);
        const back = NMSparseTensor.fromJSON(JSON.parse(JSON.stringify(sp.toJSON())));
        expect(Array.from(back.toDense().data, (v) => v + 0)).toEqual(Array.from(sp.toDense().data, (v) => v + 0));
        const viaMask = NMSparseTensor.fromDense(w, n, m, { mask: sp.mask() });
        expect(Array.from(viaMask.indices)).toEqual(Array.from(sp.indices));
      }),
      { numRuns: RUNS },
    );
  });

  it('rejects masks that are not N:M and corrupt indices', () => {
    const w = randTensor([2, 8], 1, {}, false);
    const bad = Tensor.ones([2, 8]);
    expect(() => NMSparseTensor.fromDense(w, 2, 4, { mask: bad })).toThrow(/keeps 4 weights, not N=2 of M=4/);
    expect(() => new NMSparseTensor([1, 4], 2, 4, new Float32Array(2), Uint8Array.of(3, 1))).toThrow(/strictly ascending/);
  });
});

describeEachBackend('sparse kernels and sparseLinear', () => {
  it('forward, dX and kept-position dW equal the dense computation on masked weights (every m in 2..32)', () => {
    fc.assert(
      fc.property(arbNM, fc.integer({ min: 1, max: 19 }), fc.integer({ min: 1, max: 9 }), fc.nat(1000), ({ groups, n, m }, rows, outF, seed) => {
        const inF = groups * m;
        const w = randTensor([outF, inF], seed, {}, false);
        const sp = NMSparseTensor.fromDense(w, n, m);
        const wMasked = sp.toDense();
        const x = randTensor([rows, inF], seed + 1);
        const b = randTensor([outF], seed + 2);
        const vals = sp.valuesTensor(true);
        vals.grad = null;
        const y = sparseLinear(x, sp, b);
        const seedG = randTensor([rows, outF], seed + 3, {}, false);
        y.backward(seedG);
        // Dense oracle.
        const xd = new Tensor(Float32Array.from(x.data), x.shape, true);
        const wd = new Tensor(Float32Array.from(wMasked.data), wMasked.shape, true);
        const yd = ng.linear(xd, wd, b.detach());
        yd.backward(seedG);
        // float32 outputs of float64 sums: tolerance scales with the reduction length.
        expect(maxAbsDiff(y.data, yd.data)).toBeLessThan(1e-5 * Math.sqrt(inF) * 4);
        expect(maxAbsDiff(x.grad!.data, xd.grad!.data)).toBeLessThan(1e-5 * Math.sqrt(outF) * 4);
        const keptDense = new Float32Array(sp.nnz);
        sp.forEachEntry((e, flat) => (keptDense[e] = wd.grad!.data[flat]!));
        expect(maxAbsDiff(vals.grad!.data, keptDense)).toBeLessThan(1e-5 * Math.sqrt(rows) * 4);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('gradcheck of sparseLinear (x, kept values, bias)', () => {
    fc.assert(
      fc.property(arbNM, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.nat(1000), ({ groups, n, m }, rows, outF, seed) => {
        const inF = groups * m;
        const sp = NMSparseTensor.fromDense(randTensor([outF, inF], seed, {}, false), n, m);
        const vals = sp.valuesTensor(true);
        const x = randTensor([2, rows, inF], seed + 1);
        const b = randTensor([outF], seed + 2);
        expectGrad((p, v, q) => sparseLinearValues(p, sp, v, q), [x, vals, b]);
      }),
      { numRuns: RUNS },
    );
  });

  it('is bitwise identical for 1, 2 and 3 threads', () => {
    setParallelMinCost(0);
    const sp = NMSparseTensor.fromDense(randTensor([37, 64], 5, {}, false), 3, 16);
    const x = randTensor([45, 64], 6, {}, false);
    const seedG = randTensor([45, 37], 7, {}, false);
    const runs = [1, 2, 3].map((t) => {
      setThreads(t);
      const xi = new Tensor(x.data, x.shape, true);
      const v = sp.valuesTensor(true);
      v.grad = null;
      const y = sparseLinear(xi, sp);
      y.backward(seedG);
      return [Array.from(y.data), Array.from(xi.grad!.data), Array.from(v.grad!.data)];
    });
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
  });

  it('shape errors name the op', () => {
    const sp = NMSparseTensor.fromDense(randTensor([4, 8], 1, {}, false), 1, 4);
    expect(() => sparseLinear(Tensor.zeros([2, 6]), sp)).toThrow(/sparseLinear: input \[2, 6\] does not end in 8 \(sparse weight \[4, 8\] at 1:4\)/);
  });
});

describeEachBackend('hard N:M phases and the compressed kernels', () => {
  // ssd:1:8 over 16 steps: frames 7:8, 4:8, 2:8, 1:8 of 4 steps each.
  const cases: [number, number][] = [[1, 7], [5, 4], [9, 2], [13, 1]];
  for (const [step, n] of cases) {
    it(`${n}:8: compressed kernels only at N/M ≤ nmCompressedMaxDensity, the same values and gradients either way`, () => {
      const backend = ng.getBackend();
      const recipe = ng.Recipe.parse('ssd:1:8,steps=16,dense=0,finetune=0');
      expect(recipe.at(step).n).toBe(n);
      const layer = new ng.SparseLinear(new ng.Linear(32, 12, { rng: new ng.Rng(step) }), recipe, 'probe');
      layer.setStep(step);
      const x = randTensor([24, 32], 7);
      const seed = randTensor([24, 12], 8, {}, false);
      const calls = { n: 0 };
      const nmForward = backend.nmForward;
      (backend as { nmForward: typeof nmForward }).nmForward = (...args) => {
        calls.n++;
        nmForward(...args);
      };
      let y: Tensor;
      try {
        y = layer.forward(x);
      } finally {
        (backend as { nmForward: typeof nmForward }).nmForward = nmForward;
      }
      expect(calls.n).toBe(n / 8 <= backend.nmCompressedMaxDensity ? 1 : 0);
      y.backward(seed);
      // Oracle: the compressed op itself on a copy of the layer's weights and mask.
      const w = new Tensor(Float32Array.from(layer.weight.data), [12, 32], true);
      const b = new Tensor(Float32Array.from(layer.bias!.data), [12], true);
      const x2 = new Tensor(Float32Array.from(x.data), [24, 32], true);
      const pattern = layer.toSparse();
      const y2 = ng.nmLatentLinear(x2, w, b, pattern, layer.keep!, recipe.at(step));
      y2.backward(seed);
      expect(maxAbsDiff(y.data, y2.data)).toBeLessThan(1e-5);
      expect(maxAbsDiff(x.grad!.data, x2.grad!.data)).toBeLessThan(1e-5);
      expect(maxAbsDiff(layer.weight.grad!.data, w.grad!.data)).toBeLessThan(1e-5);
      expect(maxAbsDiff(layer.bias!.grad!.data, b.grad!.data)).toBeLessThan(1e-5);
      // Pruned weights get no gradient (SSD freezes them); the dense route may leave −0 there.
      layer.keep!.forEach((k, i) => { if (k === 0) expect(Math.abs(layer.weight.grad!.data[i]!)).toBe(0); });
    });
  }
});
