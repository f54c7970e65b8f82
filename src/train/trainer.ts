/**
 * `fit`: the training loop of nmgrad. A model, a loss over a user batch, an optimizer, a
 * learning-rate schedule and (optionally) a run folder: it drives the sparse recipe
 * (`model.setStep`), clips, steps, counts FLOPs, reports progress as events, checkpoints
 * atomically, keeps the last K checkpoints, keeps the best by a user metric, resumes
 * bit-identically and stops cleanly at a step boundary when its signal is aborted.
 */
import { existsSync, mkdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, ValueError } from '../errors.js';
import { FlopCounter, countFlops } from '../autograd/flops.js';
import type { Tensor } from '../autograd/tensor.js';
import { readCheckpoint, readSafetensorsMetadata, saveCheckpoint, writeFileAtomic } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { clipGradNorm, type LrSchedule, type Optimizer } from '../nn/optim.js';
import { sparseLayers } from '../nn/sparse-linear.js';
import { isHardNM, type Recipe, type RecipeStep } from '../sparse/recipe.js';
import {
  BEST_DIR, CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, SNAPSHOT_DIR, appendMetrics, checkFreshRunDir, cleanRunFolder, cutMetricsBack,
  dropSnapshotsAfter, ensureFolder, existingRunFiles, lockRunFolder, pruneSnapshots, readMetrics,
} from './run-folder.js';

/** What a checkpoint carries besides the model and optimizer (whose state travels on its own). */
export interface TrainState {
  step: number;
  epoch: number;
  batchInEpoch: number;
  /** The FLOP counter of the steps so far (FlopCounter.toJSON()), or null. */
  flops: ReturnType<FlopCounter['toJSON']> | null;
  /** Training time so far, each step counted once across resumes. */
  elapsedMs: number;
}

/**
 * What `fit` reports through `onEvent`: the start, progress lines (loss, lr, throughput, recipe phase), evaluations, checkpoints written, files cleaned up, warnings and the stop.
 */
export type TrainEvent =
  | { type: 'start'; step: number; steps: number; resumed: boolean; dir: string | null }
  | {
    type: 'progress'; step: number; steps: number; loss: number; lr: number; itemsPerSec: number; elapsedSec: number; etaSec: number;
    phase: RecipeStep['phase']; alpha: number; nm: string; record: Record<string, unknown>;
  }
  | { type: 'eval'; step: number; values: Record<string, number>; best: boolean }
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'cleaned'; paths: string[] }
  | { type: 'warning'; message: string }
  | { type: 'stop'; step: number; reason: FitResult['stopped'] };

/** Periodic evaluation inside `fit`, and optionally keeping the best checkpoint by one metric. */
export interface EvaluateOptions {
  /** Evaluate after every `every` steps (and at the last step when `select` is set). */
  every: number;
  /** Scores the model (in training mode afterwards, fit switches it back). */
  run: (model: Module, step: number) => Record<string, number>;
  /** Keep the checkpoint of the best `metric` in `<dir>/best/` (a run folder). */
  select?: { metric: string; mode?: 'max' | 'min' };
}

/**
 * What `fit` trains and how: the model, optimizer, loss of a batch `B`, the batches of each epoch
 * and the step count, plus the optional run folder, checkpointing, evaluation, resume and stop controls.
 */
export interface FitOptions<B> {
  model: Module;
  optimizer: Optimizer;
  /** The scalar loss of one batch; fit runs backward. */
  loss: (batch: B, step: number) => Tensor;
  /** The batches of an epoch, in order; the same epoch must give the same batches (seed by epoch), so resumes replay exactly. */
  batches: (epoch: number) => readonly B[];
  /** Total steps (a resumed run may be extended by raising it). */
  steps: number;
  /** Learning rate at the 1-based step number (default: the optimizer's lr, unchanged). */
  lr?: LrSchedule;
  /** Clip the global gradient norm to this value (default: no clipping). */
  clipNorm?: number;
  /** The recipe whose phase, α and N:M progress events report (default: the first sparse layer's). */
  recipe?: Recipe;
  /** Items a batch holds (tokens, examples) for the items/s figure (default 1). */
  itemsOf?: (batch: B) => number;
  /** Name of the items in metric records: `${itemsName}PerSec` (default 'items'). */
  itemsName?: string;
  /** The run folder; without it nothing is written. */
  dir?: string;
  /** JSON-serialisable config, written as config.json (at the start and at every checkpoint). */
  config?: unknown;
  /** Further files of the run (e.g. a tokenizer), written at the start and into best/. */
  files?: Record<string, string | Uint8Array>;
  /** Continue the run in `dir` from its checkpoint (the model and optimizer must be built as for the original run). */
  resume?: boolean;
  /** Start afresh in a `dir` that holds a run, deleting it (otherwise refused). */
  overwrite?: boolean;
  /** Checkpoint every N steps (default max(50, steps / 10)) and always at the last step. */
  checkpointEvery?: number;
  /** Keep the weights of the last K checkpoints in `checkpoints/` (for `averageRun`). */
  keep?: number;
  evaluate?: EvaluateOptions;
  /** Progress event and metric record every N steps (default 25) and at the last step. */
  progressEvery?: number;
  onEvent?: (e: TrainEvent) => void;
  /** Aborting it stops the run at the next step boundary with a checkpoint (see `stopOnSignals`). */
  signal?: AbortSignal;
  /** Return after this many steps in this call, with a checkpoint ('paused'). */
  stopAfter?: number;
  /** The FLOP counter to add to (default: a new one, restored from the checkpoint on resume). */
  counter?: FlopCounter;
}

/**
 * How a `fit` call ended: its training state, why it stopped, the last loss, the FLOP counter, the recipe's final step and warnings.
 */
export interface FitResult {
  state: TrainState;
  stopped: 'done' | 'interrupted' | 'paused';
  /** Loss of the last step run in this call (NaN if none). */
  lastLoss: number;
  counter: FlopCounter;
  /** The recipe's state at the run's last step, and whether it is a hard N:M step. */
  finalStep: RecipeStep | null;
  endsHard: boolean;
  /** Things the caller should report (an evaluation that never ran, a run that does not end hard …). */
  warnings: string[];
}

/** The process signals a run can stop on. */
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'SIGUSR1' | 'SIGUSR2';

/**
 * Stops a run cleanly on process signals: returns an AbortSignal that aborts on the first of
 * `signals`, and a `dispose` that removes the handlers (a second Ctrl-C then ends the process).
 */
export function stopOnSignals(signals: StopSignal[] = ['SIGINT', 'SIGTERM']): { signal: AbortSignal; dispose: () => void; received: () => StopSignal | null } {
  const ctl = new AbortController();
  let got: StopSignal | null = null;
  const handler = (s: StopSignal): void => {
    got = s;
    ctl.abort(s);
  };
  for (const s of signals) process.on(s, handler);
  return { signal: ctl.signal, dispose: () => signals.forEach((s) => process.off(s, handler)), received: () => got };
}

function checkOptions<B>(o: FitOptions<B>): void {
  const int = (name: string, v: number | undefined, min: number): void => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new ValueError('fit', `${name} must be an integer ≥ ${min}, got ${v}`);
  };
  int('steps', o.steps, 1);
  int('checkpointEvery', o.checkpointEvery, 1);
  int('keep', o.keep, 0);
  int('progressEvery', o.progressEvery, 1);
  int('stopAfter', o.stopAfter, 1);
  int('evaluate.every', o.evaluate?.every, 1);
  if (o.clipNorm !== undefined && !(o.clipNorm > 0)) throw new ValueError('fit', `clipNorm must be > 0, got ${o.clipNorm}`);
  if ((o.resume || o.keep || o.evaluate?.select) && o.dir === undefined) throw new ValueError('fit', 'resume, keep and evaluate.select need a run folder (dir)');
  if (o.resume && o.overwrite) throw new ValueError('fit', 'overwrite starts a new run; it cannot be combined with resume');
}

function checkTrainState(v: unknown, where: string, steps: number): TrainState {
  const fail = (what: string): never => {
    throw new DataError(where, `metadata 'state' is not an nmgrad training state: ${what} (got ${JSON.stringify(v)?.slice(0, 120)})`);
  };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('expected an object');
  const s = v as Record<string, unknown>;
  for (const k of ['step', 'epoch', 'batchInEpoch'] as const) {
    if (!Number.isInteger(s[k]) || (s[k] as number) < 0) fail(`'${k}' must be an integer ≥ 0`);
  }
  if (typeof s.elapsedMs !== 'number' || !Number.isFinite(s.elapsedMs)) fail("'elapsedMs' must be a number");
  if (s.flops !== null && (typeof s.flops !== 'object' || !Array.isArray((s.flops as { records?: unknown }).records))) fail("'flops' must be null or a FLOP counter record");
  if ((s.step as number) > steps) {
    throw new DataError(where, `metadata 'state': 'step' ${String(s.step)} is beyond the run's ${steps} steps; a run can only be extended (give at least ${String(s.step)} steps)`);
  }
  return { step: s.step as number, epoch: s.epoch as number, batchInEpoch: s.batchInEpoch as number, flops: s.flops as TrainState['flops'], elapsedMs: s.elapsedMs as number };
}

/** Loads the checkpoint of the run in `dir` into `model` (and `optimizer`); returns its training state. */
export function loadTrainState(dir: string, model: Module, optimizer?: Optimizer, steps = Infinity): TrainState {
  const path = join(dir, CHECKPOINT_FILE);
  if (!existsSync(path)) throw new DataError(path, 'missing: the run has no checkpoint yet (it stopped before its first one); start it afresh');
  return checkTrainState(readCheckpoint(path, model, { optimizer }).state, path, steps);
}

/** The step of the run's checkpoint (read from its metadata, no model needed), or null without one. */
export function checkpointStep(dir: string): number | null {
  const path = join(dir, CHECKPOINT_FILE);
  if (!existsSync(path)) return null;
  const text = readSafetensorsMetadata(path).state;
  let state: unknown;
  try {
    state = text === undefined ? null : JSON.parse(text);
  } catch {
    state = null;
  }
  const step = (state as { step?: unknown } | null)?.step;
  if (!Number.isInteger(step)) throw new DataError(path, "holds no training state with a 'step'");
  return step as number;
}

const nmLabel = (st: RecipeStep): string => (st.structure === 'none' ? 'dense' : st.structure === 'unstructured' ? `${(st.sparsity * 100).toFixed(1)}%` : `${st.n}:${st.m}`);

/** Writes a loadable run folder: config, files and the checkpoint (last, so its presence means the rest is there). */
function writeRun<B>(dir: string, o: FitOptions<B>, state: TrainState): void {
  mkdirSync(dir, { recursive: true });
  if (o.config !== undefined) writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify(o.config, null, 2));
  for (const [name, body] of Object.entries(o.files ?? {})) writeFileAtomic(join(dir, name), body);
  saveCheckpoint(join(dir, CHECKPOINT_FILE), o.model, { optimizer: o.optimizer, state });
}

/** Trains `opts.model` for `opts.steps` steps (see FitOptions); resolves when done, paused or stopped. */
export async function fit<B>(opts: FitOptions<B>): Promise<FitResult> {
  checkOptions(opts);
  const { model, optimizer, dir } = opts;
  const emit = opts.onEvent ?? ((): void => {});
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    emit({ type: 'warning', message });
  };
  const counter = opts.counter ?? new FlopCounter();
  let state: TrainState = { step: 0, epoch: 0, batchInEpoch: 0, flops: null, elapsedMs: 0 };
  let release = (): void => {};
  let createdDir = false;
  let checkpointed = false;
  if (dir !== undefined) {
    if (opts.resume) {
      if (!existsSync(join(dir, CONFIG_FILE)) && !existsSync(join(dir, CHECKPOINT_FILE))) throw new DataError(dir, 'holds no run to resume (no config.json or checkpoint.safetensors)');
      release = lockRunFolder(dir);
    } else {
      createdDir = !existsSync(dir);
      ensureFolder(dir);
      checkFreshRunDir(dir, opts.overwrite);
      release = lockRunFolder(dir);
      for (const f of existingRunFiles(dir)) rmSync(join(dir, f), { force: true, recursive: true });
    }
    const cleaned = cleanRunFolder(dir);
    if (cleaned.length) emit({ type: 'cleaned', paths: cleaned });
  }
  try {
    if (dir !== undefined && opts.resume) {
      state = loadTrainState(dir, model, optimizer, opts.steps);
      checkpointed = true;
      counter.addJSON(state.flops);
      cutMetricsBack(dir, state.step);
      dropSnapshotsAfter(dir, state.step);
    } else if (dir !== undefined) {
      if (opts.config !== undefined) writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify(opts.config, null, 2));
      for (const [name, body] of Object.entries(opts.files ?? {})) writeFileAtomic(join(dir, name), body);
      writeFileAtomic(join(dir, METRICS_FILE), '');
    }
    return await loop(opts, state, counter, emit, warn, warnings, () => {
      checkpointed = true;
    });
  } catch (e) {
    // A fresh run that fails before its first checkpoint leaves nothing that would block a rerun.
    if (dir !== undefined && !opts.resume && !checkpointed) {
      for (const f of existingRunFiles(dir)) rmSync(join(dir, f), { force: true, recursive: true });
      release();
      if (createdDir) {
        try {
          rmdirSync(dir);
        } catch {
          // not empty: something else is there
        }
      }
    }
    throw e;
  } finally {
    release();
  }
}

async function loop<B>(o: FitOptions<B>, state: TrainState, counter: FlopCounter, emit: (e: TrainEvent) => void, warn: (m: string) => void, warnings: string[], onCheckpoint: () => void): Promise<FitResult> {
  const { model, optimizer, dir, steps } = o;
  const recipe = o.recipe ?? sparseLayers(model)[0]?.[1].recipe ?? null;
  const ckptEvery = o.checkpointEvery ?? Math.max(50, Math.floor(steps / 10));
  const progressEvery = o.progressEvery ?? 25;
  const ev = o.evaluate;
  const select = ev?.select;
  const better = (a: number, b: number): boolean => (select?.mode === 'min' ? a < b : a > b);
  let best = select ? bestRecorded(dir!, select.metric, select.mode ?? 'max') : NaN;
  if (ev && ev.every > steps) warn(`evaluate.every (${ev.every}) is more than the run's ${steps} steps: ${select ? `no evaluation will run before the last step, so best/ holds the last step's checkpoint` : 'no evaluation will run'}`);
  emit({ type: 'start', step: state.step, steps, resumed: o.resume === true, dir: dir ?? null });
  let lastLoss = NaN;
  let stopped: FitResult['stopped'] = 'done';
  const started = performance.now() - state.elapsedMs;
  let items = 0;
  let windowStart = performance.now();
  let epochBatches = o.batches(state.epoch);
  if (epochBatches.length === 0) throw new DataError('fit', `epoch ${state.epoch} has no batches`);
  let ranHere = 0;
  model.train();
  const save = (): void => {
    state.elapsedMs = performance.now() - started;
    state.flops = counter.toJSON();
    if (dir === undefined) return;
    writeRun(dir, o, { ...state });
    onCheckpoint();
    emit({ type: 'checkpoint', step: state.step, path: join(dir, CHECKPOINT_FILE) });
    if (o.keep) {
      mkdirSync(join(dir, SNAPSHOT_DIR), { recursive: true });
      saveCheckpoint(join(dir, SNAPSHOT_DIR, `step-${state.step}.safetensors`), model);
      pruneSnapshots(dir, o.keep);
    }
  };
  while (state.step < steps) {
    await new Promise<void>((resume) => setImmediate(resume));
    if (state.batchInEpoch >= epochBatches.length) {
      state.epoch++;
      state.batchInEpoch = 0;
      epochBatches = o.batches(state.epoch);
      if (epochBatches.length === 0) throw new DataError('fit', `epoch ${state.epoch} has no batches`);
    }
    const batch = epochBatches[state.batchInEpoch]!;
    const step = state.step;
    model.setStep(step);
    if (o.lr) optimizer.lr = o.lr(step + 1);
    optimizer.zeroGrad();
    const loss = countFlops(counter, () => {
      const l = o.loss(batch, step);
      l.backward();
      return l.item();
    });
    if (!Number.isFinite(loss)) {
      const saved = dir !== undefined && existsSync(join(dir, CHECKPOINT_FILE)) ? checkpointStep(dir) : null;
      const where = dir === undefined ? '' : saved !== null ? `. The last good checkpoint in ${dir} is intact (step ${saved}); resume from it with a lower learning rate` : ' before its first checkpoint, so nothing of the run is kept';
      throw new DataError(`step ${step}`, `loss became ${loss}; training stopped${where}`);
    }
    if (o.clipNorm !== undefined) clipGradNorm(optimizer.params, o.clipNorm);
    optimizer.step();
    counter.steps++;
    lastLoss = loss;
    items += o.itemsOf ? o.itemsOf(batch) : 1;
    state.step++;
    state.batchInEpoch++;
    ranHere++;
    const st = recipe?.at(step) ?? null;
    if (state.step % progressEvery === 0 || state.step === steps) {
      const now = performance.now();
      const perSec = (items / (now - windowStart)) * 1000;
      const elapsed = (now - started) / 1000;
      const eta = (elapsed / state.step) * (steps - state.step);
      const phase = st?.phase ?? 'dense';
      const alpha = st?.alpha ?? 1;
      const record = { step: state.step, loss, lr: optimizer.lr, [`${o.itemsName ?? 'items'}PerSec`]: perSec, phase, alpha, nm: st ? `${st.n}:${st.m}` : '1:1', elapsed };
      if (dir !== undefined) appendMetrics(dir, record);
      emit({ type: 'progress', step: state.step, steps, loss, lr: optimizer.lr, itemsPerSec: perSec, elapsedSec: elapsed, etaSec: eta, phase, alpha, nm: st ? nmLabel(st) : 'dense', record });
      items = 0;
      windowStart = now;
    }
    if (ev && state.step % ev.every === 0 && (state.step < steps || select)) {
      const values = ev.run(model, state.step);
      model.train();
      const v = select ? values[select.metric] : undefined;
      if (select && !(typeof v === 'number' && Number.isFinite(v))) throw new ValueError('fit', `evaluate.run returned no finite number '${select.metric}' (got ${JSON.stringify(values)})`);
      const isBest = select !== undefined && typeof v === 'number' && (Number.isNaN(best) || better(v, best));
      if (isBest) {
        best = v!;
        state.elapsedMs = performance.now() - started;
        state.flops = counter.toJSON();
        writeRun(join(dir!, BEST_DIR), o, { ...state });
      }
      if (dir !== undefined) appendMetrics(dir, { step: state.step, ...values, ...(isBest ? { best: true } : {}) });
      emit({ type: 'eval', step: state.step, values, best: isBest });
    }
    const last = state.step === steps;
    const pause = o.stopAfter !== undefined && ranHere >= o.stopAfter;
    const interrupted = o.signal?.aborted === true;
    if (interrupted || last || state.step % ckptEvery === 0 || pause) {
      save();
      if (interrupted) {
        stopped = 'interrupted';
        break;
      }
      if (!last && pause) {
        stopped = 'paused';
        break;
      }
    }
  }
  emit({ type: 'stop', step: state.step, reason: stopped });
  const finalStep = recipe && steps > 0 ? recipe.at(steps - 1) : null;
  const endsHard = finalStep !== null && (isHardNM(finalStep) || finalStep.structure === 'unstructured');
  if (finalStep && recipe!.config.kind !== 'dense' && !endsHard) {
    warn(`the run's last step (${steps}) is not hard N:M (phase ${finalStep.phase}, α ${finalStep.alpha.toFixed(3)}, N:M ${nmLabel(finalStep)}): the final model still uses its pruned weights; give the recipe a fine-tune phase (finetune=…)`);
  }
  return { state, stopped, lastLoss, counter, finalStep, endsHard, warnings };
}

/** The best value of `metric` a resumed run has recorded as saved in best/ (NaN if none). */
function bestRecorded(dir: string, metric: string, mode: 'max' | 'min'): number {
  let best = NaN;
  for (const r of readMetrics(dir)) {
    const v = r[metric];
    if (r.best === true && typeof v === 'number' && (Number.isNaN(best) || (mode === 'min' ? v < best : v > best))) best = v;
  }
  return best;
}
