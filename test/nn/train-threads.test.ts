import { describe, expect, it } from 'vitest';
import { Adam, Recipe, Rng, Transformer, clipGradNorm, labelSmoothedLoss, sparsify } from '../../src/index.js';
import { DEFAULT_PARALLEL_MIN_COST, poolSize, setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';
import { restoreThreadsAfterAll } from '../helpers.js';

/**
 * A few training steps of a small Transformer (dropout on, Adam, gradient clipping) give
 * bitwise the same losses and parameters on 1 and 2 threads, with every threaded kernel forced
 * onto the pool, dense and with 1:8 compressed FFN layers.
 */
restoreThreadsAfterAll({ shutdown: true });

const [B, S, T, V] = [6, 11, 9, 40];

function train(threads: number, recipe: string | null): { losses: number[]; params: Float32Array[] } {
  setThreads(threads);
  setParallelMinCost(0);
  const model = new Transformer({ srcVocab: V, tgtVocab: V, dModel: 32, heads: 4, ffn: 64, encoderLayers: 1, decoderLayers: 1, dropout: 0.1, seed: 3 });
  if (recipe) sparsify(model, Recipe.parse(recipe, { steps: 10 }), { layers: 'ffn' });
  model.nameModules();
  const opt = new Adam(model.parameters(), 3e-3);
  const rng = new Rng(9);
  const ids = (n: number): number[] => Array.from({ length: n }, () => 1 + rng.int(V - 1));
  const src = ids(B * S);
  src[B * S - 1] = 0;
  const tgtIn = ids(B * T);
  const tgtOut = ids(B * T);
  const losses: number[] = [];
  for (let step = 0; step < 4; step++) {
    model.setStep(recipe ? 8 + (step % 2) : step);
    opt.zeroGrad();
    const loss = labelSmoothedLoss(model.forward(src, [B, S], tgtIn, [B, T], 0), tgtOut, 0, 0.1);
    loss.backward();
    losses.push(loss.item());
    clipGradNorm(opt.params, 1);
    opt.step();
  }
  if (threads > 1) expect(poolSize()).toBe(threads - 1);
  setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
  return { losses, params: opt.params.map((p) => Float32Array.from(p.data)) };
}

describe('training is bitwise the same on 1 and 2 threads', () => {
  for (const [name, recipe] of [['dense', null], ['1:8 FFN, hard phase', 'pmd:1:8,dense=2,finetune=4']] as const) {
    it(name, () => {
      const one = train(1, recipe);
      const two = train(2, recipe);
      expect(two.losses).toEqual(one.losses);
      expect(one.losses[3]!).toBeLessThan(one.losses[0]!);
      one.params.forEach((p, i) => {
        const q = two.params[i]!;
        for (let j = 0; j < p.length; j++) if (!Object.is(p[j], q[j])) expect.fail(`parameter ${i} element ${j}: ${p[j]} vs ${q[j]}`);
      });
    });
  }
});
