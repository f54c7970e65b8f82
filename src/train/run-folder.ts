/**
 * The run folder of a training run, and the rules that keep it safe: a new run never starts over
 * an existing one unless asked, one process trains a folder at a time (a lock file naming its
 * pid), every file is written atomically, and what an interrupted write leaves is cleaned up.
 *
 *   config.json              the caller's config (written at every checkpoint)
 *   checkpoint.safetensors   weights, optimizer, sparse state, generators, training state
 *   metrics.jsonl            one JSON record per progress line and per evaluation
 *   checkpoints/step-N.safetensors   the weights of the last K checkpoints (`keep`)
 *   best/                    a run folder holding the checkpoint of the best evaluation
 *   averaged/                a run folder holding the mean of kept checkpoints
 *   summary.json, options.json, and files the caller adds (e.g. tokenizer.json)
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.js';
import { processAlive, removeStaleTempFiles, writeFileAtomic } from '../nn/checkpoint.js';
import { checkOutputPath } from './paths.js';

/**
 * The latest checkpoint of a run folder: weights, optimizer, sparse state, generators, training state.
 */
export const CHECKPOINT_FILE = 'checkpoint.safetensors';
/** The caller's config of a run folder, rewritten at every checkpoint. */
export const CONFIG_FILE = 'config.json';
/** One JSON record per progress line and per evaluation. */
export const METRICS_FILE = 'metrics.jsonl';
/** The final summary of a finished run. */
export const SUMMARY_FILE = 'summary.json';
/** The folder holding the weights of the last K checkpoints (`keep`), as `step-N.safetensors`. */
export const SNAPSHOT_DIR = 'checkpoints';
/** The run folder holding the checkpoint of the best evaluation (`select: 'best'`). */
export const BEST_DIR = 'best';
/** The run folder holding the mean of the kept checkpoints. */
export const AVERAGED_DIR = 'averaged';
const LOCK_FILE = '.lock';

/** What a run folder may hold; any of them means the folder holds (part of) a run. */
export const RUN_FILES = [CHECKPOINT_FILE, CONFIG_FILE, 'options.json', 'tokenizer.json', METRICS_FILE, SUMMARY_FILE, SNAPSHOT_DIR, BEST_DIR, AVERAGED_DIR] as const;

/** The entries of `RUN_FILES` present in `dir` (empty: the folder holds no run). */
export function existingRunFiles(dir: string): string[] {
  return RUN_FILES.filter((f) => existsSync(join(dir, f)));
}

/** `mkdir -p` whose failures (a file in the way, no permission, a special path) are one-line DataErrors. */
export function ensureFolder(dir: string): void {
  checkOutputPath(dir, 'the run folder');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EEXIST' || err.code === 'ENOTDIR' ? 'a file is in the way (expected a folder)' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.message;
    throw new DataError(dir, `cannot create the run folder: ${why}`);
  }
}

/** Refuses a folder that holds a run unless `overwrite`; changes nothing on disk. */
export function checkFreshRunDir(dir: string, overwrite = false): void {
  const found = existingRunFiles(dir);
  if (found.length && !overwrite) {
    throw new DataError(dir, `already holds a run (${found.join(', ')}); continue it with --resume ${dir}, choose another --out, or pass --overwrite to replace it`);
  }
}

/**
 * Makes `dir` ready for a new run. A folder that already holds a run is refused, because
 * starting over would empty its metrics at once and replace its checkpoint at the first save
 * while its summary still described the old run; `overwrite` deletes the old run's files first.
 */
export function prepareFreshRunDir(dir: string, overwrite = false): void {
  ensureFolder(dir);
  checkFreshRunDir(dir, overwrite);
  for (const f of existingRunFiles(dir)) rmSync(join(dir, f), { force: true, recursive: true });
}

/**
 * Takes the exclusive lock of a run folder (`.lock`, holding the pid) for as long as one process
 * trains it. A lock held by a live process is a DataError naming that pid; the lock of a process
 * that died (kill -9) is taken over. Returns the release function (also run at process exit).
 */
export function lockRunFolder(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new DataError(dir, `cannot lock the run folder: ${(e as Error).message}`);
      const holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) {
        throw new DataError(dir, `is being trained by process ${holder} (lock file ${path}); wait for it to finish, or stop it first`);
      }
      rmSync(path, { force: true }); // left by a process that died
      continue;
    }
    writeSync(fd, String(process.pid));
    closeSync(fd);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      process.off('exit', release);
      try {
        if (readFileSync(path, 'utf8') === String(process.pid)) rmSync(path, { force: true });
      } catch {
        // already gone
      }
    };
    process.on('exit', release);
    return release;
  }
  throw new DataError(dir, `cannot take the lock ${path}: another process keeps recreating it`);
}

/** Removes what writes killed mid-way left in a run folder, its kept checkpoints and best/; returns the paths. */
export function cleanRunFolder(dir: string): string[] {
  const out: string[] = [];
  for (const d of [dir, join(dir, SNAPSHOT_DIR), join(dir, BEST_DIR), join(dir, AVERAGED_DIR)]) {
    for (const name of removeStaleTempFiles(d)) out.push(join(d, name));
  }
  return out;
}

/** A run's `config.json`, read on its own (e.g. to check flags before loading the weights). */
export function readRunConfig<C = unknown>(dir: string): C {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) throw new DataError(path, 'missing: not a training run directory (expected config.json and checkpoint.safetensors)');
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataError(dir, `unreadable run files: ${(e as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new DataError(path, 'must be a JSON object (the run\'s config)');
  return config as C;
}

/** Appends one JSON record to the run's metrics. */
export function appendMetrics(dir: string, record: object): void {
  const fd = openSync(join(dir, METRICS_FILE), 'a');
  try {
    writeSync(fd, `${JSON.stringify(record)}\n`);
  } finally {
    closeSync(fd);
  }
}

/** The metric records of a run (half-written lines skipped). */
export function readMetrics(dir: string): Record<string, unknown>[] {
  const path = join(dir, METRICS_FILE);
  if (!existsSync(path)) return [];
  const out: Record<string, unknown>[] = [];
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    if (l === '') continue;
    try {
      const r = JSON.parse(l) as unknown;
      if (r !== null && typeof r === 'object' && !Array.isArray(r)) out.push(r as Record<string, unknown>);
    } catch {
      // a half-written line
    }
  }
  return out;
}

/**
 * A run killed after its last checkpoint has logged steps that the resumed run repeats; drops
 * every record past the checkpoint's step (and a half-written last line) so each step appears once.
 */
export function cutMetricsBack(dir: string, step: number): void {
  const path = join(dir, METRICS_FILE);
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

const SNAPSHOT = /^step-(\d+)\.safetensors$/;

/** The kept weight snapshots of a run, oldest first, with their steps. */
export function listSnapshots(dir: string): { step: number; path: string }[] {
  const d = join(dir, SNAPSHOT_DIR);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .map((f) => SNAPSHOT.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), path: join(d, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** Deletes all but the newest `keep` snapshots. */
export function pruneSnapshots(dir: string, keep: number): void {
  const all = listSnapshots(dir);
  for (const s of all.slice(0, Math.max(0, all.length - keep))) rmSync(s.path, { force: true });
}

/** Deletes snapshots past `step` (left by a run killed after a snapshot, before its checkpoint). */
export function dropSnapshotsAfter(dir: string, step: number): void {
  for (const s of listSnapshots(dir)) if (s.step > step) rmSync(s.path, { force: true });
}

/** Whether `path` is a regular file (or absent); FIFOs, devices and sockets are never written over. */
export function checkRegularTarget(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) {
    try {
      st = statSync(path);
    } catch {
      throw new DataError(path, 'is a symbolic link to nothing (dangling); refusing to write through it');
    }
  }
  if (!st.isFile()) throw new DataError(path, `is ${st.isDirectory() ? 'a folder' : 'a special file (FIFO, device or socket)'}; refusing to write over it`);
}
