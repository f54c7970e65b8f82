/**
 * Run folders of a study: each holds `study-cell.json` (the cell's full configuration and its
 * hash) beside the training files. A folder is reused only when its saved hash equals the
 * requested one; finished folders are collected from any number of directories for the merge.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, writeFileAtomic } from 'nmgrad';
import type { RunConfig } from '../model-io.js';
import { StudyConfigError } from './grid.js';

export const MANIFEST = 'study-cell.json';
const FORMAT = 'nmgrad-study-cell/1';

/** A saved run folder whose configuration differs from the requested one. */
export class RunConfigMismatchError extends StudyConfigError {}

/** Everything a cell's result depends on. Thread count is not in it (results do not depend on it). */
export interface CellConfig {
  /** The training configuration without the data path (which differs between machines). */
  run: Omit<RunConfig, 'data'>;
  /** sha256 of the data files, so the same corpus matches under any path. */
  data: string;
  /** Scored split and how many of its sentences (null = all). */
  evaluation: { split: 'val'; sentences: number | null };
}

export interface CellManifest {
  format: typeof FORMAT;
  name: string;
  hash: string;
  config: CellConfig;
}

/** The per-run summary the study writes (and commits): small, no checkpoint. */
export interface CellSummary {
  cell: string;
  hash: string;
  recipe: string;
  seed: number;
  split: 'val';
  sentences: number;
  steps: number;
  scores: { bleu: number; bleuLowercase: number; chrf: number };
  flops: { training: number; denseTraining: number; relativeToDense: number; literatureRelative: number; inferencePerToken: number | null; denseInferencePerToken: number | null };
  keptParams: number;
  totalParams: number;
  trainSeconds: number;
  wallSeconds: number;
}

/** JSON with object keys sorted, so equal configurations hash equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function hashConfig(c: CellConfig): string {
  return createHash('sha256').update(canonicalJson(c)).digest('hex');
}

/** sha256 over the split files of a data folder ('builtin' is generated, so its name is its identity). */
export function dataFingerprint(data: string, src: string, tgt: string): string {
  if (data === 'builtin') return 'builtin';
  const h = createHash('sha256');
  for (const split of ['train', 'val', 'test']) {
    for (const lang of [src, tgt]) {
      const p = join(data, `${split}.${lang}`);
      if (!existsSync(p)) continue;
      h.update(`${split}.${lang}\0`).update(readFileSync(p)).update('\0');
    }
  }
  return `sha256:${h.digest('hex')}`;
}

export function cellConfig(run: RunConfig, data: string, sentences: number | null): CellConfig {
  const { data: _path, ...rest } = run;
  return { run: rest, data, evaluation: { split: 'val', sentences } };
}

export function manifestFor(name: string, config: CellConfig): CellManifest {
  return { format: FORMAT, name, hash: hashConfig(config), config };
}

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new DataError(path, `unreadable JSON: ${(e as Error).message}`);
  }
}

/** Leaf paths whose values differ between two configurations ('run.steps: 8 → 6'). */
export function configDifferences(a: unknown, b: unknown, path = ''): string[] {
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configDifferences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  return canonicalJson(a) === canonicalJson(b) ? [] : [`${path}: ${canonicalJson(a) ?? 'absent'} → ${canonicalJson(b) ?? 'absent'}`];
}

export type CellState = 'fresh' | 'resume' | 'done';

/**
 * What a cell's folder holds, without touching it: 'done' (a finished run with this exact
 * configuration), 'resume' (an interrupted one), or 'fresh' (empty, absent, or to be started
 * over). A folder made with any other configuration is refused with the differing fields named,
 * unless `force` (then it is 'fresh': prepareCellDir deletes it).
 */
export function checkCellDir(dir: string, manifest: CellManifest, force: boolean): CellState {
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(dir) || readdirSync(dir).length === 0) return 'fresh';
  let problem: string | null = null;
  if (!existsSync(manifestPath)) problem = `it holds files but no ${MANIFEST}, so its configuration cannot be verified`;
  else {
    const saved = readJson<CellManifest>(manifestPath);
    if (saved.hash !== manifest.hash) {
      const diff = configDifferences(saved.config, manifest.config);
      problem = `its saved configuration (hash ${saved.hash.slice(0, 12)}) differs from the requested one (hash ${manifest.hash.slice(0, 12)}): ${diff.join('; ') || 'format changed'}`;
    }
  }
  if (problem === null) {
    if (existsSync(join(dir, 'summary.json'))) return 'done';
    if (existsSync(join(dir, 'checkpoint.safetensors'))) return 'resume';
  } else if (!force) {
    throw new RunConfigMismatchError(dir, `${problem}. Use another --out, or --force to delete it and run again`);
  }
  return 'fresh';
}

/**
 * Readies a cell's folder (its caller holds the cell's lock): as checkCellDir says, and a
 * 'fresh' folder is emptied and given the cell's manifest.
 */
export function prepareCellDir(dir: string, manifest: CellManifest, force: boolean): CellState {
  const state = checkCellDir(dir, manifest, force);
  if (state !== 'fresh') return state;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, MANIFEST), JSON.stringify(manifest, null, 2));
  return 'fresh';
}

export interface FoundCell {
  dir: string;
  manifest: CellManifest;
  summary: CellSummary;
}

/** Every finished cell (manifest + summary) in `dirs` or their immediate subfolders. */
export function findFinishedCells(dirs: readonly string[]): FoundCell[] {
  const found: FoundCell[] = [];
  for (const root of dirs) {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new StudyConfigError('--merge', `${root}: not a directory`);
    const candidates = [root, ...readdirSync(root).sort().map((e) => join(root, e)).filter((p) => statSync(p).isDirectory())];
    for (const dir of candidates) {
      if (!existsSync(join(dir, MANIFEST)) || !existsSync(join(dir, 'summary.json'))) continue;
      const manifest = readJson<CellManifest>(join(dir, MANIFEST));
      const summary = readJson<CellSummary>(join(dir, 'summary.json'));
      if (manifest.format !== FORMAT || summary.hash !== manifest.hash) {
        throw new DataError(dir, `${MANIFEST} and summary.json do not belong together (format ${String(manifest.format)}, hashes ${String(manifest.hash).slice(0, 12)} / ${String(summary.hash).slice(0, 12)})`);
      }
      found.push({ dir, manifest, summary });
    }
  }
  return found;
}

/** What `--list` shows for a cell's folder, without touching it. */
export function cellStatus(dir: string, hash: string): 'done' | 'partial' | 'todo' | 'other config' {
  if (!existsSync(join(dir, MANIFEST))) return existsSync(dir) && readdirSync(dir).length > 0 ? 'other config' : 'todo';
  if (readJson<CellManifest>(join(dir, MANIFEST)).hash !== hash) return 'other config';
  if (existsSync(join(dir, 'summary.json'))) return 'done';
  return existsSync(join(dir, 'checkpoint.safetensors')) ? 'partial' : 'todo';
}
