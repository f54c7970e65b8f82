/**
 * `compare`: the study runner. Expands the grid, then lists it (`--list`), runs one shard of
 * it (`--shard i/n`, or all of it), or merges finished runs from any folders (`--merge DIR...`)
 * into results.{json,md,svg}. Flag parsing and training wiring come from the CLI.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from 'nmgrad';
import type { BpeTokenizer } from 'nmgrad/text';
import type { RunConfig } from '../model-io.js';
import { evaluateRun, loadSplits, trainTokenizer, type Splits, type train } from '../train.js';
import { assignShards, expandGrid, parseNmList, parseSchedule, parseSeeds, parseShard, StudyConfigError, type GridSpec } from './grid.js';
import { studyPlot } from './plot.js';
import { PAPER_SCHEDULE, STUDY_PRESETS } from './presets.js';
import { CellLocks, cellRunning } from './lock.js';
import { buildReport, timingsMarkdown, type ExpectedCell } from './report.js';
import { cellConfig, cellStatus, checkCellDir, dataFingerprint, findFinishedCells, manifestFor, prepareCellDir, type CellManifest, type CellSummary } from './runs.js';

type Flags = Record<string, string | true>;

/** What the CLI lends the study: its flag readers and the Ctrl-C-aware trainer. */
export interface CompareContext {
  runConfig(f: Flags, recipe: string, steps: number): RunConfig;
  resolveData(f: Flags): string;
  resolveSteps(f: Flags, splits: Splits, log: (s: string) => void): { steps: number; tokenizer?: BpeTokenizer };
  trainInterruptibly(opts: Parameters<typeof train>[0]): ReturnType<typeof train>;
  maxLen: number;
  log: (s: string) => void;
  json: boolean;
}

export const COMPARE_FLAGS = {
  recipes: { arg: 'LIST', help: "recipe templates separated by ';', each may carry options and its own N:M (default dense;srste:1:8;pmd:1:8;ssd:1:8;unstructured:1:8)" },
  nm: { arg: 'LIST', help: 'N:M patterns (N kept of every M) crossed with every template without its own, e.g. 2:4,1:8,1:16; adds dense once per seed' },
  seeds: { arg: 'LIST', help: 'seeds, e.g. 1,2,3 (default --seed); each cell is one seed' },
  schedule: { arg: 'D/W/F|paper', help: `dense / decay / fine-tune % for pmd, ssd, gradual without their own dense/finetune ('paper' = ${PAPER_SCHEDULE})` },
  study: { arg: 'NAME', help: `a study preset (${Object.keys(STUDY_PRESETS).join(', ')}); flags given override it` },
  shard: { arg: 'i/n', help: 'run only shard i of n (numbered from 0; cells balanced by expected cost)' },
  shards: { arg: 'N', help: 'with --list: the shard count to list the assignment for (default from --shard, else 1)' },
  list: { arg: '', help: 'print the cells, their shard and status, then exit' },
  merge: { arg: 'DIR...', help: 'collect finished runs from these folders into one report in --out (missing cells are listed; exit 3 if any)' },
  force: { arg: '', help: 'delete and redo a run folder whose saved configuration differs from the requested one' },
  'eval-sentences': { arg: 'N', help: 'score the first N val sentences (default all)' },
} as const;

const str = (f: Flags, k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);

/** The preset's flags under the command line's. */
export function applyStudyPreset(f: Flags): Flags {
  const name = str(f, 'study');
  if (name === undefined) return f;
  const p = Object.hasOwn(STUDY_PRESETS, name) ? STUDY_PRESETS[name] : undefined;
  if (!p) throw new StudyConfigError('--study', `unknown study preset '${name}'; presets: ${Object.keys(STUDY_PRESETS).join(', ')}`);
  return { ...p.flags, ...f };
}

interface PlannedCell extends ExpectedCell {
  config: RunConfig;
  manifest: CellManifest;
}

function positiveInt(f: Flags, k: string): number | null {
  const v = str(f, k);
  if (v === undefined) return null;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new StudyConfigError(`--${k}`, `must be a positive integer, got '${v}'`);
  return Number(v);
}

export async function compareCommand(flags: Flags, ctx: CompareContext): Promise<number> {
  const f = applyStudyPreset(flags);
  const { log } = ctx;
  // Flags that would otherwise be silently ignored in combination are refused up front.
  const given = (k: string): boolean => flags[k] !== undefined;
  if (given('resume')) throw new StudyConfigError('--resume', 'compare resumes interrupted cells by itself: rerun the same command');
  for (const k of ['beam', 'eval-every']) if (given(k)) throw new StudyConfigError(`--${k}`, 'not supported by compare (every cell is scored greedily on val, once, at the end)');
  if (given('seed') && given('seeds')) throw new StudyConfigError('--seeds', 'give --seed or --seeds, not both');
  if (given('shards') && !given('list')) throw new StudyConfigError('--shards', 'only applies to --list (to run a shard, use --shard i/n)');
  if (given('merge') && (given('shard') || given('list') || given('force'))) throw new StudyConfigError('--merge', 'cannot be combined with --shard, --list or --force (it only reads finished runs)');
  const outDir = resolve(str(f, 'out') ?? 'runs/compare');
  const data = ctx.resolveData(f);
  const src = str(f, 'src') ?? 'en';
  const tgt = str(f, 'tgt') ?? 'de';
  // --list output is read by scripts: keep data-loading chatter out of it.
  const setupLog = f.list === true ? (): void => {} : log;
  const splits = loadSplits(data, src, tgt, ctx.maxLen, setupLog);
  const { steps, tokenizer: epochTokenizer } = ctx.resolveSteps(f, splits, setupLog);
  const scheduleText = str(f, 'schedule');
  const spec: GridSpec = {
    recipes: (str(f, 'recipes') ?? 'dense;srste:1:8;pmd:1:8;ssd:1:8;unstructured:1:8').split(';').map((s) => s.trim()).filter(Boolean),
    nm: str(f, 'nm') ? parseNmList(str(f, 'nm')!) : [],
    seeds: str(f, 'seeds') ? parseSeeds(str(f, 'seeds')!) : [positiveInt(f, 'seed') ?? 1],
    steps,
    schedule: scheduleText === undefined ? null : parseSchedule(scheduleText === 'paper' ? PAPER_SCHEDULE : scheduleText),
  };
  const evalSentences = positiveInt(f, 'eval-sentences');
  const fingerprint = dataFingerprint(data, src, tgt);
  // Every cell's configuration is built (and so validated) before any training starts.
  const cells: PlannedCell[] = expandGrid(spec).map((c) => {
    const config: RunConfig = { ...ctx.runConfig({ ...f, seed: String(c.seed) }, c.recipe, steps), data };
    const manifest = manifestFor(c.name, cellConfig(config, fingerprint, evalSentences));
    return { ...c, config, manifest, hash: manifest.hash };
  });
  const first = cells[0]!.config;
  const header = [
    `# Study: ${[...new Set(cells.map((c) => c.family))].join(', ')} × ${spec.nm.length ? spec.nm.map(([n, m]) => `${n}:${m}`).join(', ') : 'their own N:M'} × seeds ${spec.seeds.join(', ')}`,
    '',
    `Data ${data === 'builtin' ? 'builtin' : basename(data)} (${fingerprint.slice(0, 19)}), ${src}→${tgt}, scored on ${evalSentences ? `the first ${evalSentences}` : 'all'} val sentences: cased sacreBLEU (13a), chrF2, greedy decoding.`,
    `Model d_model ${first.model.dModel}, ${first.model.heads} heads, FFN ${first.model.ffn}, ${first.model.encoderLayers}+${first.model.decoderLayers} layers, dropout ${first.model.dropout}, BPE ${first.merges} merges; ${steps} steps of ${first.batchTokens} padded tokens, lr ${first.lr}, warm-up ${first.warmup}; sparsity on ${first.sparsify}.`,
    `Schedule split for pmd/ssd/gradual: ${spec.schedule ? `${spec.schedule.dense}% dense / ${spec.schedule.decay}% decay / ${spec.schedule.finetune}% fine-tune` : "each recipe's own (defaults: no dense warm-up, no fine-tune)"}. N:M = N kept of every M.`,
  ];

  if (f.merge !== undefined) {
    if (f.merge === true) throw new StudyConfigError('--merge', 'needs at least one folder');
    const dirs = f.merge.split('\n').map((d) => resolve(d));
    const report = buildReport(cells, findFinishedCells(dirs), header);
    writeReport(outDir, cells, report);
    const { missing, mismatched } = report.collected;
    console.log(ctx.json ? JSON.stringify(JSON.parse(report.json)) : report.markdown); // JSON-lines mode: one record
    log(`wrote ${join(outDir, 'results.md')}, results.json, results.svg, timings.md`);
    if (missing.length || mismatched.length) {
      console.error(`compare --merge: ${missing.length + mismatched.length} of ${cells.length} cells not done: ${[...missing, ...mismatched.map((m) => m.cell)].map((c) => c.name).join(', ')}`);
      return 3;
    }
    return 0;
  }

  const shard = str(f, 'shard') ? parseShard(str(f, 'shard')!) : null;
  if (f.list === true) {
    const count = positiveInt(f, 'shards') ?? shard?.count ?? 1;
    const assigned = assignShards(cells, count);
    const rows = cells.map((c, i) => ({ shard: assigned[i]!, name: c.name, recipe: c.recipe, seed: c.seed, cost: Math.round(c.cost), hash: c.hash, status: listedStatus(outDir, c.name, c.hash) }));
    const shown = shard ? rows.filter((r) => r.shard === shard.index) : rows;
    if (ctx.json) for (const r of shown) console.log(JSON.stringify(r));
    else {
      console.log(`${'shard'.padEnd(6)}${'cost'.padStart(7)}  ${'status'.padEnd(13)}cell`);
      for (const r of shown) console.log(`${String(r.shard).padEnd(6)}${String(r.cost).padStart(7)}  ${r.status.padEnd(13)}${r.name}`);
      for (let s = 0; s < count; s++) {
        const mine = rows.filter((r) => r.shard === s);
        if (!shard || shard.index === s) console.log(`shard ${s}/${count}: ${mine.length} cells, expected cost ${mine.reduce((a, r) => a + r.cost, 0)} dense-step units`);
      }
    }
    return 0;
  }

  const assigned = assignShards(cells, shard?.count ?? 1);
  const mine = cells.filter((_c, i) => assigned[i] === (shard?.index ?? 0));
  if (shard) log(`shard ${shard.index}/${shard.count}: ${mine.length} of ${cells.length} cells`);
  // Check every folder of this shard before the first one trains: a stale folder fails now, not hours in.
  const states = mine.map((c) => checkCellDir(join(outDir, c.name), c.manifest, f.force === true));
  const locks = new CellLocks(outDir, log);
  // A scheduler ends a task with SIGTERM and a grace period (Slurm's KillWait, Kubernetes'
  // terminationGracePeriodSeconds) before SIGKILL, on preemption, requeue, scancel and time
  // limits alike: in training, stop at the next step boundary with a checkpoint (as Ctrl-C
  // does); anywhere else, leave at once (the last checkpoint is already on disk).
  let training = false;
  let terminated = false;
  const onTerm = (): void => {
    terminated = true;
    // While training, trainInterruptibly's own SIGINT/SIGTERM handler stops the run with a checkpoint.
    if (!training) process.exit(TERMINATED_EXIT);
  };
  process.on('SIGTERM', onTerm);
  const busy: string[] = [];
  try {
    let tokenizer = epochTokenizer;
    const val = evalSentences ? splits.val.slice(0, evalSentences) : splits.val;
    for (const [i, cell] of mine.entries()) {
      const dir = join(outDir, cell.name);
      if (states[i] === 'done') {
        log(`${cell.name}: already done with this configuration`);
        continue;
      }
      const holder = locks.acquire(cell.name);
      if (holder !== null) {
        log(`${cell.name}: skipped, another task is training it: ${holder}`);
        busy.push(cell.name);
        continue;
      }
      try {
        // Checked again under the lock: another task may have finished or started it meanwhile.
        const state = prepareCellDir(dir, cell.manifest, f.force === true);
        if (state === 'done') {
          log(`${cell.name}: already done with this configuration`);
          continue;
        }
        log(`== ${cell.name} (${cell.recipe}, seed ${cell.seed}) ==`);
        const t0 = performance.now();
        const resume = state === 'resume';
        if (!resume) tokenizer ??= trainTokenizer(splits, first.merges, log);
        training = true;
        const r = await ctx.trainInterruptibly({ config: cell.config, out: dir, resume, log, json: ctx.json, splits, tokenizer: resume ? undefined : tokenizer });
        training = false;
        // 128 + the signal, as a shell reports it: the study did not finish.
        if (r.stopped === 'interrupted') return terminated ? TERMINATED_EXIT : 130;
        const e = evaluateRun(r.run, r.state, val);
        const summary: CellSummary = {
          cell: cell.name, hash: cell.hash, recipe: cell.recipe, seed: cell.seed, split: 'val', sentences: val.length, steps: r.state.step,
          scores: { bleu: e.scores.bleu, bleuLowercase: e.scores.bleuLowercase, chrf: e.scores.chrf },
          flops: { training: e.flops.training, denseTraining: e.flops.denseTraining, relativeToDense: e.flops.relativeToDense, literatureRelative: e.flops.literatureRelative, inferencePerToken: e.flops.inferencePerToken ?? null, denseInferencePerToken: e.flops.denseInferencePerToken ?? null },
          keptParams: e.keptParams, totalParams: e.totalParams,
          trainSeconds: r.state.elapsedMs / 1000, wallSeconds: (performance.now() - t0) / 1000,
        };
        writeFileAtomic(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
        log(`${cell.name}: val BLEU ${e.scores.bleu.toFixed(2)}  chrF2 ${e.scores.chrf.toFixed(2)}  training FLOPs ${e.flops.relativeToDense.toFixed(3)} × dense`);
      } finally {
        training = false;
        locks.release(cell.name);
      }
    }
  } finally {
    process.off('SIGTERM', onTerm);
    locks.close();
  }
  // A skipped cell that its holder has finished meanwhile is done all the same.
  const unfinished = busy.filter((name) => cellStatus(join(outDir, name), cells.find((c) => c.name === name)!.hash) !== 'done');
  if (unfinished.length) {
    console.error(`compare: ${unfinished.length} cell(s) skipped because another task holds their lock: ${unfinished.join(', ')}; rerun this shard when that task has ended (exit 4)`);
    return BUSY_EXIT;
  }
  if (shard && shard.count > 1) {
    log(`shard ${shard.index}/${shard.count} done; when every shard is, run the same command with --merge DIR... in place of --shard`);
    return 0;
  }
  const report = buildReport(cells, findFinishedCells([outDir]), header);
  writeReport(outDir, cells, report);
  console.log(ctx.json ? JSON.stringify(JSON.parse(report.json)) : report.markdown); // JSON-lines mode: one record
  log(`wrote ${join(outDir, 'results.md')}, results.json, results.svg, timings.md`);
  return 0;
}

/** 128 + SIGTERM: the task was ended by its scheduler (or `kill`) and checkpointed. */
const TERMINATED_EXIT = 143;
/** Some cells of the shard were held by another task's lock; nothing was written to them. */
const BUSY_EXIT = 4;

function listedStatus(outDir: string, name: string, hash: string): ReturnType<typeof cellStatus> | 'running' {
  const status = cellStatus(join(outDir, name), hash);
  return status !== 'done' && cellRunning(outDir, name) ? 'running' : status;
}

function writeReport(outDir: string, cells: readonly ExpectedCell[], report: ReturnType<typeof buildReport>): void {
  mkdirSync(outDir, { recursive: true });
  writeFileAtomic(join(outDir, 'results.json'), report.json);
  writeFileAtomic(join(outDir, 'results.md'), report.markdown);
  writeFileAtomic(join(outDir, 'results.svg'), studyPlot(report.groups, { title: 'val BLEU vs training FLOPs (mean over seeds)', xLabel: 'training FLOPs (× dense, as counted)', yLabel: 'val BLEU (cased)' }));
  writeFileAtomic(join(outDir, 'timings.md'), timingsMarkdown(cells, report.collected.results));
}
