import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Adam, Dropout, FeedForward, Linear, Module, Recipe, Rng, SparseLinear, SparsityConfigError, Tensor, loadCheckpoint, mean, mul, noGrad, saveCheckpoint, sparseLayers,
  sparsify, type LayerSelection,
} from '../../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-ckpt-rt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A small model: two FFN blocks, a plain Linear head and a dropout, so every selection form has something to pick. */
class Net extends Module {
  ffn1: FeedForward;
  ffn2: FeedForward;
  head: Linear;
  drop: Dropout;
  constructor(readonly width: number, seed: number, dropout: number) {
    super();
    const rng = new Rng(seed);
    this.ffn1 = this.module('ffn1', new FeedForward(width, 2 * width, { rng, dropout }));
    this.ffn2 = this.module('ffn2', new FeedForward(width, 2 * width, { rng, dropout }));
    this.head = this.module('head', new Linear(width, width, { rng }));
    this.drop = this.module('drop', new Dropout(dropout, new Rng(seed + 1)));
    this.nameModules();
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.drop.forward(this.ffn2.forward(this.ffn1.forward(x))));
  }
}

/** Every recipe kind, and each decay (pmd) and frame kind (ssd), on a 32-wide model. */
const RECIPES = [
  'dense', 'fixed:1:4,dense=3', 'ste:2:8,interval=3', 'srste:1:8,interval=2',
  'pmd:1:8,decay=staircase,interval=2', 'pmd:1:4,decay=linear', 'pmd:2:8,decay=exponential,interval=3',
  'ssd:1:8', 'ssd:1:4,frames=geometric', 'ssd:1:8,frames=4:8;2:8;1:8,prunedGrad=ste',
  'gradual:1:8,interval=2', 'unstructured:1:8,interval=3',
];
const STEPS = 20;
const SELECTIONS: LayerSelection[] = ['ffn', 'all', ['ffn1.fc1', 'head'], (name) => name.endsWith('fc2')];

function build(recipe: string, selection: LayerSelection, seed: number, dropout: number): { net: Net; opt: Adam } {
  const net = new Net(32, seed, dropout);
  const r = Recipe.parse(recipe, { steps: STEPS });
  if (r.config.kind !== 'dense') sparsify(net, r, { layers: selection });
  return { net, opt: new Adam(net.parameters(), 3e-3) };
}

function trainStep(net: Net, opt: Adam, step: number, x: Tensor, target: Tensor): number {
  net.train();
  net.setStep(step);
  opt.zeroGrad();
  const d = net.forward(x).sub(target);
  const loss = mean(mul(d, d));
  loss.backward();
  opt.step();
  return loss.item();
}

const weights = (m: Module): Float32Array[] => m.parameters().map((p) => Float32Array.from(p.data));
const output = (net: Net, x: Tensor): Float32Array => noGrad(() => Float32Array.from(net.eval().forward(x).data));

describe('checkpoints carry the sparse state (property)', () => {
  it('random model × every recipe × random step: save → load gives bitwise-equal outputs and an identical next training step', () => {
    let cases = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...RECIPES), fc.constantFrom(...SELECTIONS), fc.integer({ min: 0, max: STEPS - 2 }), fc.integer({ min: 1, max: 1000 }), fc.constantFrom(0, 0.2),
        (recipe, selection, steps, seed, dropout) => {
          const rng = new Rng(seed);
          const x = Tensor.randn([6, 32], rng);
          const target = Tensor.randn([6, 32], rng);
          const a = build(recipe, selection, seed, dropout);
          for (let t = 0; t < steps; t++) trainStep(a.net, a.opt, t, x, target);
          const path = join(tmp, `rt-${cases++}.safetensors`);
          saveCheckpoint(path, a.net, { optimizer: a.opt, state: { step: steps } });
          // Another initialisation, the same architecture and recipe: everything must come from the file.
          const b = build(recipe, selection, seed + 7, dropout);
          expect(loadCheckpoint(path, b.net, { optimizer: b.opt })).toEqual({ step: steps });
          for (const [[name, la], [, lb]] of sparseLayers(a.net).map((e, i) => [e, sparseLayers(b.net)[i]!] as const)) {
            expect(lb.getMaskState(), name).toEqual(la.getMaskState());
            expect(lb.state, name).toEqual(la.state);
          }
          expect(output(b.net, x)).toEqual(output(a.net, x));
          const lossA = trainStep(a.net, a.opt, steps, x, target);
          const lossB = trainStep(b.net, b.opt, steps, x, target);
          expect(lossB).toBe(lossA);
          expect(weights(b.net)).toEqual(weights(a.net));
          expect(output(b.net, x)).toEqual(output(a.net, x));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('every phase of every recipe: hard, decay, dense and fine-tune steps all round-trip', () => {
    for (const recipe of RECIPES) {
      for (const steps of [1, 3, 9, 17]) {
        const rng = new Rng(steps);
        const x = Tensor.randn([4, 32], rng);
        const a = build(recipe, 'ffn', 3, 0.1);
        for (let t = 0; t < steps; t++) trainStep(a.net, a.opt, t, x, x);
        const path = join(tmp, 'phase.safetensors');
        saveCheckpoint(path, a.net, { optimizer: a.opt });
        const b = build(recipe, 'ffn', 11, 0.1);
        loadCheckpoint(path, b.net, { optimizer: b.opt });
        expect(output(b.net, x), `${recipe} at ${steps}`).toEqual(output(a.net, x));
        expect(trainStep(b.net, b.opt, steps, x, x), `${recipe} at ${steps}`).toBe(trainStep(a.net, a.opt, steps, x, x));
      }
    }
  });
});

describe('a checkpoint loaded into another sparse layout is a typed error naming the layer', () => {
  const path = join(tmp, 'layout.safetensors');
  const sparseNet = build('ste:1:8', 'ffn', 1, 0).net;
  saveCheckpoint(path, sparseNet);

  it('a dense model where the file has sparse layers', () => {
    const dense = new Net(32, 1, 0);
    expect(() => loadCheckpoint(path, dense)).toThrow(SparsityConfigError);
    expect(() => loadCheckpoint(path, dense)).toThrow(/ffn1\.fc1: the checkpoint .* holds this layer sparse \(ste:1:8\) but the model's 'ffn1\.fc1' is not a SparseLinear/);
  });

  it('a sparse layer where the file has a dense one, and another N:M or kind', () => {
    const densePath = join(tmp, 'dense.safetensors');
    saveCheckpoint(densePath, new Net(32, 1, 0));
    expect(() => loadCheckpoint(densePath, build('ste:1:8', 'ffn', 1, 0).net)).toThrow(/ffn1\.fc1: the model's layer is sparse \(ste:1:8\) but the checkpoint .* holds it dense/);
    expect(() => loadCheckpoint(path, build('ste:2:8', 'ffn', 1, 0).net)).toThrow(/ffn1\.fc1: the checkpoint .* holds this layer as ste:1:8, the model has ste:2:8/);
    expect(() => loadCheckpoint(path, build('pmd:1:8', 'ffn', 1, 0).net)).toThrow(/holds this layer as ste:1:8, the model has pmd:1:8/);
    // Refused before anything was copied.
    const target = build('ste:2:8', 'ffn', 9, 0).net;
    const before = weights(target);
    expect(() => loadCheckpoint(path, target)).toThrow(SparsityConfigError);
    expect(weights(target)).toEqual(before);
  });

  it('a model that is sparsified the same way loads; a plain weights file without sparse state still loads its weights', () => {
    const same = build('ste:1:8', 'ffn', 5, 0).net;
    loadCheckpoint(path, same);
    expect(sparseLayers(same).map(([, l]) => l.getMaskState())).toEqual(sparseLayers(sparseNet).map(([, l]) => l.getMaskState()));
    expect(sparseLayers(same)[0]![1]).toBeInstanceOf(SparseLinear);
  });
});
