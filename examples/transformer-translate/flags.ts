/**
 * Value rules for every CLI flag, checked as soon as the arguments are parsed: a bad value is
 * refused before any data, tokenizer or checkpoint is loaded (and before hours of training
 * whose final evaluation would only then trip over it).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { outputPathProblem, threadCountProblem } from 'nmgrad';

export class UsageError extends Error {}

/** Largest seed: the generators take a 32-bit seed, and larger values would silently wrap. */
export const MAX_SEED = 2 ** 32 - 1;
/**
 * Largest beam: a beam keeps that many hypotheses (and their KV caches) per sentence, and
 * beyond a few hundred it only costs memory.
 */
export const MAX_BEAM = 256;

/** A rule returns what is wrong with a value, or null when it is fine. */
type Rule = (v: string) => string | null;

function asNumber(v: string): number {
  // Number('') and Number(' ') are 0; an empty value is never a number.
  return v.trim() === '' ? NaN : Number(v);
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER): Rule {
  const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`;
  return (v) => {
    const n = asNumber(v);
    return Number.isInteger(n) && n >= min && n <= max ? null : `must be ${range}`;
  };
}

const positive: Rule = (v) => {
  const n = asNumber(v);
  return Number.isFinite(n) && n > 0 ? null : 'must be a positive number';
};

/** The library's rule (the same for NMGRAD_THREADS): at most 4 × the cores. */
const threadCount: Rule = (v) => threadCountProblem(asNumber(v));

const finite: Rule = (v) => (Number.isFinite(asNumber(v)) ? null : 'must be a finite number');

const probability: Rule = (v) => {
  const n = asNumber(v);
  return n >= 0 && n < 1 ? null : 'must be in [0, 1)';
};

function oneOf(...choices: string[]): Rule {
  return (v) => (choices.includes(v) ? null : `must be ${choices.slice(0, -1).join(', ')}${choices.length > 1 ? ' or ' : ''}${choices[choices.length - 1]}`);
}

const nonEmpty: Rule = (v) => (v.trim() === '' ? 'must not be empty' : null);

/** A file suffix such as `en` or `de-DE`: it becomes part of a file name, so no separators. */
const language: Rule = (v) => (/^[A-Za-z0-9_-]+$/.test(v) ? null : 'must be a language suffix such as en or de (letters, digits, _ or -)');

const existingFile: Rule = (v) => {
  if (v.trim() === '') return 'must not be empty';
  if (!existsSync(v)) return 'file not found';
  return statSync(v).isFile() ? null : 'is not a regular file';
};

/**
 * A folder that may not exist yet, but that is not a file and does not lie below one, nor below
 * a dangling symbolic link, nor in /proc, /sys or /dev (paths.ts).
 */
const folder: Rule = (v) => {
  if (v.trim() === '') return 'must not be empty';
  const problem = outputPathProblem(v);
  if (problem !== null) return problem;
  if (existsSync(v)) return statSync(v).isDirectory() ? null : 'is a file, not a folder';
  let up = resolve(v);
  while (!existsSync(up) && dirname(up) !== up) up = dirname(up);
  return statSync(up).isDirectory() ? null : `lies below a file (${up})`;
};

/** `builtin`, `multi30k` (resolved later) or a folder of parallel text. */
const dataSource: Rule = (v) => {
  if (v === 'builtin' || v === 'multi30k') return null;
  if (v.trim() === '') return 'must not be empty';
  if (!existsSync(v)) return 'directory not found (use --data builtin, or see: npm run translate -- download --help)';
  return statSync(v).isDirectory() ? null : 'is a file, not a directory of parallel text';
};

/** An output file: not a folder, not below a file, and a place for output (paths.ts). */
const outputFile: Rule = (v) => {
  if (v.trim() === '') return 'must not be empty';
  const problem = outputPathProblem(v);
  if (problem !== null) return problem;
  if (existsSync(v)) return statSync(v).isDirectory() ? 'is a folder, expected a file name' : null;
  return folder(dirname(resolve(v))) === null ? null : 'lies below a file';
};

/** A run folder: whether it holds a run is for the command to say; a file is never one. */
const runFolder: Rule = (v) => {
  if (v.trim() === '') return 'must not be empty';
  return existsSync(v) && !statSync(v).isDirectory() ? 'is a file, not a folder' : null;
};

/** Rules for values, by flag name; a flag missing here takes any value its command checks itself. */
const VALUE_RULES: Record<string, Rule> = {
  threads: threadCount,
  layers: integer(1),
  'd-model': integer(1),
  heads: integer(1),
  ffn: integer(1),
  merges: integer(0),
  steps: integer(1),
  epochs: positive,
  dropout: probability,
  'batch-tokens': integer(1),
  lr: positive,
  warmup: integer(0),
  seed: integer(0, MAX_SEED),
  'eval-every': integer(1),
  keep: integer(1),
  average: integer(1),
  last: integer(1),
  select: oneOf('last', 'best'),
  beam: integer(1, MAX_BEAM),
  'eval-sentences': integer(1),
  shards: integer(1),
  'length-penalty': finite,
  preset: oneOf('tiny', 'small', 'base'),
  sparsify: oneOf('ffn', 'attention', 'all'),
  recipe: nonEmpty,
  recipes: nonEmpty,
  src: language,
  tgt: language,
};

/** Rules for paths, checked after every value (a bad number is reported whatever the paths). */
const PATH_RULES: Record<string, Rule> = {
  data: dataSource,
  out: folder,
  dir: folder,
  resume: runFolder,
  // translate and evaluate also take a model file written by export; loadModel tells which.
  run: nonEmpty,
  input: existingFile,
  ref: existingFile,
  hyp: existingFile,
};

/** evaluate's --src is a file, train's --src a language suffix. */
const COMMAND_RULES: Record<string, { value: Record<string, Rule>; path: Record<string, Rule> }> = {
  evaluate: { value: { src: () => null }, path: { src: existingFile } },
  export: { value: {}, path: { run: runFolder, out: outputFile } },
  average: { value: {}, path: { run: runFolder, out: folder } },
};

/** Throws a UsageError naming the flag and the value for the first flag whose value is bad. */
export function checkFlagValues(cmd: string, flags: Record<string, string | true>): void {
  for (const kind of ['value', 'path'] as const) {
    for (const [name, value] of Object.entries(flags)) {
      if (value === true) continue;
      const own = <T>(table: Record<string, T> | undefined, key: string): T | undefined => (table !== undefined && Object.hasOwn(table, key) ? table[key] : undefined);
      const rule = own(own(COMMAND_RULES, cmd)?.[kind], name) ?? own(kind === 'value' ? VALUE_RULES : PATH_RULES, name);
      const problem = rule?.(value);
      if (problem) throw new UsageError(`--${name} ${problem}, got '${value}'`);
    }
  }
  checkCombinations(cmd, flags);
}

/** Flags that are valid alone but would be ignored (or contradict each other) together. */
function checkCombinations(cmd: string, f: Record<string, string | true>): void {
  if (cmd === 'evaluate' && f.hyp !== undefined) {
    const unused = ['run', 'src', 'beam'].filter((k) => f[k] !== undefined);
    if (unused.length) throw new UsageError(`evaluate --hyp scores an existing file; ${unused.map((k) => `--${k}`).join(', ')} would be ignored (drop them, or drop --hyp to translate --src with --run)`);
  }
  if ((cmd === 'train' || cmd === 'compare') && f.epochs !== undefined && f.steps !== undefined) throw new UsageError('give --steps or --epochs, not both');
  if (cmd === 'train' && f.select === 'best' && f['eval-every'] === undefined) throw new UsageError('--select best picks the checkpoint with the best val BLEU, which needs --eval-every N');
  if (cmd === 'train' && f.select === 'best' && f.average !== undefined) throw new UsageError('give --select best or --average K, not both (the final evaluation uses one model)');
  if (cmd === 'train' && f.keep !== undefined && f.average !== undefined && Number(f.keep) < Number(f.average)) throw new UsageError(`--keep ${String(f.keep)} keeps fewer checkpoints than --average ${String(f.average)} needs`);
  // The built-in corpus is English→German only; other suffixes would be silently ignored.
  const builtin = (f.data === undefined || f.data === 'builtin') && f.resume === undefined;
  if ((cmd === 'train' || cmd === 'compare') && builtin && ((f.src ?? 'en') !== 'en' || (f.tgt ?? 'de') !== 'de')) {
    throw new UsageError(`--src ${String(f.src ?? 'en')} --tgt ${String(f.tgt ?? 'de')}: the built-in corpus is en → de only; pass --data DIR for other languages`);
  }
}

/** Shape checks that need the preset's defaults: heads must divide the model width. */
export function checkModelShape(dModel: number, heads: number): void {
  if (dModel % heads !== 0) throw new UsageError(`--d-model ${dModel} is not divisible by --heads ${heads} (each head gets d-model / heads dimensions)`);
}
