#!/usr/bin/env node
/**
 * npm run translate -- <command> [flags]
 *   train (default), translate, evaluate, compare, export, download. `--help` alone lists the
 *   commands; `--help` after one lists its flags.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  DataError, NmgradError, Recipe, averageRun, checkFreshRunDir, checkpointStep, defaultBackendName, describeBackend, exportTranslationRun, getThreads, listBackends,
  listSnapshots, loadTranslationRun, loadTranslator, readRunConfig, setBackend, setThreads, stopOnSignals, watchdogMs, writeFileAtomic,
} from 'nmgrad';
import { corpusBleu, corpusChrf, type BpeTokenizer } from 'nmgrad/text';
import { defaultDataDir, downloadFiles } from './data/parallel.js';
import type { RunConfig } from './model-io.js';
import { loadRunOptions, mergeRunOptions, type RunOptions } from './run-options.js';
import { PRESETS, evaluateRun, formatEvaluation, loadSplits, stepsForEpochs, train, trainTokenizer, type PresetName, type Splits } from './train.js';
import { translateAll } from './translate.js';
import { COMPARE_FLAGS, compareCommand } from './study/command.js';
import { runDirName } from './study/grid.js';
import { nearest, overview } from './help.js';
import { UsageError, checkFlagValues, checkModelShape } from './flags.js';
import { decodeLines, normalizeSource, readTextLines } from './data/lines.js';
import { resumeFlagConflicts } from './resume.js';
import { translateStream } from './stream.js';

/** Longest training sentence (BPE tokens, either side); longer pairs are filtered and counted. */
const MAX_LEN = 100;

interface FlagSpec {
  [flag: string]: { arg: string; help: string };
}

const COMMON: FlagSpec = {
  threads: { arg: 'N', help: 'worker threads for kernels (default: all cores; env NMGRAD_THREADS)' },
  backend: { arg: 'NAME', help: `compute backend: ${listBackends().join(', ')} (default ${defaultBackendName()}, the fastest this runtime validates; env NMGRAD_BACKEND)` },
  json: { arg: '', help: 'JSON-lines output (automatic when stdout is not a TTY)' },
  quiet: { arg: '', help: 'only the final summary' },
};

const TRAIN_FLAGS: FlagSpec = {
  data: { arg: 'DIR|builtin', help: "parallel text folder ({train,val,test}.{src,tgt}), 'multi30k' (= ../shared/data/multi30k) or 'builtin' (default)" },
  src: { arg: 'LANG', help: 'source suffix (default en)' },
  tgt: { arg: 'LANG', help: 'target suffix (default de)' },
  preset: { arg: 'tiny|small|base', help: 'model and schedule preset (default tiny; base: Multi30k, ~1 h 50 min on 2 cores, 37.7 val BLEU dense)' },
  layers: { arg: 'N', help: 'encoder and decoder layers' },
  'd-model': { arg: 'N', help: 'model width' },
  heads: { arg: 'N', help: 'attention heads' },
  ffn: { arg: 'N', help: 'feed-forward width' },
  merges: { arg: 'N', help: 'BPE merges (joint vocabulary)' },
  recipe: { arg: 'STR', help: "sparsity recipe, e.g. 'ssd:1:8' (N:M = N kept of every M; default pmd:1:8). pmd, ssd and gradual run 10% of the steps dense, then decay, then 30% hard N:M fine-tune unless dense=… / finetune=… say otherwise (finetune=0: none); the other recipes are hard from step 0 (docs/recipes.md)" },
  sparsify: { arg: 'ffn|attention|all', help: 'which Linear layers the recipe applies to (default ffn)' },
  steps: { arg: 'N', help: 'training steps' },
  epochs: { arg: 'X', help: 'train for X passes over the training split instead of --steps (fractions allowed)' },
  dropout: { arg: 'P', help: 'dropout probability (default from the preset)' },
  'batch-tokens': { arg: 'N', help: 'padded tokens per batch' },
  lr: { arg: 'X', help: 'peak learning rate' },
  warmup: { arg: 'N', help: 'warm-up steps (then inverse square root decay)' },
  seed: { arg: 'N', help: 'random seed (default 1)' },
  out: { arg: 'DIR', help: 'run directory (default runs/<recipe>)' },
  resume: { arg: 'DIR', help: 'continue the run in DIR (with the --eval-every/--keep/--average/--select/--beam options it was started with, unless given again)' },
  'eval-every': { arg: 'N', help: 'val BLEU every N steps' },
  beam: { arg: 'K', help: 'beam size for the final evaluation (default greedy)' },
};

/** Flags of `train` alone: which checkpoint the final evaluation scores, and how. */
const FINAL_FLAGS: FlagSpec = {
  beam: { arg: 'K', help: 'beam size for the final evaluation (default 4; 1 = greedy)' },
  'length-penalty': { arg: 'X', help: 'length penalty exponent of the final beam search (default 1)' },
  keep: { arg: 'K', help: 'keep the weights of the last K checkpoints in <out>/checkpoints/' },
  average: { arg: 'K', help: 'evaluate the mean of the last K checkpoints (written to <out>/averaged/; implies --keep K)' },
  select: { arg: 'last|best', help: "'best': with --eval-every, keep the checkpoint of best greedy val BLEU in <out>/best/ and evaluate it (default last)" },
};

const HELP: Record<string, [string, FlagSpec]> = {
  train: ['Train an encoder-decoder Transformer with an N:M recipe, then report test BLEU and FLOPs.', { ...TRAIN_FLAGS, ...FINAL_FLAGS, overwrite: { arg: '', help: 'start afresh in an --out folder that already holds a run (deletes that run)' } }],
  translate: ['Translate stdin or --input FILE with a trained run or an exported model.', { run: { arg: 'DIR|FILE', help: 'run directory, or a model written by export' }, input: { arg: 'FILE', help: 'input text (default stdin)' }, beam: { arg: 'K', help: 'beam size (default 1 = greedy)' }, 'length-penalty': { arg: 'X', help: 'beam length penalty exponent (default 1)' } }],
  evaluate: ['BLEU / chrF of a run (or exported model) on --src/--ref files, or of --hyp against --ref.', { run: { arg: 'DIR|FILE', help: 'run directory, or a model written by export' }, src: { arg: 'FILE', help: 'source sentences' }, ref: { arg: 'FILE', help: 'reference translations' }, hyp: { arg: 'FILE', help: 'score this hypothesis file instead of translating' }, beam: { arg: 'K', help: 'beam size' }, lowercase: { arg: '', help: 'lowercased BLEU' } }],
  compare: ['Train a study grid (recipes × N:M × seeds) on the same data, model and steps, one run folder per cell; run one shard of it, list it, or merge finished runs into results.{json,md,svg}.', { ...TRAIN_FLAGS, ...COMPARE_FLAGS }],
  average: ['Average the weights of the last K kept checkpoints of a run (train --keep K) into a run folder.', { run: { arg: 'DIR', help: 'run directory' }, last: { arg: 'K', help: 'checkpoints to average (default: all kept)' }, out: { arg: 'DIR', help: 'output run folder (default <run>/averaged; never the run itself)' }, overwrite: { arg: '', help: 'replace a run already in --out' } }],
  export: ['Write a run as a compressed inference model: hard N:M layers as values + offsets, no optimizer state.', { run: { arg: 'DIR', help: 'run directory' }, out: { arg: 'FILE', help: 'output .safetensors file (never one of the run\'s own files)' }, overwrite: { arg: '', help: 'replace an existing --out file' } }],
  download: ['Fetch and verify the Multi30k Task 1 raw files into DIR.', { dir: { arg: 'DIR', help: 'target folder' } }],
};

function usage(cmd: string): string {
  const [what, flags] = HELP[cmd]!;
  const all = { ...flags, ...COMMON };
  const rows = Object.entries(all).map(([f, s]) => `  --${f}${s.arg ? ` ${s.arg}` : ''}`.padEnd(34) + s.help);
  return `usage: npm run translate -- ${cmd} [flags]\n${what}\n\n${rows.join('\n')}`;
}

function parse(cmd: string, argv: string[]): Record<string, string | true> {
  const [, flags] = HELP[cmd]!;
  const all = { ...flags, ...COMMON };
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(usage(cmd));
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}' (see: npm run translate -- ${cmd} --help)`);
    const name = a.slice(2);
    // Own properties only: '--constructor' or '--__proto__' must be unknown flags, not Object's members.
    const spec = Object.hasOwn(all, name) ? all[name] : undefined;
    if (!spec) throw new UsageError(`unknown flag --${name} for '${cmd}' (see: npm run translate -- ${cmd} --help)`);
    if (spec.arg === '') out[name] = true;
    else if (spec.arg.endsWith('...')) {
      // A list flag takes every following argument up to the next flag (paths never hold '\n').
      const vals: string[] = [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) vals.push(argv[++i]!);
      if (vals.length === 0) throw new UsageError(`--${name} needs at least one value (${spec.arg})`);
      out[name] = [...(typeof out[name] === 'string' ? [out[name]] : []), ...vals].join('\n');
    } else {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value (${spec.arg})`);
      out[name] = v;
    }
  }
  return out;
}

function num(f: Record<string, string | true>, k: string, dflt: number): number {
  const v = f[k];
  if (v === undefined) return dflt;
  const n = Number(v);
  // The ranges are checked by checkFlagValues; this only guards callers that skipped it.
  if (!Number.isFinite(n)) throw new UsageError(`--${k} must be a number, got '${String(v)}'`);
  return n;
}

function str(f: Record<string, string | true>, k: string, dflt: string): string {
  const v = f[k];
  return typeof v === 'string' ? v : dflt;
}

function preset(f: Record<string, string | true>): (typeof PRESETS)[PresetName] {
  const presetName = str(f, 'preset', 'tiny');
  if (!Object.hasOwn(PRESETS, presetName)) throw new UsageError(`--preset must be ${Object.keys(PRESETS).join(' or ')}, got '${presetName}'`);
  return PRESETS[presetName as PresetName];
}

/**
 * The step count of a run: --steps, or --epochs passes over the training split (which needs the
 * tokenizer, so it is trained here once and handed to `train`), or the preset's steps.
 */
function resolveSteps(f: Record<string, string | true>, splits: Splits, log: (s: string) => void): { steps: number; tokenizer?: BpeTokenizer } {
  const p = preset(f);
  if (f.epochs === undefined) {
    const steps = num(f, 'steps', p.steps);
    if (!Number.isInteger(steps)) throw new UsageError(`--steps must be a positive integer, got '${String(f.steps)}'`);
    return { steps };
  }
  if (f.steps !== undefined) throw new UsageError('give --steps or --epochs, not both');
  const epochs = num(f, 'epochs', 1);
  const tokenizer = trainTokenizer(splits, num(f, 'merges', p.merges), log);
  const batchTokens = num(f, 'batch-tokens', p.batchTokens);
  const steps = stepsForEpochs(splits, tokenizer, MAX_LEN, batchTokens, epochs);
  log(`${epochs} epoch(s) = ${steps} steps of ${batchTokens} padded tokens`);
  return { steps, tokenizer };
}

/**
 * `train` with Ctrl-C wired to a clean stop (checkpoint at the next step boundary). The handler
 * is removed afterwards: the checkpoint is on disk, so Ctrl-C during the synchronous evaluation
 * that follows ends the process at once.
 */
async function trainInterruptibly(opts: Parameters<typeof train>[0]): ReturnType<typeof train> {
  const stop = stopOnSignals(['SIGINT', 'SIGTERM']);
  try {
    return await train({ ...opts, signal: stop.signal });
  } finally {
    stop.dispose();
    if (stop.received() === 'SIGTERM') terminatedBy = 'SIGTERM';
  }
}

/** The signal that stopped training, for the exit code (130 for Ctrl-C, 143 for SIGTERM). */
let terminatedBy: 'SIGINT' | 'SIGTERM' = 'SIGINT';

function runConfig(f: Record<string, string | true>, recipe: string, steps: number, opts: { checkShape?: boolean } = {}): RunConfig {
  const p = preset(f);
  const data = str(f, 'data', 'builtin');
  const layers = num(f, 'layers', 0);
  const dropout = f.dropout === undefined ? p.dropout : Number(f.dropout);
  if (!(dropout >= 0 && dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got '${String(f.dropout)}'`);
  Recipe.parse(recipe, { steps }); // validate early, with the recipe's own message
  const sp = str(f, 'sparsify', 'ffn');
  if (!['ffn', 'attention', 'all'].includes(sp)) throw new UsageError(`--sparsify must be ffn, attention or all, got '${sp}'`);
  if (opts.checkShape !== false) checkModelShape(num(f, 'd-model', p.dModel), num(f, 'heads', p.heads));
  return {
    model: {
      srcVocab: 0, tgtVocab: 0, dModel: num(f, 'd-model', p.dModel), heads: num(f, 'heads', p.heads), ffn: num(f, 'ffn', p.ffn),
      encoderLayers: layers || p.encoderLayers, decoderLayers: layers || p.decoderLayers, dropout, maxLen: 128,
      shareEmbeddings: true, tieOutput: true, seed: num(f, 'seed', 1),
    },
    recipe, sparsify: sp as RunConfig['sparsify'], steps, batchTokens: num(f, 'batch-tokens', p.batchTokens), lr: num(f, 'lr', p.lr),
    warmup: num(f, 'warmup', p.warmup), seed: num(f, 'seed', 1), labelSmoothing: 0.1, maxLen: MAX_LEN, data, merges: num(f, 'merges', p.merges),
    // Recorded only when not the defaults, so configs (and study hashes) of en → de runs are unchanged.
    ...(str(f, 'src', 'en') !== 'en' ? { src: str(f, 'src', 'en') } : {}), ...(str(f, 'tgt', 'de') !== 'de' ? { tgt: str(f, 'tgt', 'de') } : {}),
  };
}

function resolveData(f: Record<string, string | true>): string {
  const d = str(f, 'data', 'builtin');
  if (d === 'builtin') return d;
  if (d === 'multi30k') {
    const shared = defaultDataDir();
    if (!shared) throw new UsageError('--data multi30k: ../shared/data/multi30k not found; pass --data DIR (see: npm run translate -- download --help)');
    return shared;
  }
  const dir = resolve(d);
  if (!existsSync(dir)) throw new UsageError(`--data ${d}: directory not found (use --data builtin, or see: npm run translate -- download --help)`);
  return dir;
}

/** Whether a log line is a JSON record (an object), which JSON-lines mode keeps on stdout. */
function isJsonRecord(s: string): boolean {
  if (!s.startsWith('{')) return false;
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * A failed write to stdout ends the process at once: a reader that went away (`| head -1`,
 * EPIPE) quietly with 0, as for any filter; anything else (a full disk, ENOSPC) with one line on
 * stderr and exit 1, since the output is lost. console.log would otherwise drop the error and
 * exit 0, and a stream write would end in a raw stack.
 */
function onStdoutError(e: NodeJS.ErrnoException): void {
  if (e.code === 'EPIPE') process.exit(0);
  const reason = e.code === 'ENOSPC' ? 'no space left on the device' : e.message;
  process.stderr.write(`translate: ${new DataError('stdout', `cannot write the output (${e.code ?? 'error'}: ${reason}); what was written is incomplete`).message}\n`);
  process.exit(1);
}

/** Resolves once everything written to stdout so far has gone out (or its error has ended the process). */
function stdoutDrained(): Promise<void> {
  return new Promise((done) => process.stdout.write('', () => done()));
}

async function main(): Promise<void> {
  process.stdout.on('error', onStdoutError);
  const argv = process.argv.slice(2);
  if (argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    const topic = argv[0] === 'help' ? argv[1] : undefined;
    if (topic !== undefined) checkCommand(topic);
    console.log(topic ? usage(topic) : overview(PROG, Object.fromEntries(Object.entries(HELP).map(([c, [what]]) => [c, what])), Object.keys(COMMON).map((k) => `--${k}`).join(', ')));
    return;
  }
  const cmd = argv[0] && !argv[0].startsWith('--') ? argv[0] : 'train';
  const rest = cmd === argv[0] ? argv.slice(1) : argv;
  checkCommand(cmd);
  const f = parse(cmd, rest);
  checkFlagValues(cmd, f);
  // The pool reads these when it first starts; a bad value is refused now, not hours into training.
  getThreads();
  watchdogMs();
  // A resumed run keeps its shape; conflicting flags are reported by checkResume instead.
  if (cmd === 'train' && !f.resume) checkModelShape(num(f, 'd-model', preset(f).dModel), num(f, 'heads', preset(f).heads));
  if (f.threads) setThreads(num(f, 'threads', 1));
  if (typeof f.backend === 'string') setBackend(f.backend);
  const json = f.json === true || !process.stdout.isTTY;
  const quiet = f.quiet === true;
  // In JSON-lines mode stdout carries JSON only: a human line (data:, recipe:, BPE:,
  // resuming …) becomes a {"log": …} record; the JSON records (training metrics) pass as they are.
  const log = (s: string): void => {
    if (quiet) return;
    console.log(json && !isJsonRecord(s) ? JSON.stringify({ log: s }) : s);
  };
  // Once per run, in human-readable mode only: translate's stdout is the translations alone,
  // and --json output (or a pipe) must stay parseable.
  if (!json && cmd !== 'download' && cmd !== 'translate') log(`backend: ${describeBackend()}, ${getThreads()} thread${getThreads() > 1 ? 's' : ''}`);

  if (cmd === 'download') {
    const dir = str(f, 'dir', '');
    if (!dir) throw new UsageError('download needs --dir DIR');
    await downloadFiles(resolve(dir), undefined, log);
    return;
  }
  if (cmd === 'train') {
    let config: RunConfig;
    let out: string;
    let splits: Splits;
    let tokenizer: BpeTokenizer | undefined;
    if (f.resume) {
      out = resolve(str(f, 'resume', ''));
      if (!existsSync(join(out, 'config.json'))) throw new UsageError(`--resume ${out}: no config.json there (not a run directory)`);
      config = checkResume(f, out, readRunConfig<RunConfig>(out));
      splits = loadSplits(config.data, config.src ?? 'en', config.tgt ?? 'de', config.maxLen, log);
      config = { ...config, steps: resumedSteps(f, config, splits, out, log) };
      const at = checkpointStep(out);
      if (at !== null && config.steps < at) throw new UsageError(`--resume ${out}: --steps ${config.steps} is below the checkpoint's step ${at}; a run can only be extended`);
    } else {
      // Refused before any data is read: starting over would clobber the run in that folder.
      checkFreshRunDir(resolve(str(f, 'out', join('runs', runDirName(str(f, 'recipe', 'pmd:1:8').split(',')[0]!)))), f.overwrite === true);
      const data = resolveData(f);
      splits = loadSplits(data, str(f, 'src', 'en'), str(f, 'tgt', 'de'), MAX_LEN, log);
      const r = resolveSteps(f, splits, log);
      tokenizer = r.tokenizer;
      // The paper's pruning mask decay at 1:8: 10% dense warm-up, 30% hard fine-tune.
      const recipe = str(f, 'recipe', `pmd:1:8,dense=${Math.round(r.steps * 0.1)},finetune=${Math.round(r.steps * 0.3)}`);
      config = { ...runConfig(f, recipe, r.steps), data };
      out = resolve(str(f, 'out', join('runs', runDirName(recipe.split(',')[0]!))));
    }
    log(`data: ${splits.name} (${splits.train.length} train / ${splits.val.length} val / ${splits.test.length} test pairs)`);
    log(`recipe: ${Recipe.parse(config.recipe, { steps: config.steps }).describe()}`);
    const t0 = performance.now();
    const given: RunOptions = {
      evalEvery: f['eval-every'] ? num(f, 'eval-every', 1) : undefined,
      keep: f.keep ? num(f, 'keep', 1) : undefined,
      average: f.average ? num(f, 'average', 1) : undefined,
      select: f.select === 'best' || f.select === 'last' ? f.select : undefined,
      beam: f.beam !== undefined ? num(f, 'beam', 4) : undefined,
      lengthPenalty: f['length-penalty'] !== undefined ? num(f, 'length-penalty', 1) : undefined,
    };
    // A resumed run keeps the options it was started with, unless a flag changes one.
    const { options, inherited } = f.resume ? mergeRunOptions(loadRunOptions(out), given) : { options: given, inherited: [] };
    if (inherited.length) log(`continuing with the run's options: ${inherited.join(' ')}`);
    const stored = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as RunOptions;
    const average = options.average ?? 0;
    const keep = Math.max(options.keep ?? 0, average);
    const selectBest = options.select === 'best';
    const r = await trainInterruptibly({ config, out, resume: !!f.resume, overwrite: f.overwrite === true, log, json, splits, tokenizer, evalEvery: options.evalEvery, keep: keep || undefined, selectBest, runOptions: stored });
    if (r.stopped === 'interrupted') return interruptedExit();
    const held = splits.test.length ? splits.test : splits.val;
    let scored = { run: r.run, state: r.state, checkpoint: 'last' };
    const warnings = [...r.warnings];
    if (average) {
      const kept = listSnapshots(out).length;
      if (kept < average) warnings.push(`--average ${average} asked for ${average} checkpoints but the run kept ${kept} (a checkpoint every ${Math.max(50, Math.floor(config.steps / 10))} steps): the average is of ${kept}`);
      const a = averageRun(out, Math.min(average, kept));
      log(`averaged the checkpoints of steps ${a.steps.join(', ')} into ${a.out}`);
      scored = { ...loadTranslationRun(a.out), checkpoint: `average of steps ${a.steps.join(', ')}` };
    } else if (selectBest && existsSync(join(out, 'best', 'checkpoint.safetensors'))) {
      const best = loadTranslationRun(join(out, 'best'));
      log(`evaluating best/ (step ${best.state.step}, best greedy val BLEU)`);
      scored = { ...best, checkpoint: `best (step ${best.state.step})` };
    }
    const decoding = { beam: options.beam ?? 4, lengthPenalty: options.lengthPenalty ?? 1 };
    const e = evaluateRun(scored.run, scored.state, held, decoding);
    const summary = {
      recipe: config.recipe, data: splits.name, split: splits.test.length ? 'test' : 'val', steps: r.state.step, finalLoss: r.lastLoss, endsHard: r.endsHard, warnings,
      checkpoint: scored.checkpoint, decoding, ...e, wallSeconds: (performance.now() - t0) / 1000, trainSeconds: r.state.elapsedMs / 1000,
    };
    writeFileAtomic(join(out, 'summary.json'), JSON.stringify(summary, null, 2));
    const warningLines = warnings.map((w) => `warning: ${w}`).join('\n');
    console.log(json ? JSON.stringify({ summary: { bleu: e.scores.bleu, chrf: e.scores.chrf, trainingFlopsRelative: e.flops.relativeToDense, endsHard: r.endsHard, warnings, out } }) : `\n${formatEvaluation(e, summary.split)}${warningLines ? `\n${warningLines}` : ''}\nrun saved in ${out}`);
    return;
  }
  if (cmd === 'average') {
    const dir = resolve(str(f, 'run', '') || fail('average needs --run DIR'));
    if (!existsSync(join(dir, 'config.json'))) throw new UsageError(`--run ${dir}: no config.json there (not a run directory)`);
    const k = f.last ? num(f, 'last', 1) : listSnapshots(dir).length;
    if (k === 0) throw new UsageError(`--run ${dir} keeps no checkpoints to average (train it with --keep K)`);
    const a = averageRun(dir, k, f.out ? resolve(str(f, 'out', '')) : undefined, { overwrite: f.overwrite === true });
    console.log(json ? JSON.stringify({ out: a.out, steps: a.steps }) : `averaged the checkpoints of steps ${a.steps.join(', ')} into ${a.out}`);
    return;
  }
  if (cmd === 'export') {
    const dir = resolve(str(f, 'run', '') || fail('export needs --run DIR'));
    const out = resolve(str(f, 'out', '') || fail('export needs --out FILE'));
    const r = exportTranslationRun(dir, out, { overwrite: f.overwrite === true });
    const layers = Object.entries(r.layers);
    const summary = { out, bytes: r.bytes, denseWeightBytes: r.denseWeightBytes, checkpointBytes: r.checkpointBytes, compressedLayers: layers.length };
    const nm = [...new Set(layers.map(([, l]) => `${l.n}:${l.m}`))].join(', ') || 'none';
    console.log(json ? JSON.stringify(summary) : `exported ${out}: ${r.bytes} bytes (${(r.bytes / r.denseWeightBytes).toFixed(3)} × the ${r.denseWeightBytes} bytes of dense weights; the training checkpoint is ${r.checkpointBytes}); ${layers.length} layers compressed at N:M ${nm}`);
    return;
  }
  if (cmd === 'translate') {
    const beam = num(f, 'beam', 1);
    if (f['length-penalty'] !== undefined && beam === 1) warn('--length-penalty only applies to beam search (--beam 2 or more); greedy decoding ignores it');
    const run = loadTranslator(resolve(str(f, 'run', '') || fail('translate needs --run DIR|FILE')));
    // checkFlagValues has already refused a missing --input or one that is not a regular file.
    const input = f.input ? createReadStream(str(f, 'input', '')) : process.stdin;
    const t0 = performance.now();
    const progress = process.stderr.isTTY
      ? (n: number): void => void process.stderr.write(`\rtranslated ${n} lines (${(n / ((performance.now() - t0) / 1000)).toFixed(1)} lines/s)`)
      : undefined;
    await translateStream(run.model, run.tokenizer, input, process.stdout, { beam, lengthPenalty: f['length-penalty'] !== undefined ? Number(f['length-penalty']) : 1, onTruncate: warnTruncated, onProgress: progress, normalize: normalizeSource, name: f.input ? str(f, 'input', '') : 'stdin' });
    if (progress) process.stderr.write('\n');
    return;
  }
  if (cmd === 'evaluate') {
    const refPath = str(f, 'ref', '') || fail('evaluate needs --ref FILE');
    const refs = readLinesOf(refPath);
    if (refs.length === 0) throw new UsageError(`--ref ${refPath} is empty: nothing to score`);
    // BLEU of blank references is 0 whatever the hypotheses: a score that says nothing.
    if (refs.every((r) => r.trim() === '')) throw new DataError(refPath, `all ${refs.length} reference lines are blank: nothing to score`);
    let hyps: string[];
    if (f.hyp) hyps = readLinesOf(str(f, 'hyp', ''));
    else {
      const run = loadTranslator(resolve(str(f, 'run', '') || fail('evaluate needs --run DIR|FILE (or --hyp FILE)')));
      const src = readLinesOf(str(f, 'src', '') || fail('evaluate needs --src FILE')).map(normalizeSource);
      hyps = translateAll(run.model, run.tokenizer, src, { beam: num(f, 'beam', 1), onTruncate: warnTruncated });
    }
    const b = corpusBleu(hyps, [refs], { lowercase: f.lowercase === true });
    const result = { bleu: b.score, precisions: b.precisions, bp: b.bp, hypLen: b.hypLen, refLen: b.refLen, chrf: corpusChrf(hyps, refs), lowercase: f.lowercase === true };
    console.log(json ? JSON.stringify(result) : `BLEU ${b.score.toFixed(2)} (${b.precisions.map((p) => p.toFixed(1)).join('/')}, BP ${b.bp.toFixed(3)}, hyp ${b.hypLen}, ref ${b.refLen}; 13a, ${result.lowercase ? 'lowercased' : 'cased'})  chrF2 ${result.chrf.toFixed(2)}`);
    return;
  }
  if (cmd === 'compare') {
    process.exitCode = await compareCommand(f, { runConfig, resolveData, resolveSteps, trainInterruptibly, maxLen: MAX_LEN, log, json });
  }
}

const PROG = 'npm run translate --';

function checkCommand(cmd: string): void {
  if (Object.hasOwn(HELP, cmd)) return;
  const guess = nearest(cmd, Object.keys(HELP));
  throw new UsageError(`unknown command '${cmd}'${guess ? `; did you mean '${guess}'?` : ''} (commands: ${Object.keys(HELP).join(', ')}; add --help to any)`);
}

/** 128 + the signal, what a shell reports (130 for Ctrl-C): scripts see that the run did not finish. */
function interruptedExit(): void {
  process.exitCode = terminatedBy === 'SIGTERM' ? 143 : 130;
}

function fail(msg: string): never {
  throw new UsageError(msg);
}

function readLinesOf(path: string): string[] {
  if (!existsSync(path)) throw new UsageError(`file not found: ${path}`);
  return readTextLines(path);
}

function warn(message: string): void {
  console.error(`translate: warning: ${message}`);
}

function warnTruncated(index: number, tokens: number, kept: number): void {
  warn(`input line ${index + 1} has ${tokens} tokens; only the first ${kept} (the model's maximum length) are translated`);
}

/**
 * The stored config of a run being resumed, after checking the flags given with --resume:
 * one that disagrees with the run is refused, since it would otherwise be silently ignored.
 */
function checkResume(f: Record<string, string | true>, out: string, stored: RunConfig): RunConfig {
  if (f.overwrite) throw new UsageError('--overwrite starts a new run; it cannot be combined with --resume');
  if (f.out !== undefined && resolve(str(f, 'out', '')) !== out) throw new UsageError(`--out ${str(f, 'out', '')} with --resume ${out}: a resumed run stays in its folder`);
  const wanted: RunConfig = {
    // Not shape-checked: a --d-model or --heads that does not fit is reported as a conflict with the run.
    ...runConfig(f, str(f, 'recipe', stored.recipe), stored.steps, { checkShape: false }),
    data: f.data === undefined ? stored.data : resolveData(f),
  };
  const conflicts = resumeFlagConflicts(Object.keys(f), stored, wanted);
  if (conflicts.length) {
    throw new UsageError(`--resume ${out}: ${conflicts.join('; ')}. A resumed run keeps its config (only --steps or --epochs may extend it); start a new run with another --out to change it`);
  }
  return stored;
}

/** The step count of a resumed run: unchanged, or extended by --steps / --epochs. */
function resumedSteps(f: Record<string, string | true>, config: RunConfig, splits: Splits, out: string, log: (s: string) => void): number {
  if (f.steps !== undefined) return num(f, 'steps', config.steps);
  if (f.epochs === undefined) return config.steps;
  const tokenizer = loadTranslator(out).tokenizer;
  const steps = stepsForEpochs(splits, tokenizer, config.maxLen, config.batchTokens, num(f, 'epochs', 1));
  log(`${String(f.epochs)} epoch(s) = ${steps} steps of ${config.batchTokens} padded tokens`);
  return steps;
}

main().then(
  // A write error still pending (a full disk) must decide the exit status, not be cut off by it.
  () => stdoutDrained().then(() => process.exit()),
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof NmgradError) {
      console.error(`translate: ${e.message}`);
      if (e instanceof UsageError) console.error(`try: npm run translate -- --help`);
      process.exit(2);
    }
    console.error(e);
    process.exit(1);
  },
);

