/**
 * The Transformer training step the train-step and peers suites time: the model presets, a
 * fixed synthetic batch, and the step itself (forward, loss, backward, clip, Adam) as the
 * translation example runs it. bench/peers/torch_step.py is this step's PyTorch twin: a change
 * here (model shape, dropout, loss, clipping, optimizer) must be made there too.
 */
import { Adam, Recipe, Rng, Transformer, clipGradNorm, labelSmoothedLoss, sparseLayers, sparsify } from '../src/index.js';
import { storagePoolStats } from '../src/kernels/memory/storage.js';

export interface StepPreset {
  dModel: number;
  heads: number;
  ffn: number;
  encoderLayers: number;
  decoderLayers: number;
  dropout: number;
  vocab: number;
  /** Sentence pairs per batch and their source / target lengths. */
  batch: number;
  srcLen: number;
  tgtLen: number;
}

export const STEP_PRESETS = {
  /** The translation example's `small` preset, a vocabulary about what 3000 BPE merges give on Multi30k, 60 pairs of 25 tokens: 1500 tokens per side, like one `small` batch. */
  small: { dModel: 128, heads: 4, ffn: 512, encoderLayers: 2, decoderLayers: 2, dropout: 0.1, vocab: 3000, batch: 60, srcLen: 25, tgtLen: 25 },
  /** The example's `base` preset: 5000 merges give a 5362-token vocabulary on Multi30k; 100 pairs of 25 tokens ≈ its 2500-token batch. */
  base: { dModel: 256, heads: 4, ffn: 1024, encoderLayers: 3, decoderLayers: 3, dropout: 0.2, vocab: 5362, batch: 100, srcLen: 25, tgtLen: 25 },
  /** Smoke-test size only (seconds on a loaded machine); never a measurement. */
  tiny: { dModel: 32, heads: 2, ffn: 64, encoderLayers: 1, decoderLayers: 1, dropout: 0.1, vocab: 200, batch: 4, srcLen: 8, tgtLen: 8 },
} as const satisfies Record<string, StepPreset>;
export type StepPresetName = keyof typeof STEP_PRESETS;

/** Dense, 1:8 on the FFN Linears, or 1:8 on every Linear (FFN and attention projections; the tied vocabulary projection is no Linear and stays dense). */
export type StepVariant = 'dense' | '1:8' | '1:8 all';

/** PMD's fine-tune phase of a 1000-step schedule (steps 700…999): α = 0, compressed 1:8 kernels. */
export const SPARSE = { recipe: 'pmd:1:8,dense=100,finetune=300', steps: 1000, step: 900 };

export interface Batch { src: number[]; tgtIn: number[]; tgtOut: number[] }

/** Fixed synthetic token ids (1..vocab-1; 0 is padding), with a few padded source tails. */
export function syntheticBatch(p: StepPreset): Batch {
  const rng = new Rng(11);
  const ids = (n: number): number[] => Array.from({ length: n }, () => 1 + rng.int(p.vocab - 1));
  const src = ids(p.batch * p.srcLen);
  for (let b = 0; b < p.batch; b += 4) for (let t = Math.max(0, p.srcLen - 1 - (b % 5)); t < p.srcLen; t++) src[b * p.srcLen + t] = 0;
  return { src, tgtIn: ids(p.batch * p.tgtLen), tgtOut: ids(p.batch * p.tgtLen) };
}

/** The preset's model: pre-norm, separate source and target embeddings, output tied to the target embedding. */
export function buildModel(p: StepPreset): Transformer {
  return new Transformer({
    dModel: p.dModel, heads: p.heads, ffn: p.ffn, encoderLayers: p.encoderLayers, decoderLayers: p.decoderLayers, dropout: p.dropout,
    srcVocab: p.vocab, tgtVocab: p.vocab, seed: 5,
  });
}

export interface TrainStep {
  step: () => void;
  model: Transformer;
}

/** One training step as the translation example runs it: forward, loss, backward, clip, Adam. */
export function makeStep(p: StepPreset, variant: StepVariant, batch: Batch): TrainStep {
  const model = buildModel(p);
  const sparse = variant !== 'dense';
  if (sparse) sparsify(model, Recipe.parse(SPARSE.recipe, { steps: SPARSE.steps }), { layers: variant === '1:8 all' ? 'all' : 'ffn' });
  model.nameModules();
  model.setStep(sparse ? SPARSE.step : 0);
  if (sparse) {
    // The hard phase is what these cases measure: refuse to time a step that still decays.
    const layers = sparseLayers(model).map(([, l]) => l);
    const soft = layers.filter((l) => l.state.alpha !== 0 || l.state.phase !== 'finetune');
    if (layers.length === 0 || soft.length > 0) throw new Error(`train step: ${SPARSE.recipe} at step ${SPARSE.step} is not in its hard phase (${layers.length} sparse layers, ${soft.length} with α > 0)`);
  }
  const opt = new Adam(model.parameters(), 1e-4, { beta1: 0.9, beta2: 0.98, eps: 1e-9 });
  const srcShape = [p.batch, p.srcLen] as const;
  const tgtShape = [p.batch, p.tgtLen] as const;
  const step = (): void => {
    opt.zeroGrad();
    const logits = model.forward(batch.src, srcShape, batch.tgtIn, tgtShape, 0);
    labelSmoothedLoss(logits, batch.tgtOut, 0, 0.1).backward();
    clipGradNorm(opt.params, 1);
    opt.step();
  };
  return { step, model };
}

export const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Steps (with a turn of the event loop after each) until one allocates no fresh arena memory, at most 8. */
export async function warmUp(step: () => void): Promise<void> {
  for (let i = 0; i < 8; i++) {
    const fresh = storagePoolStats().fresh;
    step();
    await turn();
    if (i > 0 && storagePoolStats().fresh === fresh) return;
  }
}
