/**
 * A 1:4 sparse MLP trained with nmgrad's `fit`: generated data, pruning mask decay, a run folder
 * that is paused and resumed, then a compressed export that reloads to the same predictions.
 *   npm run sparse-mlp [-- RUN_DIR]
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  Adam, Linear, Module, Recipe, Rng, Tensor, argmax, crossEntropy, exportCompressed, fit, inverseSqrtLr, loadCompressed, noGrad, relu, sparsify,
} from 'nmgrad';

class Mlp extends Module {
  fc1 = this.module('fc1', new Linear(32, 128, { rng: new Rng(1) }));
  fc2 = this.module('fc2', new Linear(128, 128, { rng: new Rng(2) }));
  head = this.module('head', new Linear(128, 4, { rng: new Rng(3) }));
  forward(x: Tensor): Tensor {
    return this.head.forward(relu(this.fc2.forward(relu(this.fc1.forward(x)))));
  }
}

// Data: 32-dim Gaussian points labelled by the argmax of a random two-layer teacher.
const rng = new Rng(7);
const teacher = [Tensor.randn([32, 16], rng), Tensor.randn([16, 4], rng)];
const sample = (n: number): { x: Tensor; y: Int32Array } => {
  const x = Tensor.randn([n, 32], rng);
  const y = noGrad(() => argmax(relu(x.matmul(teacher[0]!)).matmul(teacher[1]!), -1));
  return { x, y };
};
const train = Array.from({ length: 16 }, () => sample(64));
const test = sample(1000);

const steps = 600;
const recipe = Recipe.parse('pmd:1:4', { steps }); // 10% dense, decay, 30% hard 1:4 fine-tune
const build = (): { model: Mlp; optimizer: Adam } => {
  const model = new Mlp();
  sparsify(model, recipe, { layers: ['fc1', 'fc2'] });
  return { model, optimizer: new Adam(model.parameters(), 3e-3) };
};
const dir = process.argv[2] ?? join(tmpdir(), `nmgrad-sparse-mlp-${process.pid}`);
const run = (resume: boolean, stopAfter?: number) => {
  const { model, optimizer } = build();
  return fit({
    model, optimizer, steps, recipe, dir, resume, overwrite: !resume, stopAfter, config: { recipe: 'pmd:1:4', steps },
    batches: (epoch) => train.map((_, i) => train[(i + epoch) % train.length]!), // a new order each epoch
    loss: (b) => crossEntropy(model.forward(b.x), b.y),
    lr: inverseSqrtLr(3e-3, 50), clipNorm: 1, progressEvery: 100,
    onEvent: (e) => e.type === 'progress' && console.log(`step ${e.step}/${e.steps}  loss ${e.loss.toFixed(3)}  phase ${e.phase}  α ${e.alpha.toFixed(3)}  N:M ${e.nm}`),
  }).then((r) => ({ ...r, model }));
};

const first = await run(false, 250); // an interrupted run: a checkpoint at step 250
console.log(`${first.stopped} at step ${first.state.step}; resuming ${dir}`);
const done = await run(true);
const accuracy = (m: Mlp): number => noGrad(() => argmax(m.eval().forward(test.x), -1).reduce((n: number, v, i) => n + (v === test.y[i] ? 1 : 0), 0) / test.y.length);
console.log(`done at step ${done.state.step}, ends hard N:M: ${done.endsHard}, test accuracy ${(100 * accuracy(done.model)).toFixed(1)}%`);

const file = join(dir, 'model.safetensors');
const ex = exportCompressed(file, done.model);
const reloaded = new Mlp();
loadCompressed(file, reloaded);
console.log(`exported ${ex.bytes} bytes (${(ex.bytes / ex.denseWeightBytes).toFixed(2)} × dense), layers ${Object.keys(ex.layers).join(', ')}; reloaded accuracy ${(100 * accuracy(reloaded)).toFixed(1)}%`);
