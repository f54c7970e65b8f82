/**
 * The study grid: recipes × N:M patterns × seeds (plus dense once per seed), one run folder per
 * cell with a name derived from its recipe and seed, and a deterministic assignment of cells to
 * shards balanced by an expected-cost model, so any scheduler can run shard i of n.
 */
import { NmgradError, Recipe, validateNM } from 'nmgrad';
import { MAX_SEED } from '../flags.js';

/** A study flag or run folder that does not fit the requested grid. */
export class StudyConfigError extends NmgradError {}

/** Recipes whose schedule has a dense warm-up and a decay window; `--schedule` applies to them. */
const DECAY_KINDS = new Set(['pmd', 'ssd', 'gradual']);

/** Dense warm-up / decay window / fine-tune, in percent of the total steps. */
export interface ScheduleSplit {
  dense: number;
  decay: number;
  finetune: number;
}

export interface GridSpec {
  /** Recipe templates: a kind with options ('pmd,decay=linear'), optionally with its own N:M. */
  recipes: string[];
  /** Patterns every template without its own N:M is crossed with. */
  nm: [number, number][];
  seeds: number[];
  steps: number;
  /** Split applied to decay recipes that set neither dense nor finetune themselves. */
  schedule: ScheduleSplit | null;
}

export interface Cell {
  /** Stable run-folder name: the recipe string and the seed. */
  name: string;
  /** The full recipe string the run trains with. */
  recipe: string;
  /** The template the cell came from, without N:M (the row label of the report). */
  family: string;
  /** 'dense' or 'N:M'. */
  nm: string;
  seed: number;
  /** Expected cost in dense-step units (the shard balancer's weight). */
  cost: number;
}

export function parseNmList(text: string): [number, number][] {
  const out: [number, number][] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+):(\d+)$/.exec(part);
    if (!m) throw new StudyConfigError('--nm', `'${part}' is not N:M (N kept of every M), e.g. --nm 2:4,1:8,1:16`);
    const pair: [number, number] = [Number(m[1]), Number(m[2])];
    validateNM('--nm', pair[0], pair[1]);
    if (out.some(([a, b]) => a === pair[0] && b === pair[1])) throw new StudyConfigError('--nm', `${part} is listed twice`);
    out.push(pair);
  }
  if (out.length === 0) throw new StudyConfigError('--nm', `no N:M pattern in '${text}'`);
  return out;
}

export function parseSeeds(text: string): number[] {
  const seeds = text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const v = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(v) || v < 1 || v > MAX_SEED) throw new StudyConfigError('--seeds', `seeds must be positive integers, got '${s}' (at most ${MAX_SEED})`);
    return v;
  });
  if (seeds.length === 0) throw new StudyConfigError('--seeds', `no seed in '${text}'`);
  const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (dup !== undefined) throw new StudyConfigError('--seeds', `seed ${dup} is listed twice`);
  return seeds;
}

/** '10/30/60' → dense 10%, decay 30%, fine-tune 60% of the steps. */
export function parseSchedule(text: string): ScheduleSplit {
  const parts = text.split('/').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new StudyConfigError('--schedule', `expected DENSE/DECAY/FINETUNE percentages such as 10/30/60, got '${text}'`);
  }
  const [dense, decay, finetune] = parts as [number, number, number];
  if (Math.abs(dense + decay + finetune - 100) > 1e-9) throw new StudyConfigError('--schedule', `the three parts must sum to 100, got ${dense}+${decay}+${finetune}`);
  if (decay <= 0) throw new StudyConfigError('--schedule', `the decay window must be more than 0% of training, got '${text}'`);
  return { dense, decay, finetune };
}

/** 'i/n' with 0 ≤ i < n (shards are numbered from 0, as Kubernetes indexed Jobs and `--array=0-N` do). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new StudyConfigError('--shard', `expected i/n (shard i of n, numbered from 0), got '${text}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new StudyConfigError('--shard', `the shard count must be at least 1, got ${count}`);
  if (index >= count) throw new StudyConfigError('--shard', `shards of ${count} are numbered 0..${count - 1}, got ${index}`);
  return { index, count };
}

/** A folder name for a recipe string: 'pmd:1:8,dense=60' → 'pmd-1-8_dense_60'. */
export function runDirName(recipe: string): string {
  return recipe.replace(/[^a-zA-Z0-9:._-]+/g, '_').replace(/:/g, '-');
}

function splitTemplate(template: string): { kind: string; nm: [number, number] | null; options: string[] } {
  const [head, ...options] = template.split(',').map((s) => s.trim()).filter(Boolean);
  const parts = (head ?? '').split(':');
  if (parts.length === 3) return { kind: parts[0]!, nm: [Number(parts[1]), Number(parts[2])], options };
  return { kind: parts[0]!, nm: null, options };
}

/** The recipe string of one cell: the template at pattern `nm`, with the grid's schedule split. */
function cellRecipe(kind: string, nm: [number, number] | null, options: string[], spec: GridSpec): string {
  const own = new Set(options.map((o) => o.split('=')[0]!.trim().toLowerCase()));
  const extra: string[] = [];
  if (spec.schedule && DECAY_KINDS.has(kind) && !['dense', 'd', 'finetune', 'f'].some((k) => own.has(k))) {
    const dense = Math.round((spec.steps * spec.schedule.dense) / 100);
    const finetune = Math.round((spec.steps * spec.schedule.finetune) / 100);
    extra.push(`dense=${dense}`, `finetune=${finetune}`);
  }
  return [nm ? `${kind}:${nm[0]}:${nm[1]}` : kind, ...options, ...extra].join(',');
}

/**
 * All cells, in report order: dense first (once per seed, whenever the grid crosses patterns or
 * lists 'dense'), then each template in the order given, its patterns in order, seeds in order.
 */
export function expandGrid(spec: GridSpec): Cell[] {
  if (spec.recipes.length === 0) throw new StudyConfigError('--recipes', 'no recipe given');
  const templates = spec.recipes.map((t) => ({ text: t, ...splitTemplate(t) }));
  const needsNm = templates.filter((t) => t.kind !== 'dense' && t.nm === null);
  if (needsNm.length > 0 && spec.nm.length === 0) {
    throw new StudyConfigError('--recipes', `${needsNm.map((t) => `'${t.text}'`).join(', ')} carry no N:M: add --nm (e.g. --nm 2:4,1:8) or write '${needsNm[0]!.kind}:1:8'`);
  }
  const withDense = spec.nm.length > 0 || templates.some((t) => t.kind === 'dense');
  const cells: Cell[] = [];
  const add = (family: string, recipe: string, nm: string, seed: number): void => {
    Recipe.parse(recipe, { steps: spec.steps }); // a bad recipe fails before any training starts
    const name = `${runDirName(recipe)}_seed${seed}`;
    if (cells.some((c) => c.name === name)) throw new StudyConfigError('--recipes', `the grid holds the cell '${name}' twice`);
    cells.push({ name, recipe, family, nm, seed, cost: expectedCost(recipe, spec.steps) });
  };
  if (withDense) {
    const denseOptions = templates.find((t) => t.kind === 'dense')?.options ?? [];
    for (const seed of spec.seeds) add('dense', cellRecipe('dense', null, denseOptions, spec), 'dense', seed);
  }
  for (const t of templates) {
    if (t.kind === 'dense') continue;
    const family = [t.kind, ...t.options].join(',');
    const patterns = t.nm ? [t.nm] : spec.nm;
    for (const nm of patterns) for (const seed of spec.seeds) add(family, cellRecipe(t.kind, nm, t.options, spec), `${nm[0]}:${nm[1]}`, seed);
  }
  return cells;
}

/** Share of a step's time spent in the sparsified layers (a rough constant; only balance depends on it). */
const SPARSE_SHARE = 0.5;

/**
 * Expected run time in dense-step units. A step runs dense whenever the recipe has no hard mask
 * (dense phase, α > 0, unstructured — executed as a masked dense product); a hard N:M step costs
 * ρ for forward and dX, and ρ or 1 for dW (RECIPES.md FLOP rules), on the sparse share of the step.
 */
export function expectedCost(recipe: string, steps: number): number {
  const r = Recipe.parse(recipe, { steps });
  let cost = 0;
  for (let t = 0; t < steps; t++) {
    const s = r.at(t);
    if (s.structure !== 'nm' || s.alpha > 0) cost += 1;
    else cost += 1 - SPARSE_SHARE + (SPARSE_SHARE * (2 * s.density + (s.denseWeightGrad ? 1 : s.density))) / 3;
  }
  return cost;
}

/**
 * Shard of every cell (same order as `cells`): longest expected cost first onto the least
 * loaded shard, ties to the lower shard and the earlier cell — deterministic for a given grid.
 */
export function assignShards(cells: readonly Cell[], count: number): number[] {
  const order = cells.map((c, i) => i).sort((a, b) => cells[b]!.cost - cells[a]!.cost || a - b);
  const load = new Array<number>(count).fill(0);
  const shard = new Array<number>(cells.length).fill(0);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s]! < load[best]! - 1e-9) best = s;
    shard[i] = best;
    load[best] = load[best]! + cells[i]!.cost;
  }
  return shard;
}
