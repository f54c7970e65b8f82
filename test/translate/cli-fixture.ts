/** What the translate-CLI tests share: the built CLI, tiny model flags, and a small data folder. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateBuiltinCorpus, type BuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';

export const CLI_PATH = join(resolve(import.meta.dirname, '../..'), 'dist/examples/transformer-translate/cli.js');

/** Tiny settings: training steps take milliseconds, so each CLI call is mostly start-up. */
export const TINY = ['--d-model', '32', '--heads', '2', '--ffn', '64', '--layers', '1', '--merges', '100', '--batch-tokens', '300', '--threads', '1', '--json'];

export interface CliResult { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the built CLI; a call that outlives `timeoutMs` is killed (status null), so a hang fails a test instead of stalling it. */
export function runCli(args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; cwd?: string; stdout?: number; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync('node', [CLI_PATH, ...args], {
    input: opts.input, encoding: 'utf8', env: { ...process.env, ...opts.env }, cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000,
    stdio: ['pipe', opts.stdout ?? 'pipe', 'pipe'],
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Writes a built-in corpus (default: seed 7, 600 training pairs, 3 val and test) as a `--data` folder. */
export function writeDataFolder(dir: string, corpus: BuiltinCorpus = generateBuiltinCorpus({ seed: 7, train: 600, val: 3, test: 3 })): void {
  mkdirSync(dir, { recursive: true });
  for (const split of ['train', 'val', 'test'] as const) {
    writeFileSync(join(dir, `${split}.en`), `${corpus[split].map((p) => p.en).join('\n')}\n`);
    writeFileSync(join(dir, `${split}.de`), `${corpus[split].map((p) => p.de).join('\n')}\n`);
  }
}
