/**
 * Sentence-aligned parallel text (`{split}.{lang}`, one sentence per line, Moses style), read
 * from a directory with validation that names the file and line of every problem.
 *
 * Empty lines: a pair where either side is empty is skipped and counted (the summary reports
 * it); the line numbering of the remaining pairs is unaffected.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from 'nmgrad';
import type { Pair } from './builtin.js';
import { readTextLines } from './lines.js';
import { downloadFiles as download, type DownloadOptions, type RemoteFile } from './download.js';

export type { DownloadOptions, RemoteFile } from './download.js';

export interface ReadSummary {
  file: string;
  lines: number;
  kept: number;
  skippedEmpty: number;
  filteredLong: number;
}

/**
 * Reads `{dir}/{split}.{src}` and `{dir}/{split}.{tgt}`. `maxLen` (whitespace tokens, either
 * side) filters over-long pairs; both counts are in the summary.
 */
export function readParallel(dir: string, split: string, src: string, tgt: string, opts: { maxLen?: number } = {}): { pairs: Pair[]; summary: ReadSummary } {
  if (!existsSync(dir)) throw new DataError(dir, 'data directory not found');
  const srcPath = join(dir, `${split}.${src}`);
  const tgtPath = join(dir, `${split}.${tgt}`);
  const a = readTextLines(srcPath);
  const b = readTextLines(tgtPath);
  if (a.length !== b.length) throw new DataError(`${srcPath}, ${tgtPath}`, `line counts differ: ${a.length} vs ${b.length} (files must be line-aligned)`);
  const pairs: Pair[] = [];
  let skippedEmpty = 0;
  let filteredLong = 0;
  const maxLen = opts.maxLen ?? Infinity;
  for (let i = 0; i < a.length; i++) {
    const en = a[i]!.trim();
    const de = b[i]!.trim();
    if (en === '' || de === '') {
      skippedEmpty++;
      continue;
    }
    if (en.split(/\s+/).length > maxLen || de.split(/\s+/).length > maxLen) {
      filteredLong++;
      continue;
    }
    pairs.push({ en, de });
  }
  return { pairs, summary: { file: `${srcPath} + ${tgtPath}`, lines: a.length, kept: pairs.length, skippedEmpty, filteredLong } };
}

/** `../shared/data/multi30k` next to the project (or the working directory), when present. */
export function defaultDataDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(process.cwd(), '../shared/data/multi30k')];
  // The project root is three (src) or four (dist) levels above this file.
  for (const up of ['../../..', '../../../..']) candidates.push(resolve(here, up, '../shared/data/multi30k'));
  return candidates.find((c) => existsSync(join(c, 'train.en'))) ?? null;
}

const RAW = 'https://github.com/multi30k/dataset/raw/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw';

/** The public Multi30k Task 1 raw files with the checksums of the shared README. */
export const MULTI30K_FILES: RemoteFile[] = [
  { name: 'train.en', url: `${RAW}/train.en.gz`, sha256: '460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6' },
  { name: 'train.de', url: `${RAW}/train.de.gz`, sha256: '2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72' },
  { name: 'val.en', url: `${RAW}/val.en.gz`, sha256: '1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227' },
  { name: 'val.de', url: `${RAW}/val.de.gz`, sha256: '660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660' },
];

/** Downloads and verifies `files` (default: Multi30k Task 1) into `dir`; see data/download.ts. */
export async function downloadFiles(dir: string, files: RemoteFile[] = MULTI30K_FILES, log: (s: string) => void = () => {}, opts: DownloadOptions = {}): Promise<void> {
  await download(dir, files, log, opts);
}
