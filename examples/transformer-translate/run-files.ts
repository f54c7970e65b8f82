/** The files of a run folder, and creating one without clobbering a run that is already there. */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from 'nmgrad';

/** What `train` writes into a run folder (files, and the folders of kept, best and averaged checkpoints); any of them means the folder holds (part of) a run. */
export const RUN_FILES = ['checkpoint.safetensors', 'config.json', 'options.json', 'tokenizer.json', 'metrics.jsonl', 'summary.json', 'checkpoints', 'best', 'averaged'] as const;

export function existingRunFiles(dir: string): string[] {
  return RUN_FILES.filter((f) => existsSync(join(dir, f)));
}

/** `mkdir -p` whose failures (a file in the way, no permission) are one-line DataErrors. */
export function ensureFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EEXIST' || err.code === 'ENOTDIR' ? 'a file is in the way (expected a folder)' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.message;
    throw new DataError(dir, `cannot create the run folder: ${why}`);
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

/** Refuses a folder that holds a run unless `overwrite`; changes nothing on disk. */
export function checkFreshRunDir(dir: string, overwrite = false): void {
  const found = existingRunFiles(dir);
  if (found.length && !overwrite) {
    throw new DataError(dir, `already holds a run (${found.join(', ')}); continue it with --resume ${dir}, choose another --out, or pass --overwrite to replace it`);
  }
}
