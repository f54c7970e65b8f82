import { describe, expect, it } from 'vitest';
import { FlopCounter, Linear, Recipe, Rng, SparseLinear, Tensor, countFlops, mean, sum } from '../../src/index.js';
import { randTensor } from '../helpers.js';

const P = (text: string, steps = 20): Recipe => Recipe.parse(text, { steps });

describe('gradual with Δ > 1 holds s_t between refreshes', () => {
  it('gradual:1:8,interval=4,dense=1,finetune=1 over 20 steps (table)', () => {
    // d = 1, window [1, 19), Δ = 4: s_t moves only at τ = 0, 4, 8, 12, 16 (t = 1, 5, 9, 13, 17).
    // N at those steps: 8, 4, 2, 1, 1 from s = 0.875·(1 − (1 − τ/18)³); fine-tune keeps 1:8.
    const expected: [number, string, number, boolean][] = [
      [0, 'dense', 1, false], [1, 'decay', 8, true], [2, 'decay', 8, false], [3, 'decay', 8, false], [4, 'decay', 8, false],
      [5, 'decay', 4, true], [6, 'decay', 4, false], [7, 'decay', 4, false], [8, 'decay', 4, false],
      [9, 'decay', 2, true], [10, 'decay', 2, false], [11, 'decay', 2, false], [12, 'decay', 2, false],
      [13, 'decay', 1, true], [14, 'decay', 1, false], [15, 'decay', 1, false], [16, 'decay', 1, false],
      [17, 'decay', 1, true], [18, 'decay', 1, false], [19, 'finetune', 1, false],
    ];
    const r = P('gradual:1:8,interval=4,dense=1,finetune=1');
    expect(expected.map(([t]) => { const s = r.at(t); return [t, s.phase, s.n, s.refreshMask]; })).toEqual(expected);
  });

  it('an off-grid window end refreshes once to reach the target (unstructured and N:M)', () => {
    // Window [0, 10), Δ = 4: grid 0, 4, 8; at t = 10 fine-tune starts at the target sparsity.
    const nm = P('gradual:1:8,interval=4,finetune=10,dense=0');
    expect([8, 9, 10, 11].map((t) => [nm.at(t).n, nm.at(t).refreshMask])).toEqual([[1, true], [1, false], [1, false], [1, false]]);
    const un = P('gradual:1:8,structure=unstructured,interval=4,finetune=10,dense=0');
    expect([8, 9, 10, 11, 12].map((t) => un.at(t).refreshMask)).toEqual([true, false, true, false, true]);
    expect(un.at(9).sparsity).toBe(un.at(8).sparsity);
    expect(un.at(10).sparsity).toBe(0.875);
  });

  const recipes = [
    'gradual:1:8,interval=4,dense=1,finetune=1', 'gradual:1:8,structure=unstructured,interval=3,dense=2,finetune=3', 'gradual:2:8,interval=5',
    'pmd:1:8,interval=3,dense=2,finetune=4', 'pmd:1:8,frames=stepwise,interval=4,dense=1,finetune=3', 'ssd:1:8,interval=2,dense=3,finetune=4',
    'ssd:1:8,frames=geometric,dense=2,finetune=2', 'fixed:1:4,dense=3', 'ste:2:8,interval=3', 'srste:1:8,interval=2', 'unstructured:1:8,interval=5',
  ];
  for (const text of recipes) {
    it(`${text}: the layer recomputes its mask exactly at the steps at(t) flags`, () => {
      const r = P(text);
      const layer = new SparseLinear(new Linear(64, 4, { rng: new Rng(1) }), r, 'probe');
      let keep = layer.keep;
      for (let t = 1; t < 20; t++) {
        layer.setStep(t);
        const st = r.at(t);
        const recomputed = layer.keep !== keep;
        const firstMask = keep === null && layer.keep !== null;
        expect([t, recomputed], `step ${t}`).toEqual([t, st.structure !== 'none' && (st.refreshMask || firstMask)]);
        keep = layer.keep;
        // Pruned-weight updates between steps so a refresh could change the mask.
        layer.weight.data.set(randTensor(layer.weight.shape, t, {}, false).data);
      }
    });
  }
});

describe('phase labels', () => {
  // [recipe, label before d, label inside the window, label in fine-tune]
  const table: [string, string, string, string][] = [
    ['dense', 'dense', 'dense', 'dense'],
    ['fixed:1:8', 'dense', 'sparse', 'finetune'],
    ['ste:1:8', 'dense', 'sparse', 'finetune'],
    ['srste:1:8', 'dense', 'sparse', 'finetune'],
    ['unstructured:1:8', 'dense', 'sparse', 'finetune'],
    ['pmd:1:8', 'dense', 'decay', 'finetune'],
    ['ssd:1:8', 'dense', 'decay', 'finetune'],
    ['gradual:1:8', 'dense', 'decay', 'finetune'],
  ];
  for (const [kind, before, inside, after] of table) {
    it(`${kind}: ${before} / ${inside} / ${after}`, () => {
      const r = P(`${kind},dense=4,finetune=6`);
      expect([0, 3].map((t) => r.at(t).phase)).toEqual([before, before]);
      expect([4, 9, 13].map((t) => r.at(t).phase)).toEqual([inside, inside, inside]);
      expect([14, 19].map((t) => r.at(t).phase)).toEqual([after, after]);
    });
  }
});

describe('FLOPs of the masked product, SR-STE and reductions against closed forms', () => {
  const [B, K, O] = [6, 16, 5];
  const layerStep = (text: string, step: number): FlopCounter => {
    const layer = new SparseLinear(new Linear(K, O, { rng: new Rng(2) }), P(text), 'probe');
    layer.setStep(step);
    const counter = new FlopCounter();
    countFlops(counter, () => layer.forward(randTensor([B, K], 3, {}, true)).backward(randTensor([B, O], 4, {}, false)));
    return counter;
  };
  const cases: [string, string, number, { fwd: number; bwdW: number }][] = [
    // α > 0: W ⊙ (E + α·Ē) is built (O·K multiplies); α·g on the O·K·(1 − N/M) pruned weights.
    ['pmd decay step (α = 0.5)', 'pmd:1:4,decay=linear,beta=0.05,dense=2', 12, { fwd: O * K + B * O, bwdW: O * K * (3 / 4) + B * O }],
    // SR-STE, hard: compressed forward (no mask product); λ·W: 2 FLOPs per pruned weight.
    ['srste hard step', 'srste:1:4', 5, { fwd: B * O, bwdW: 2 * O * K * (3 / 4) + B * O }],
    // ste: pruned weights get g (c = 1): no extra work.
    ['ste hard step', 'ste:1:4', 5, { fwd: B * O, bwdW: B * O }],
    // unstructured: a 0/1 mask is a selection (no multiply); pruned weights get 0.
    ['unstructured', 'unstructured:1:4', 5, { fwd: B * O, bwdW: B * O }],
  ];
  for (const [name, text, step, want] of cases) {
    it(`${name}: elementwise FLOPs (bias included)`, () => {
      const c = layerStep(text, step);
      if (text.startsWith('pmd')) expect(P(text).at(step).alpha).toBeCloseTo(0.5, 12);
      expect(c.total({ pass: 'forward', category: 'elementwise' }).flops).toBe(want.fwd);
      expect(c.total({ pass: 'backward-weight', category: 'elementwise' }).flops).toBe(want.bwdW);
    });
  }

  const reductions: [string, (x: Tensor) => Tensor, number[], number][] = [
    ['full sum of [3, 4]', (x) => sum(x), [3, 4], 11],
    ['full sum of [10, 10]', (x) => sum(x), [10, 10], 99],
    ['full sum of [2, 3, 4]', (x) => sum(x), [2, 3, 4], 23],
    ['sum over axis 1 of [3, 4]', (x) => sum(x, 1), [3, 4], 9],
    ['sum over axes (0, 2) of [2, 3, 4]', (x) => sum(x, [0, 2]), [2, 3, 4], 3 * (2 * 4 - 1)],
    ['mean of [3, 4]', (x) => mean(x), [3, 4], 11 + 1],
    ['mean over axis 0 of [3, 4]', (x) => mean(x, 0), [3, 4], 4 * 2 + 4],
  ];
  for (const [name, fn, shape, flops] of reductions) {
    it(`${name}: ${flops} FLOPs forward`, () => {
      const c = new FlopCounter();
      countFlops(c, () => fn(Tensor.ones(shape)));
      expect(c.total({ pass: 'forward' }).flops).toBe(flops);
    });
  }
});
