/**
 * The options of `train` that shape a run but not its model (evaluation cadence, kept and
 * averaged checkpoints, best-checkpoint selection, final decoding). They are saved beside the
 * config as `options.json`, so `train --resume DIR` continues a run the way it was started;
 * a flag given on the resume line replaces the stored value from then on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, writeFileAtomic } from 'nmgrad';

export const OPTIONS_FILE = 'options.json';

export interface RunOptions {
  evalEvery?: number;
  keep?: number;
  average?: number;
  select?: 'last' | 'best';
  beam?: number;
  lengthPenalty?: number;
}

/** The flag that sets each option, for messages. */
export const OPTION_FLAGS: Record<keyof RunOptions, string> = {
  evalEvery: 'eval-every', keep: 'keep', average: 'average', select: 'select', beam: 'beam', lengthPenalty: 'length-penalty',
};

export function saveRunOptions(dir: string, o: RunOptions): void {
  writeFileAtomic(join(dir, OPTIONS_FILE), JSON.stringify(o, null, 2));
}

/** The stored options of the run in `dir` ({} for runs made before options were stored). */
export function loadRunOptions(dir: string): RunOptions {
  const path = join(dir, OPTIONS_FILE);
  if (!existsSync(path)) return {};
  let o: unknown;
  try {
    o = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataError(path, `unreadable run options: ${(e as Error).message}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new DataError(path, 'run options must be a JSON object');
  const out: RunOptions = {};
  for (const [k, v] of Object.entries(o)) {
    if (!(k in OPTION_FLAGS)) throw new DataError(path, `unknown run option '${k}'`);
    const ok = k === 'select' ? v === 'last' || v === 'best' : typeof v === 'number' && Number.isFinite(v) && v >= 0;
    if (!ok) throw new DataError(path, `run option '${k}' has the invalid value ${JSON.stringify(v)}`);
    (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * The options of a resumed run: each flag given now, else the stored value. `inherited` lists
 * the options taken from the file, as flags (for the log line).
 */
export function mergeRunOptions(stored: RunOptions, given: RunOptions): { options: RunOptions; inherited: string[] } {
  const options: RunOptions = { ...stored };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) (options as Record<string, unknown>)[k] = v;
  const inherited = (Object.keys(stored) as (keyof RunOptions)[])
    .filter((k) => given[k] === undefined)
    .map((k) => `--${OPTION_FLAGS[k]} ${String(stored[k])}`);
  return { options, inherited };
}
