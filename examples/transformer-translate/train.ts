/** The training loop of the translation example: data → BPE → Transformer + recipe → checkpoints. */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DataError, FlopCounter, Rng, clipGradNorm, countFlops, flopReport, formatFlopReport, inverseSqrtLr, labelSmoothedLoss, noGrad,
  removeStaleTempFiles, writeFileAtomic, type FlopReport,
} from 'nmgrad';
import { BpeTokenizer } from 'nmgrad/text';
import { generateBuiltinCorpus, type Pair } from './data/builtin.js';
import { makeBatches, type Example } from './data/batches.js';
import { readParallel } from './data/parallel.js';
import { buildRun, captureState, loadRun, readRunConfig, saveRun, type Run, type RunConfig, type TrainState } from './model-io.js';
import { dropSnapshotsAfter, saveSnapshot } from './average.js';
import { saveRunOptions, type RunOptions } from './run-options.js';
import { configDifferences } from './resume.js';
import { prepareFreshRunDir } from './run-files.js';
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
}

export interface TrainResult {
  run: Run;
  state: TrainState;
  stopped: 'done' | 'interrupted' | 'paused';
  lastLoss: number;
}

let interrupted = false;
export function requestStop(): void {
  interrupted = true;
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
 * Trains (or resumes) a run; checkpoints every `ckptEvery` steps and at the end. Async only so
 * that it yields to the event loop between steps: a SIGINT handler (`requestStop`) can then run,
 * and the loop saves a checkpoint and returns 'interrupted' at the next step boundary.
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { out, log } = opts;
  let { config } = opts;
  for (const name of removeStaleTempFiles(out)) log(`removed ${name}, left by an interrupted checkpoint write`);
  let run: Run;
  let state: TrainState;
  if (opts.resume) {
    ({ run, state } = resumeRun(out, config, log));
    config = run.config;
    cutMetricsBack(join(out, 'metrics.jsonl'), state.step);
    dropSnapshotsAfter(out, state.step);
  } else {
    prepareFreshRunDir(out, opts.overwrite);
    const tok = opts.tokenizer ?? trainTokenizer(opts.splits, config.merges, log);
    run = buildRun(config, tok);
    state = captureState(run, { step: 0, epoch: 0, batchInEpoch: 0, flops: null, elapsedMs: 0 });
    writeFileSync(join(out, 'metrics.jsonl'), '');
  }
  if (opts.runOptions) saveRunOptions(out, opts.runOptions);
  const { model, optimizer, tokenizer } = run;
  const examples = encodePairs(tokenizer, opts.splits.train, config.maxLen);
  if (examples.length === 0) throw new DataError(opts.splits.name, 'no training pairs left after length filtering');
  const schedule = inverseSqrtLr(config.lr, config.warmup);
  const counter = new FlopCounter();
  if (state.flops) restoreCounter(counter, state.flops);
  const metricsPath = join(out, 'metrics.jsonl');
  const ckptEvery = Math.max(50, Math.floor(config.steps / 10));
  let lastLoss = NaN;
  let stopped: TrainResult['stopped'] = 'done';
  const started = performance.now() - state.elapsedMs;
  let tokensSeen = 0;
  let windowStart = performance.now();
  let epochBatches = makeBatches(examples, config.batchTokens, new Rng(batchOrderSeed(config.seed, state.epoch)));
  const stepsThisProcess = { n: 0 };
  let bestBleu = opts.selectBest ? bestValBleu(metricsPath) : -Infinity;
  model.train();
  while (state.step < config.steps) {
    await new Promise<void>((resume) => setImmediate(resume));
    if (state.batchInEpoch >= epochBatches.length) {
      state.epoch++;
      state.batchInEpoch = 0;
      epochBatches = makeBatches(examples, config.batchTokens, new Rng(batchOrderSeed(config.seed, state.epoch)));
    }
    const batch = epochBatches[state.batchInEpoch]!;
    const step = state.step;
    model.setStep(step);
    optimizer.lr = schedule(step + 1);
    optimizer.zeroGrad();
    const loss = countFlops(counter, () => {
      const logits = model.forward(batch.src, batch.srcShape, batch.tgtIn, batch.tgtShape, 0);
      const l = labelSmoothedLoss(logits, batch.tgtOut, 0, config.labelSmoothing);
      l.backward();
      return l.item();
    });
    if (!Number.isFinite(loss)) {
      throw new DataError(`step ${step}`, `loss became ${loss}; training stopped. The last good checkpoint in ${out} is intact (step ${readStep(out)})`);
    }
    clipGradNorm(optimizer.params, 1);
    optimizer.step();
    counter.steps++;
    lastLoss = loss;
    tokensSeen += batch.tokens;
    state.step++;
    state.batchInEpoch++;
    stepsThisProcess.n++;
    const st = run.recipe.at(step);
    if (state.step % 25 === 0 || state.step === config.steps) {
      const now = performance.now();
      const tps = (tokensSeen / (now - windowStart)) * 1000;
      const elapsed = (now - started) / 1000;
      const eta = (elapsed / state.step) * (config.steps - state.step);
      const rec = { step: state.step, loss, lr: optimizer.lr, tokensPerSec: tps, phase: st.phase, alpha: st.alpha, nm: `${st.n}:${st.m}`, elapsed };
      appendFileSync(metricsPath, `${JSON.stringify(rec)}\n`);
      const line = `step ${state.step}/${config.steps}  loss ${loss.toFixed(3)}  ${tps.toFixed(0)} tok/s  ETA ${eta.toFixed(0)} s  phase ${st.phase}  α ${st.alpha.toFixed(3)}  N:M ${st.structure === 'none' ? 'dense' : st.structure === 'unstructured' ? `${(st.sparsity * 100).toFixed(1)}%` : `${st.n}:${st.m}`}`;
      log(opts.json ? JSON.stringify(rec) : line);
      tokensSeen = 0;
      windowStart = now;
    }
    if (opts.evalEvery && state.step % opts.evalEvery === 0 && (state.step < config.steps || opts.selectBest)) {
      const val = opts.splits.val.slice(0, opts.evalSentences ?? 200);
      const s = score(translateAll(model, tokenizer, val.map((p) => p.en)), val.map((p) => p.de));
      model.train();
      const best = opts.selectBest === true && s.bleu > bestBleu;
      if (best) {
        bestBleu = s.bleu;
        state.elapsedMs = performance.now() - started;
        state.flops = counter.toJSON();
        saveRun(join(out, 'best'), run, captureState(run, state));
      }
      appendFileSync(metricsPath, `${JSON.stringify({ step: state.step, valBleu: s.bleu, valChrf: s.chrf, ...(best ? { best: true } : {}) })}\n`);
      log(opts.json ? JSON.stringify({ step: state.step, valBleu: s.bleu, ...(best ? { best: true } : {}) }) : `  val BLEU ${s.bleu.toFixed(2)} (first ${val.length} sentences, greedy)${best ? ', best so far: saved in best/' : ''}`);
    }
    const last = state.step === config.steps;
    if (interrupted || last || state.step % ckptEvery === 0 || (opts.stopAfter !== undefined && stepsThisProcess.n >= opts.stopAfter)) {
      state.elapsedMs = performance.now() - started;
      state.flops = counter.toJSON();
      saveRun(out, run, captureState(run, state));
      if (opts.keep) saveSnapshot(out, run, state.step, opts.keep);
      if (interrupted) {
        stopped = 'interrupted';
        log(`interrupted: checkpoint saved at step ${state.step} in ${out}; continue with --resume ${out}`);
        break;
      }
      if (!last && opts.stopAfter !== undefined && stepsThisProcess.n >= opts.stopAfter) {
        stopped = 'paused';
        break;
      }
    }
  }
  return { run, state, stopped, lastLoss };
}

/**
 * Loads a run to continue it with `config`. Only the step count may differ from the stored
 * config (extending a run, announced); any other difference would be silently ignored, so it
 * is an error listing the fields.
 */
function resumeRun(out: string, config: RunConfig, log: (line: string) => void): { run: Run; state: TrainState } {
  const stored = readRunConfig(out);
  const differences = configDifferences(stored, config);
  if (differences.length) throw new DataError(out, `cannot resume with a different config (${differences.join('; ')}); only the step count may change`);
  const loaded = loadRun(out, { steps: config.steps });
  const { state } = loaded;
  if (config.steps < state.step) throw new DataError(out, `--steps ${config.steps} is below the checkpoint's step ${state.step}; a run can only be extended`);
  log(`resuming ${out} at step ${state.step}`);
  if (config.steps !== stored.steps) {
    log(`extending the run from ${stored.steps} to ${config.steps} steps (config.json is updated at the next checkpoint); recipe for ${config.steps} steps: ${loaded.run.recipe.describe()}`);
  }
  return loaded;
}

/**
 * The shuffle seed of an epoch. Kept as seed·1000 + epoch (so existing runs resume unchanged),
 * reduced to the generator's 32 bits explicitly rather than by the generator's own coercion.
 */
function batchOrderSeed(seed: number, epoch: number): number {
  return (Math.imul(seed, 1000) + epoch) >>> 0;
}

/**
 * A run killed after its last checkpoint has logged steps that the resumed run repeats; drops
 * every record past the checkpoint's step (and a half-written last line) so each step appears once.
 */
function cutMetricsBack(path: string, step: number): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
  const kept = lines.filter((l) => {
    try {
      const r = JSON.parse(l) as { step?: unknown };
      return typeof r.step === 'number' && r.step <= step;
    } catch {
      return false;
    }
  });
  if (kept.length !== lines.length) writeFileAtomic(path, kept.map((l) => `${l}\n`).join(''));
}

/** The best val BLEU a resumed run has recorded as saved in best/ (-Infinity if none). */
function bestValBleu(path: string): number {
  if (!existsSync(path)) return -Infinity;
  let best = -Infinity;
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    try {
      const r = JSON.parse(l) as { valBleu?: unknown; best?: unknown };
      if (r.best === true && typeof r.valBleu === 'number') best = Math.max(best, r.valBleu);
    } catch {
      // a half-written line
    }
  }
  return best;
}

function readStep(out: string): string {
  try {
    return String(loadRun(out).state.step);
  } catch {
    return 'none';
  }
}

function restoreCounter(counter: FlopCounter, saved: unknown): void {
  const s = saved as ReturnType<FlopCounter['toJSON']>;
  counter.steps = s.steps;
  for (const r of s.records) counter.add(r.pass, r.category, r.layer, r.flops, r.dense);
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
  if (state.flops) restoreCounter(counter, state.flops);
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

