import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Adam, FlopCounter, Linear, Module, Recipe, Rng, SparseLinear, SparsityConfigError, Tensor, countFlops, crossEntropy, linear, noGrad, relu, argmax,
} from '../../src/index.js';
import { RUNS, maxAbsDiff, randTensor } from '../helpers.js';

const P = (s: string): Recipe => Recipe.parse(s);

describe('schedules follow RECIPES.md (table-driven)', () => {
  it('pmd staircase / linear / exponential α', () => {
    const r = P('pmd:1:8,decay=staircase,w=0.25,interval=10,dense=5,finetune=20,steps=100');
    const rows: [number, string, number, boolean][] = [
      [0, 'dense', 1, false], [4, 'dense', 1, false], [5, 'decay', 1, true], [14, 'decay', 1, false], [15, 'decay', 0.75, true],
      [24, 'decay', 0.75, false], [25, 'decay', 0.5, true], [35, 'decay', 0.25, true], [45, 'decay', 0, true], [79, 'decay', 0, false], [80, 'finetune', 0, false], [99, 'finetune', 0, false],
    ];
    for (const [t, phase, alpha, refresh] of rows) {
      const s = r.at(t);
      expect([t, s.phase, s.alpha, s.refreshMask]).toEqual([t, phase, alpha, refresh]);
    }
    expect(r.at(20).density).toBe(1);
    expect(r.at(50).density).toBe(1 / 8);
    // K_max: α = 0 once k ≥ 16 even if 1 − k·w > 0.
    const slow = P('pmd:1:8,w=0.01,interval=1,steps=100,dense=0,finetune=0');
    expect(slow.at(15).alpha).toBeCloseTo(0.85, 12);
    expect(slow.at(16).alpha).toBe(0);
    const lin = P('pmd:1:8,decay=linear,beta=0.01,dense=10,steps=200,finetune=0');
    expect(lin.at(40).alpha).toBeCloseTo(0.7, 12);
    expect(lin.at(200 - 1).alpha).toBe(0);
    const ex = P('pmd:1:8,decay=exponential,beta=0.1,threshold=0.001,steps=200,dense=0,finetune=0');
    expect(ex.at(10).alpha).toBeCloseTo(Math.exp(-1), 12);
    expect(ex.at(69).alpha).toBeCloseTo(Math.exp(-6.9), 12);
    expect(ex.at(70).alpha).toBe(0);
  });

  it('ssd frames: stepwise (M−1):M, M/2:M, …, N:M in equal frames; geometric; custom', () => {
    const r = P('ssd:1:16,steps=50,interval=1000,dense=0,finetune=0');
    expect(r.frames).toEqual([[15, 16], [8, 16], [4, 16], [2, 16], [1, 16]]);
    const at = (t: number) => [r.at(t).n, r.at(t).m, r.at(t).refreshMask];
    expect(at(0)).toEqual([15, 16, true]);
    expect(at(9)).toEqual([15, 16, false]);
    expect(at(10)).toEqual([8, 16, true]);
    expect(at(11)).toEqual([8, 16, false]);
    expect(at(25)).toEqual([4, 16, false]);
    expect(at(49)).toEqual([1, 16, false]);
    expect(P('ssd:2:4,steps=10,dense=0,finetune=0').frames).toEqual([[3, 4], [2, 4]]);
    expect(P('ssd:1:4,frames=geometric,steps=10,dense=0,finetune=0').frames).toEqual([[8, 32], [4, 16], [2, 8], [1, 4]]);
    expect(P('ssd:1:8,frames=4:8;2:8;1:8,steps=9,dense=0,finetune=0').at(4).n).toBe(2);
    const withWindow = P('ssd:1:4,dense=10,finetune=10,steps=40');
    expect([withWindow.at(5).phase, withWindow.at(5).n, withWindow.at(5).m]).toEqual(['dense', 1, 1]);
    expect([withWindow.at(35).phase, withWindow.at(35).n]).toEqual(['finetune', 1]);
    expect(withWindow.at(10).density).toBe(3 / 4);
  });

  it('gradual: s_t = s_f·(1 − (1 − p)³), nearest N:M at or below the density,dense=0,finetune=0', () => {
    const u = P('gradual:1:8,structure=unstructured,steps=100,dense=0,finetune=0');
    expect(u.at(50).sparsity).toBeCloseTo(0.875 * (1 - 0.125), 12);
    expect(u.at(100 - 1).sparsity).toBeCloseTo(0.875 * (1 - Math.pow(1 - 99 / 100, 3)), 12);
    const nm = P('gradual:1:8,steps=100,dense=0,finetune=0');
    expect(nm.at(20).n).toBe(Math.floor((1 - 0.875 * (1 - 0.8 ** 3)) * 8)); // 4
    expect(nm.at(50).n).toBe(1);
    expect(nm.at(0).n).toBe(8);
  });

  it('fixed prunes once at step d; ste / srste refresh every Δ; srste carries λ', () => {
    const f = P('fixed:2:4,dense=3,steps=10');
    expect([0, 2, 3, 4, 9].map((t) => f.at(t).refreshMask)).toEqual([false, false, true, false, false]);
    expect(f.at(5).prunedGrad).toBe('zero');
    const s = P('srste:2:4,interval=2,steps=10');
    expect([0, 1, 2, 3].map((t) => s.at(t).refreshMask)).toEqual([true, false, true, false]);
    expect([s.at(1).prunedGrad, s.at(1).lambda]).toEqual(['ste', 2e-4]); // SR-STE = straight-through + λ·W
    expect(P('srste:2:4,lambda=0.001,steps=3').at(0).lambda).toBe(0.001);
  });

  it('parses JSON and describes itself in words', () => {
    const r = Recipe.fromJSON({ kind: 'pmd', n: 1, m: 8, steps: 100, dense: 10, finetune: 20, interval: 5 });
    expect(Recipe.fromJSON(JSON.parse(JSON.stringify(r.toJSON()))).at(30)).toEqual(r.at(30));
    expect(r.describe()).toMatch(/pruning mask decay to 1:8 \(N kept of every M\).*10 dense steps, a decay window of 70 steps, 20 fine-tune steps/);
    expect(P('ssd:1:16,steps=50').describe()).toMatch(/15:16 → 8:16 → 4:16 → 2:16 → 1:16/);
  });
});

describe('schedule properties (random valid configs)', () => {
  const arbRecipe = fc
    .record({
      kind: fc.constantFrom('fixed', 'ste', 'srste', 'pmd', 'ssd', 'gradual', 'unstructured'),
      mExp: fc.integer({ min: 1, max: 5 }),
      nExp: fc.integer({ min: 0, max: 4 }),
      steps: fc.integer({ min: 2, max: 300 }),
      dense: fc.integer({ min: 0, max: 100 }),
      finetune: fc.integer({ min: 0, max: 100 }),
      interval: fc.integer({ min: 1, max: 40 }),
      decay: fc.constantFrom('staircase', 'linear', 'exponential'),
      frames: fc.boolean(),
    })
    .filter((c) => c.dense + c.finetune <= c.steps && c.nExp < c.mExp)
    .map((c) => {
      const m = 2 ** c.mExp;
      const n = 2 ** c.nExp;
      const extra = c.kind === 'pmd' ? `,decay=${c.decay}${c.frames ? ',frames=stepwise' : ''}` : '';
      return P(`${c.kind}:${n}:${m},steps=${c.steps},dense=${c.dense},finetune=${c.finetune},interval=${c.interval}${extra}`);
    });

  it('α and density never increase after the dense phase; fine-tune is hard at the target', () => {
    fc.assert(
      fc.property(arbRecipe, (r) => {
        const c = r.config;
        let prevAlpha = 1;
        let prevDensity = 1;
        for (let t = 0; t < c.steps; t++) {
          const s = r.at(t);
          expect(s.alpha).toBeLessThanOrEqual(prevAlpha);
          const kept = s.structure === 'unstructured' ? 1 - s.sparsity : s.n / s.m;
          expect(kept).toBeLessThanOrEqual(prevDensity + 1e-12);
          prevAlpha = s.alpha;
          prevDensity = kept;
          if (s.phase === 'finetune') {
            expect(s.alpha).toBe(0);
            if (s.structure === 'nm') expect(s.n / s.m).toBe(c.n / c.m);
          }
        }
        if (c.finetune > 0) {
          // The run ends hard at the target pattern.
          const last = r.at(c.steps - 1);
          expect(last.alpha).toBe(0);
          expect(last.density).toBeCloseTo(c.n / c.m, 12);
        }
      }),
      { numRuns: RUNS * 4 },
    );
  });
});

/** Explicit expectation of ∂L/∂W for a recipe step, from G = ∂L/∂W̃ = dYᵀ·X. */
function expectedGrad(G: Float32Array, w: Float32Array, keep: Float32Array, mode: 'zero' | 'scaled' | 'ste' | 'srste', alpha: number, lambda: number): Float32Array {
  return Float32Array.from(G, (g, i) => {
    if (keep[i] === 1) return g;
    if (mode === 'zero') return 0;
    if (mode === 'scaled') return alpha * g;
    if (mode === 'ste') return g;
    return g + lambda * w[i]!;
  });
}

describe('the gradient reaching pruned weights', () => {
  const cases: [string, number, 'zero' | 'scaled' | 'ste' | 'srste'][] = [
    ['fixed:2:8,steps=10', 3, 'zero'],
    ['ste:2:8,steps=10', 3, 'ste'],
    ['srste:2:8,lambda=0.01,steps=10', 3, 'srste'],
    ['pmd:2:8,decay=linear,beta=0.1,finetune=2,steps=10', 3, 'scaled'],
    ['pmd:2:8,decay=linear,beta=0.1,finetune=2,steps=10', 9, 'zero'],
    ['pmd:2:8,decay=linear,beta=0.1,prunedGrad=ste,steps=10', 3, 'ste'],
    ['ssd:2:8,steps=10', 1, 'zero'],
    ['ssd:2:8,prunedGrad=ste,steps=10', 8, 'ste'],
    ['gradual:2:8,steps=10', 6, 'zero'],
    ['unstructured:2:8,steps=10', 2, 'zero'],
    ['unstructured:2:8,prunedGrad=ste,steps=10', 2, 'ste'],
  ];
  for (const [text, step, mode] of cases) {
    it(`${text} at step ${step}: pruned get ${mode}`, () => {
      const r = P(text);
      const rng = new Rng(step);
      const lin = new Linear(16, 6, { rng });
      const layer = new SparseLinear(lin, r, 'probe');
      layer.setStep(step);
      const st = r.at(step);
      const x = randTensor([5, 16], 1, {}, false);
      const seed = randTensor([5, 6], 2, {}, false);
      const y = layer.forward(x);
      y.backward(seed);
      const keep = layer.keep!;
      const wEff = layer.effectiveWeight();
      // Forward oracle: dense product with W̃.
      const yRef = noGrad(() => linear(x, wEff, lin.bias));
      expect(maxAbsDiff(y.data, yRef.data)).toBeLessThan(1e-5);
      // G = dYᵀ·X computed by a plain loop.
      const G = new Float32Array(6 * 16);
      for (let o = 0; o < 6; o++) for (let i = 0; i < 16; i++) {
        let s = 0;
        for (let b = 0; b < 5; b++) s += seed.data[b * 6 + o]! * x.data[b * 16 + i]!;
        G[o * 16 + i] = s;
      }
      const exp = expectedGrad(G, layer.weight.data, keep, mode, st.alpha, st.lambda);
      expect(maxAbsDiff(layer.weight.grad!.data, exp)).toBeLessThan(1e-5);
      expect(keep.some((k) => k === 0)).toBe(true);
    });
  }

  it('evaluation never refreshes masks', () => {
    const layer = new SparseLinear(new Linear(8, 4, { rng: new Rng(1) }), P('ste:1:4,steps=10'), 'probe');
    const before = Array.from(layer.keep!);
    layer.weight.data.forEach((_v, i) => (layer.weight.data[i] = (i * 7919) % 13));
    layer.eval();
    layer.setStep(3);
    expect(Array.from(layer.keep!)).toEqual(before);
    layer.train();
    layer.setStep(4);
    expect(Array.from(layer.keep!)).not.toEqual(before);
  });
});

/** A 2-layer model of SparseLinear layers: x[B,16] → 32 → 8, summed squares as loss. */
class TwoLayer extends Module {
  a: SparseLinear;
  b: SparseLinear;
  constructor(r: Recipe) {
    super();
    const rng = new Rng(5);
    this.a = this.module('a', new SparseLinear(new Linear(16, 32, { rng }), r, 'a'));
    this.b = this.module('b', new SparseLinear(new Linear(32, 8, { rng }), r, 'b'));
    this.nameModules();
  }
  forward(x: Tensor): Tensor {
    return this.b.forward(relu(this.a.forward(x)));
  }
}

describe('FLOP totals equal the hand-derived closed form', () => {
  const B = 4;
  const F1 = 2 * B * 16 * 32;
  const F2 = 2 * B * 32 * 8;
  // Per step t: ρ_t (forward density) and whether dW is dense, derived by hand from RECIPES.md
  // for T = 6, d = 2, f = 2 (decay window = steps 2 and 3).
  const table: [string, number[], boolean[]][] = [
    ['dense,steps=6,dense=2,finetune=2', [1, 1, 1, 1, 1, 1], [true, true, true, true, true, true]],
    ['fixed:1:4,steps=6,dense=2,finetune=2', [1, 1, 0.25, 0.25, 0.25, 0.25], [true, true, false, false, false, false]],
    ['ste:1:4,steps=6,dense=2,finetune=2', [1, 1, 0.25, 0.25, 0.25, 0.25], [true, true, true, true, true, true]],
    ['srste:1:4,steps=6,dense=2,finetune=2', [1, 1, 0.25, 0.25, 0.25, 0.25], [true, true, true, true, true, true]],
    // staircase w = 0.5, Δ = 1: α = 1 at τ = 0, 0.5 at τ = 1, then fine-tune α = 0.
    ['pmd:1:4,w=0.5,interval=1,steps=6,dense=2,finetune=2', [1, 1, 1, 1, 0.25, 0.25], [true, true, true, true, false, false]],
    ['pmd:1:4,w=0.5,interval=1,prunedGrad=ste,steps=6,dense=2,finetune=2', [1, 1, 1, 1, 0.25, 0.25], [true, true, true, true, true, true]],
    // stepwise frames 3:4, 2:4, 1:4 over a 2-step window: frame ⌊τ·3/2⌋ → 3:4 then 2:4.
    ['ssd:1:4,steps=6,dense=2,finetune=2', [1, 1, 0.75, 0.5, 0.25, 0.25], [true, true, false, false, false, false]],
    ['ssd:1:4,prunedGrad=ste,steps=6,dense=2,finetune=2', [1, 1, 0.75, 0.5, 0.25, 0.25], [true, true, true, true, true, true]],
    // gradual: p = 0 → 4:4; p = 0.5 → s = 0.65625 → ⌊1.375⌋ = 1:4; fine-tune 1:4.
    ['gradual:1:4,steps=6,dense=2,finetune=2', [1, 1, 1, 0.25, 0.25, 0.25], [true, true, false, false, false, false]],
    ['unstructured:1:4,steps=6,dense=2,finetune=2', [1, 1, 0.25, 0.25, 0.25, 0.25], [true, true, false, false, false, false]],
  ];
  for (const [text, rho, denseDW] of table) {
    it(text, () => {
      const r = P(text);
      const model = new TwoLayer(r);
      const counter = new FlopCounter();
      const x = randTensor([B, 16], 3, {}, false);
      countFlops(counter, () => {
        for (let t = 0; t < 6; t++) {
          model.setStep(t);
          model.zeroGrad();
          model.forward(x).pow(2).sum().backward();
        }
      });
      let expected = 0;
      for (let t = 0; t < 6; t++) {
        // Layer a: forward + dW (its input needs no gradient); layer b: forward + dX + dW.
        expected += rho[t]! * F1 + (denseDW[t] ? 1 : rho[t]!) * F1;
        expected += 2 * rho[t]! * F2 + (denseDW[t] ? 1 : rho[t]!) * F2;
      }
      const sparse = counter.total({ category: 'sparse' });
      expect(sparse.flops).toBe(expected);
      expect(sparse.dense).toBe(6 * (2 * F1 + 3 * F2));
      expect(counter.total({ layer: 'a', pass: 'backward-input' }).flops).toBe(0);
    });
  }
});

/** 16-d inputs labelled by a random linear teacher (4 classes). */
function teacherTask(n: number, seed: number): { x: Tensor; y: Int32Array } {
  const rng = new Rng(seed);
  const teacher = Tensor.randn([4, 16], rng);
  const x = Tensor.randn([n, 16], rng);
  const y = argmax(noGrad(() => linear(x, teacher)), -1);
  return { x, y };
}

describe('every recipe trains a small MLP and ends exactly N:M', () => {
  const recipes = ['dense', 'fixed:1:8', 'ste:1:8', 'srste:1:8', 'pmd:1:8,finetune=60', 'pmd:1:8,decay=exponential,finetune=60', 'ssd:1:8,finetune=60', 'gradual:1:8,finetune=60', 'unstructured:1:8'];
  for (const text of recipes) {
    it(text, () => {
      const steps = 300;
      const r = Recipe.parse(text, { steps });
      const rng = new Rng(11);
      const model = new (class extends Module {
        fc1 = this.module('fc1', new SparseLinear(new Linear(16, 64, { rng }), r, 'fc1'));
        fc2 = this.module('fc2', new SparseLinear(new Linear(64, 8, { rng }), r, 'fc2'));
        out = this.module('out', new Linear(8, 4, { rng }));
      })();
      const { x, y } = teacherTask(256, 4);
      const opt = new Adam(model.parameters(), 1e-2);
      let loss = NaN;
      for (let t = 0; t < steps; t++) {
        model.setStep(t);
        opt.zeroGrad();
        const l = crossEntropy(model.out.forward(relu(model.fc2.forward(relu(model.fc1.forward(x))))), y);
        l.backward();
        opt.step();
        loss = l.item();
      }
      expect(loss).toBeLessThan(text === 'dense' ? 0.2 : 0.6);
      if (text !== 'dense') {
        for (const layer of [model.fc1, model.fc2]) {
          const w = layer.effectiveWeight();
          const [rows, cols] = w.shape as [number, number];
          let nonzero = 0;
          for (let i = 0; i < w.size; i++) if (w.data[i] !== 0) nonzero++;
          if (text.startsWith('unstructured')) expect(nonzero).toBeLessThanOrEqual(Math.round(w.size / 8));
          else {
            for (let rI = 0; rI < rows; rI++) for (let g = 0; g < cols / 8; g++) {
              let kept = 0;
              for (let j = 0; j < 8; j++) if (w.data[rI * cols + g * 8 + j] !== 0) kept++;
              expect(kept).toBeLessThanOrEqual(1);
            }
            // The compressed export holds exactly these weights (-0 and +0 compare equal).
            expect(maxAbsDiff(layer.toSparse().toDense().data, w.data)).toBe(0);
          }
        }
      }
    });
  }
});

describe('bad recipe strings and combinations', () => {
  const bad: [string, RegExp][] = [
    ['magic:1:8,steps=10', /unknown recipe 'magic'/],
    ['pmd:9:8,steps=10', /N must not exceed M/],
    ['pmd:0:8,steps=10', /N must be at least 1/],
    ['pmd:1:8,lambda=0.0002,steps=10', /SR-STE \(lambda\) cannot be combined with pmd/],
    ['ssd:1:8,srste=true,steps=10', /SR-STE \(lambda\) cannot be combined with ssd/],
    ['pmd:1:8,dense=-1,steps=10', /dense must be an integer ≥ 0/],
    ['pmd:1:8,dense=6,finetune=6,steps=10', /overlap/],
    ['pmd:1:8,decay=cubic,steps=10', /unknown or invalid option 'decay=cubic'/],
    ['pmd:1:8', /total number of steps is unknown/],
    ['ste:1:8,prunedGrad=scaled,steps=10', /prunedGrad 'scaled' is not allowed for ste/],
    ['pmd:1,steps=10', /expected 'pmd' or 'pmd:N:M'/],
    ['ssd:3:8,steps=10', /power of two/],
  ];
  it('a recipe that is not a string (a damaged config.json, say) is a SparsityConfigError, not a TypeError', () => {
    for (const v of [5, null, undefined, { kind: 'pmd' }]) expect(() => Recipe.parse(v as unknown as string)).toThrow(/recipe: must be a string such as 'pmd:1:8', got/);
    expect(() => Recipe.parse(5 as unknown as string)).toThrow(SparsityConfigError);
  });
  for (const [text, re] of bad) {
    it(text, () => {
      expect(() => Recipe.parse(text)).toThrow(SparsityConfigError);
      expect(() => Recipe.parse(text)).toThrow(re);
    });
  }

  it('geometric frames need in % 8M == 0, named by layer', () => {
    const r = P('ssd:1:4,frames=geometric,steps=10');
    expect(() => new SparseLinear(new Linear(16, 4), r, 'enc.0.ffn.fc1')).toThrow(/enc.0.ffn.fc1: geometric SSD frames need the input dim to be a multiple of 8·M = 32, got 16/);
    expect(() => new SparseLinear(new Linear(12, 4), P('ste:1:8,steps=3'), 'dec.1.ffn.fc2')).toThrow(/dec.1.ffn.fc2: the input dim 12 is not a multiple of M=8/);
  });
});
