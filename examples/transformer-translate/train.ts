/** The training loop of the translation example: data → BPE → Transformer + recipe → checkpoints. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DataError, FlopCounter, Rng, TOKENIZER_FILE, buildTranslationRun, countFlops, fit, flopReport, formatFlopReport, inverseSqrtLr, labelSmoothedLoss, makeBatches, noGrad,
  checkpointStep, readRunConfig, readTokenizer, type Batch, type Example, type FlopReport, type TrainState,
} from 'nmgrad';
import { BpeTokenizer } from 'nmgrad/text';
import { generateBuiltinCorpus, type Pair } from './data/builtin.js';
import { readParallel } from './data/parallel.js';
import type { Run, RunConfig } from './model-io.js';
import { saveRunOptions, type RunOptions } from './run-options.js';
import { configDifferences } from './resume.js';
import { score, translateAll, type Scores } from './translate.js';

export interface Splits {
  train: Pair[];
  val: Pair[];
  test: Pair[];
  name: string;
}

export const PRESETS = {
  tiny: { dModel: 64, heads: 4, ffn: 256, encoderLayers: 2, decoderLayers: 2, merges: 600, batchTokens: 1500, lr: 3e-3, warmup: 150, steps: 1000, dropout: 0.0 },
  // Sized for Multi30k on a 2-core CPU: ~1.65 s per 1500-token step on 2 threads, so 4000 steps
  // (about 11 epochs) take ~110 min. A d256 3+3-layer model with 8000 merges costs ~19 s per
  // 4000-token step here, only about 3 epochs in 2 hours.
  small: { dModel: 128, heads: 4, ffn: 512, encoderLayers: 2, decoderLayers: 2, merges: 3000, batchTokens: 1500, lr: 2e-3, warmup: 200, steps: 4000, dropout: 0.1 },
  // For Multi30k with the wasm backend: a d256 3+3-layer model, joint BPE of ~5000 merges and
  // more dropout than WMT models use. A 2500-token step measures 1.75–2.0 s on 2 threads of the
  // 2-core machine, so 3200 steps (~17 epochs) train in under 2 hours with their evaluations.
  base: { dModel: 256, heads: 4, ffn: 1024, encoderLayers: 3, decoderLayers: 3, merges: 5000, batchTokens: 2500, lr: 1.5e-3, warmup: 400, steps: 3200, dropout: 0.2 },
} as const;
export type PresetName = keyof typeof PRESETS;

export function loadSplits(data: string, src: string, tgt: string, maxLen: number, log: (s: string) => void): Splits {
  if (data === 'builtin') {
    const c = generateBuiltinCorpus({ seed: 1 });
    return { ...c, name: 'builtin' };
  }
  const train = readParallel(data, 'train', src, tgt, { maxLen });
  log(`train: ${train.summary.kept} pairs (${train.summary.skippedEmpty} empty skipped, ${train.summary.filteredLong} over ${maxLen} tokens filtered)`);
  const val = readParallel(data, 'val', src, tgt);
  // Without val pairs a run would train for hours and then report BLEU 0 for an empty set.
  if (val.pairs.length === 0) throw new DataError(val.summary.file, `the val split has no sentence pairs (${val.summary.lines} lines, ${val.summary.skippedEmpty} empty pairs skipped): nothing to score`);
  const test = existsSync(join(data, `test.${src}`)) ? readParallel(data, 'test', src, tgt).pairs : [];
  return { train: train.pairs, val: val.pairs, test, name: data };
}

export interface TrainOptions {
  config: RunConfig;
  out: string;
  resume?: boolean;
  /** Stop after this many steps in this process (simulates an interruption; tests). */
  stopAfter?: number;
  evalEvery?: number;
  evalSentences?: number;
  log: (line: string) => void;
  json: boolean;
  splits: Splits;
  /** A tokenizer already trained on `splits.train` with `config.merges` (skips BPE training). */
  tokenizer?: BpeTokenizer;
  /** Start afresh in a folder that already holds a run, deleting its files (else refused). */
  overwrite?: boolean;
  /** Keep the weights of the last `keep` checkpoints in `checkpoints/` (for averaging). */
  keep?: number;
  /** With evalEvery: save the run at its best val BLEU so far into `best/` (a run folder). */
  selectBest?: boolean;
  /** Written to `options.json` once the folder is ready, so a resume continues with them. */
  runOptions?: RunOptions;
  /** Aborting it stops the run at the next step boundary with a checkpoint. */
  signal?: AbortSignal;
}

export interface TrainResult {
  run: Run;
  state: TrainState;
  stopped: 'done' | 'interrupted' | 'paused';
  lastLoss: number;
  /** Whether the last step of the schedule runs hard N:M (false for dense runs). */
  endsHard: boolean;
  warnings: string[];
}

function encodePairs(tok: BpeTokenizer, pairs: Pair[], maxLen: number): Example[] {
  const out: Example[] = [];
  for (const p of pairs) {
    const src = tok.encode(p.en);
    const tgt = tok.encode(p.de);
    if (src.length <= maxLen && tgt.length + 1 <= maxLen) out.push({ src, tgt });
  }
  return out;
}

/** Joint BPE over both sides of the training split. */
export function trainTokenizer(splits: Splits, merges: number, log: (line: string) => void): BpeTokenizer {
  const t0 = performance.now();
  const tok = BpeTokenizer.train(splits.train.flatMap((p) => [p.en, p.de]), merges);
  log(`BPE: ${merges} merges → vocabulary ${tok.size} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return tok;
}

/** Steps that cover `epochs` passes over the training split with this tokenizer and batch size. */
export function stepsForEpochs(splits: Splits, tok: BpeTokenizer, maxLen: number, batchTokens: number, epochs: number): number {
  const batches = makeBatches(encodePairs(tok, splits.train, maxLen), batchTokens, null).length;
  return Math.max(1, Math.ceil(epochs * batches));
}

/**
 * The shuffle seed of an epoch. Kept as seed·1000 + epoch (so existing runs resume unchanged),
 * reduced to the generator's 32 bits explicitly rather than by the generator's own coercion.
 */
function batchOrderSeed(seed: number, epoch: number): number {
  return (Math.imul(seed, 1000) + epoch) >>> 0;
}

/**
 * Trains (or resumes) a translation run with the library's `fit`: the data, the tokenizer, the
 * label-smoothed loss and val BLEU are this example's; steps, checkpoints, resume, kept and best
 * checkpoints and the stop at a step boundary are nmgrad's.
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { out, log, config } = opts;
  let run: Run;
  if (opts.resume) {
    const stored = readRunConfig<RunConfig>(out);
    const at = checkpointStep(out);
    if (at !== null && config.steps < at) throw new DataError(out, `--steps ${config.steps} is below the checkpoint's step ${at}; a run can only be extended`);
    const differences = configDifferences(stored, config);
    if (differences.length) throw new DataError(out, `cannot resume with a different config (${differences.join('; ')}); only the step count may change`);
    const tokenizer = readTokenizer(join(out, TOKENIZER_FILE));
    run = buildTranslationRun(config, tokenizer);
  } else {
    const tokenizer = opts.tokenizer ?? trainTokenizer(opts.splits, config.merges, log);
    run = buildTranslationRun(config, tokenizer);
  }
  const { model, tokenizer } = run;
  const examples = encodePairs(tokenizer, opts.splits.train, config.maxLen);
  if (examples.length === 0) throw new DataError(opts.splits.name, 'no training pairs left after length filtering');
  // Built before fit creates the folder, so a bad batch budget leaves nothing behind.
  const firstEpoch = makeBatches(examples, config.batchTokens, new Rng(batchOrderSeed(config.seed, 0)));
  const batches = (epoch: number): Batch[] => (epoch === 0 ? firstEpoch : makeBatches(examples, config.batchTokens, new Rng(batchOrderSeed(config.seed, epoch))));
  const val = opts.splits.val.slice(0, opts.evalSentences ?? 200);
  const r = await fit<Batch>({
    model, optimizer: run.optimizer, steps: config.steps, recipe: run.recipe, dir: out, config, files: { [TOKENIZER_FILE]: JSON.stringify(tokenizer.toJSON()) },
    resume: opts.resume, overwrite: opts.overwrite, keep: opts.keep, stopAfter: opts.stopAfter, signal: opts.signal,
    batches, lr: inverseSqrtLr(config.lr, config.warmup), clipNorm: 1, itemsOf: (b) => b.tokens, itemsName: 'tokens',
    loss: (b) => labelSmoothedLoss(model.forward(b.src, b.srcShape, b.tgtIn, b.tgtShape, 0), b.tgtOut, 0, config.labelSmoothing),
    evaluate: opts.evalEvery ? {
      every: opts.evalEvery,
      run: () => {
        const s = score(translateAll(model, tokenizer, val.map((p) => p.en)), val.map((p) => p.de));
        return { valBleu: s.bleu, valChrf: s.chrf };
      },
      select: opts.selectBest ? { metric: 'valBleu', mode: 'max' } : undefined,
    } : undefined,
    onEvent: (e) => {
      if (e.type === 'cleaned') for (const p of e.paths) log(`removed ${p}, left by an interrupted checkpoint write`);
      else if (e.type === 'start' && e.resumed) {
        log(`resuming ${out} at step ${e.step}`);
        const stored = readRunConfig<RunConfig>(out);
        if (config.steps !== stored.steps) log(`extending the run from ${stored.steps} to ${config.steps} steps (config.json is updated at the next checkpoint); recipe for ${config.steps} steps: ${run.recipe.describe()}`);
        if (opts.runOptions) saveRunOptions(out, opts.runOptions);
      } else if (e.type === 'start' && opts.runOptions) saveRunOptions(out, opts.runOptions);
      else if (e.type === 'progress') {
        log(opts.json ? JSON.stringify(e.record) : `step ${e.step}/${e.steps}  loss ${e.loss.toFixed(3)}  ${e.itemsPerSec.toFixed(0)} tok/s  ETA ${e.etaSec.toFixed(0)} s  phase ${e.phase}  α ${e.alpha.toFixed(3)}  N:M ${e.nm}`);
      } else if (e.type === 'eval') {
        const bleu = e.values.valBleu!;
        log(opts.json ? JSON.stringify({ step: e.step, valBleu: bleu, ...(e.best ? { best: true } : {}) }) : `  val BLEU ${bleu.toFixed(2)} (first ${val.length} sentences, greedy)${e.best ? ', best so far: saved in best/' : ''}`);
      } else if (e.type === 'stop' && e.reason === 'interrupted') log(`interrupted: checkpoint saved at step ${e.step} in ${out}; continue with --resume ${out}`);
      else if (e.type === 'warning') log(opts.json ? JSON.stringify({ warning: e.message }) : `warning: ${e.message}`);
    },
  });
  return { run, state: r.state, stopped: r.stopped, lastLoss: r.lastLoss, endsHard: r.endsHard, warnings: r.warnings };
}

export interface Evaluation {
  scores: Scores;
  flops: FlopReport;
  samples: { src: string; ref: string; hyp: string }[];
  keptParams: number;
  totalParams: number;
}

/** Translates the held-out split, scores it, and reports training + inference FLOPs. */
export function evaluateRun(run: Run, state: TrainState, pairs: Pair[], opts: { beam?: number; lengthPenalty?: number } = {}): Evaluation {
  const { model, tokenizer } = run;
  if (pairs.length === 0) throw new DataError('evaluateRun', 'no sentence pairs to score (the held-out split is empty)');
  const inference = new FlopCounter();
  const hyps = countFlops(inference, () => translateAll(model, tokenizer, pairs.map((p) => p.en), { beam: opts.beam, lengthPenalty: opts.lengthPenalty }));
  const generated = hyps.reduce((n, h) => n + tokenizer.encode(h).length + 1, 0);
  const counter = new FlopCounter();
  counter.addJSON(state.flops);
  const flops = flopReport(counter, { counter: inference, tokens: generated });
  const scores = score(hyps, pairs.map((p) => p.de));
  let kept = 0;
  let total = 0;
  noGrad(() => {
    const sparseParams = new Set(run.sparse.map((l) => l.weight));
    for (const p of model.parameters()) {
      total += p.size;
      if (!sparseParams.has(p)) kept += p.size;
    }
    for (const l of run.sparse) kept += l.effectiveWeight().data.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);
  });
  return { scores, flops, samples: pairs.slice(0, 5).map((p, i) => ({ src: p.en, ref: p.de, hyp: hyps[i]! })), keptParams: kept, totalParams: total };
}

export function formatEvaluation(e: Evaluation, split: string): string {
  const lines = [
    `${split} BLEU ${e.scores.bleu.toFixed(2)} (sacreBLEU 13a, cased)  lowercased ${e.scores.bleuLowercase.toFixed(2)}  chrF2 ${e.scores.chrf.toFixed(2)}`,
    formatFlopReport(e.flops),
    `parameters: ${e.totalParams} (${e.keptParams} non-zero after sparsity)`,
    'samples:',
    ...e.samples.flatMap((s) => [`  EN  ${s.src}`, `  REF ${s.ref}`, `  OUT ${s.hyp}`]),
  ];
  return lines.join('\n');
}

