import { describe, expect, it } from 'vitest';
import { FlopCounter, Recipe, Rng, Transformer, countFlops, labelSmoothedLoss, sparsify, type Pass } from '../../src/index.js';

/**
 * One training step (forward, loss, backward) of a small pre-norm Transformer, counted by the
 * ops, against a closed form written from the architecture and the per-op costs documented in
 * docs/architecture.md: linear 2·rows·in·out per pass (ρ of it for compressed FFN layers, bias
 * rows·out), binary ops one FLOP per output element (backward: per operand that needs a grad),
 * unary n forward / 2n backward, layerNorm 8n / 10n, softmax 4n / 4n, masked fill (where) n / n,
 * dropout n / n, crossEntropy 5n / 3n, embedding backward n (scatter-add), data movement 0.
 */
const [B, S, T, D, H, F, V] = [3, 7, 5, 16, 2, 32, 24];
const Dh = D / H;

interface Tally { forward: number; 'backward-input': number; 'backward-weight': number }

function closedForm(ffnDensity: number): Tally {
  const t: Tally = { forward: 0, 'backward-input': 0, 'backward-weight': 0 };
  const add = (fwd: number, bin: number, bw = 0): void => {
    t.forward += fwd;
    t['backward-input'] += bin;
    t['backward-weight'] += bw;
  };
  /** A Linear over `rows` rows: forward, dX, dW at density ρ (dW at ρ: pruned weights get none), bias. */
  const linear = (rows: number, inF: number, outF: number, rho = 1, bias = true, inputGrad = true): void => {
    const full = 2 * rows * inF * outF;
    add(rho * full + (bias ? rows * outF : 0), inputGrad ? rho * full : 0, rho * full + (bias ? rows * outF : 0));
  };
  const layerNorm = (n: number): void => add(8 * n, 10 * n);
  const dropout = (n: number): void => add(n, n);
  const residual = (n: number): void => add(n, 2 * n);
  const embed = (rows: number): void => {
    const n = rows * D;
    add(0, 0, n); // gather forward (no arithmetic), scatter-add backward
    add(n, n); // · √D
    add(n, n); // + positions (no grad for the constant table)
    dropout(n);
  };
  /** Multi-head attention of tq queries over tk keys (k, v projected from tk rows). */
  const attention = (tq: number, tk: number): void => {
    const q = B * tq * D;
    linear(B * tq, D, D); // q
    add(q, q); // q · 1/√Dh
    linear(B * tk, D, D); // k
    linear(B * tk, D, D); // v
    const scores = B * H * tq * tk;
    const products = 2 * B * H * tq * tk * Dh;
    add(products, 2 * products); // Q·Kᵀ, both operands are activations
    add(scores, scores); // masked fill (key padding or causal)
    add(4 * scores, 4 * scores); // softmax
    dropout(scores);
    add(products, 2 * products); // P·V
    linear(B * tq, D, D); // out projection
  };
  const ffn = (rows: number): void => {
    linear(rows, D, F, ffnDensity);
    add(rows * F, 2 * rows * F); // relu
    dropout(rows * F);
    linear(rows, F, D, ffnDensity);
  };
  // Encoder: embedding, one pre-norm layer, final norm.
  const ns = B * S * D;
  embed(B * S);
  layerNorm(ns); attention(S, S); dropout(ns); residual(ns);
  layerNorm(ns); ffn(B * S); dropout(ns); residual(ns);
  layerNorm(ns);
  // Decoder: embedding, one pre-norm layer (causal self attention, cross attention), final norm.
  const nt = B * T * D;
  embed(B * T);
  layerNorm(nt); attention(T, T); dropout(nt); residual(nt);
  layerNorm(nt); attention(T, S); dropout(nt); residual(nt);
  layerNorm(nt); ffn(B * T); dropout(nt); residual(nt);
  layerNorm(nt);
  // Tied output projection (no bias) and the label-smoothed loss.
  linear(B * T, D, V, 1, false);
  add(5 * B * T * V, 3 * B * T * V);
  return t;
}

function countedStep(recipe: string | null, step: number): FlopCounter {
  const model = new Transformer({ srcVocab: V, tgtVocab: V, dModel: D, heads: H, ffn: F, encoderLayers: 1, decoderLayers: 1, dropout: 0.1, seed: 2 });
  if (recipe) sparsify(model, Recipe.parse(recipe, { steps: 10 }), { layers: 'ffn' });
  model.nameModules();
  model.setStep(step);
  const rng = new Rng(4);
  const src = Array.from({ length: B * S }, () => 1 + rng.int(V - 1));
  const tgt = Array.from({ length: B * T }, () => 1 + rng.int(V - 1));
  src[B * S - 1] = 0; // one padded source position
  const counter = new FlopCounter();
  countFlops(counter, () => labelSmoothedLoss(model.forward(src, [B, S], tgt, [B, T], 0), tgt, 0, 0.1).backward());
  return counter;
}

describe('FLOP counter against a closed form over one Transformer training step', () => {
  const cases: [string, string | null, number, number][] = [
    ['dense', null, 0, 1],
    ['1:8 on the FFN layers, hard phase (pmd fine-tune)', 'pmd:1:8,dense=2,finetune=4', 8, 1 / 8],
  ];
  for (const [name, recipe, step, rho] of cases) {
    it(name, () => {
      const counter = countedStep(recipe, step);
      const expected = closedForm(rho);
      for (const pass of ['forward', 'backward-input', 'backward-weight'] as Pass[]) {
        expect(counter.total({ pass }).flops, pass).toBe(expected[pass]);
      }
      // Dense equivalents: the same step run dense.
      const dense = closedForm(1);
      expect(counter.total().dense).toBe(dense.forward + dense['backward-input'] + dense['backward-weight']);
    });
  }
});
