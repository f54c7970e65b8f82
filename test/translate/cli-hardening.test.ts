import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTranslationRun } from '../../src/index.js';
import { TINY as S, runCli, writeDataFolder, type CliResult } from './cli-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-cli-hardening-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const data = join(tmp, 'data');

const cli = (args: string[], input?: string | Buffer, env: Record<string, string> = {}): CliResult => runCli(args, { input, env });

/** Trains a fresh run (a few steps on a small data folder, so the final evaluation is quick). */
function trainRun(dir: string, ...extra: string[]): void {
  const r = cli(['train', ...S, '--data', data, '--out', dir, ...extra]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

function runFiles(dir: string): Record<string, Buffer> {
  return Object.fromEntries(['checkpoint.safetensors', 'config.json', 'metrics.jsonl', 'summary.json'].map((f) => [f, readFileSync(join(dir, f))]));
}

function weightsOf(dir: string): Map<string, Buffer> {
  const { run } = loadTranslationRun(dir);
  return new Map(run.model.namedParameters().map(([n, p]) => [n, Buffer.from(p.data.buffer, p.data.byteOffset, p.size * 4)]));
}

beforeAll(() => writeDataFolder(data));

describe('translate CLI: a finished run is never clobbered', () => {
  it('train --out into a folder that holds a run is refused and changes nothing; --overwrite replaces it', () => {
    const dir = join(tmp, 'done');
    trainRun(dir, '--steps', '2');
    const before = runFiles(dir);
    const r = cli(['train', ...S, '--data', data, '--out', dir, '--steps', '3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${dir}: already holds a run \\(checkpoint\\.safetensors, config\\.json, options\\.json, tokenizer\\.json, metrics\\.jsonl, summary\\.json\\); continue it with --resume`));
    expect(r.stdout).toBe(''); // refused before any data was read
    expect(runFiles(dir)).toEqual(before);

    trainRun(dir, '--steps', '3', '--overwrite');
    expect(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')).steps).toBe(3);
    expect(loadTranslationRun(dir).state.step).toBe(3);
    const steps = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
    expect(steps).toEqual([3]); // the old run's metrics are gone, not appended to
  });
});

describe('translate CLI: train --resume', () => {
  const dir = join(tmp, 'resumable');
  beforeAll(() => trainRun(dir, '--steps', '2', '--recipe', 'dense'));

  it('refuses every flag that disagrees with the run, naming it, and leaves the run untouched', () => {
    const before = runFiles(dir);
    const cases: [string[], RegExp][] = [
      [['--lr', '5'], /--lr \(the run has lr = 0\.003 where this asks for 5\)/],
      [['--recipe', 'pmd:1:8'], /--recipe \(the run has recipe = "dense" where this asks for "pmd:1:8"\)/],
      [['--preset', 'small'], /--preset \(the run has model\.dModel = 32 where this asks for 128, .*merges = 100 where this asks for 3000\)/],
      [['--d-model', '64'], /--d-model \(the run has model\.dModel = 32 where this asks for 64\)/],
      [['--seed', '2'], /--seed \(the run has seed = 1 where this asks for 2, model\.seed = 1 where this asks for 2\)/],
      [['--dropout', '0.3'], /--dropout \(the run has model\.dropout = 0 where this asks for 0\.3\)/],
      [['--batch-tokens', '500'], /--batch-tokens/],
      [['--layers', '2'], /--layers \(the run has model\.encoderLayers = 1 where this asks for 2, model\.decoderLayers = 1/],
      [['--sparsify', 'all'], /--sparsify/],
      [['--src', 'fr'], /--src \(the run has src = "en" where this asks for "fr"\)/],
      [['--data', 'builtin'], /--data \(the run has data = ".*data" where this asks for "builtin"\)/],
      [['--lr', '5', '--warmup', '10'], /--lr .*; --warmup/],
      [['--out', join(tmp, 'elsewhere')], /a resumed run stays in its folder/],
      [['--overwrite'], /--overwrite starts a new run; it cannot be combined with --resume/],
      [['--steps', '1'], /--steps 1 is below the checkpoint's step 2; a run can only be extended/],
    ];
    for (const [flags, re] of cases) {
      const r = cli(['train', '--resume', dir, '--threads', '1', ...flags]);
      expect(r.status, flags.join(' ')).toBe(2);
      expect(r.stderr, flags.join(' ')).toMatch(re);
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
    expect(runFiles(dir)).toEqual(before);
  });

  it('accepts flags that agree with the run (the full original command line included)', () => {
    const r = cli(['train', '--resume', dir, ...S, '--preset', 'tiny', '--recipe', 'dense', '--lr', '0.003', '--seed', '1', '--data', data, '--out', dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(loadTranslationRun(dir).state.step).toBe(2);
  });

  it('--steps extends a run with a notice, and the result equals a run trained that long at once', () => {
    const r = cli(['train', '--resume', dir, '--steps', '5', '--threads', '1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/extending the run from 2 to 5 steps/);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).steps).toBe(5);
    expect(loadTranslationRun(dir).state.step).toBe(5);
    // A dense recipe's schedule does not depend on the total, so extending is exactly a longer run.
    const straight = join(tmp, 'straight');
    trainRun(straight, '--steps', '5', '--recipe', 'dense');
    expect(weightsOf(dir)).toEqual(weightsOf(straight));
  });
});

describe('translate CLI: a resumed run keeps the options it was started with', () => {
  it('--eval-every, --keep, --average and --beam come back from options.json; a flag on the resume line replaces one', () => {
    const d = join(tmp, 'with-options');
    trainRun(d, '--steps', '2', '--recipe', 'dense', '--eval-every', '1', '--keep', '3', '--average', '2', '--beam', '2');
    const r = cli(['train', '--resume', d, '--steps', '4', '--threads', '1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/continuing with the run's options: --eval-every 1 --keep 3 --average 2 --beam 2"}\n/);
    const records = readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; valBleu?: number });
    expect(records.filter((m) => m.valBleu !== undefined).map((m) => m.step)).toEqual([1, 3]); // the last step of each part is scored by the final evaluation instead
    const summary = (): { checkpoint: string; decoding: unknown } => JSON.parse(readFileSync(join(d, 'summary.json'), 'utf8'));
    expect(summary().checkpoint).toBe('average of steps 2, 4');
    expect(summary().decoding).toEqual({ beam: 2, lengthPenalty: 1 });
    const again = cli(['train', '--resume', d, '--steps', '5', '--threads', '1', '--beam', '1']);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/continuing with the run's options: --eval-every 1 --keep 3 --average 2"}\n/);
    expect(summary().decoding).toEqual({ beam: 1, lengthPenalty: 1 });
    expect(JSON.parse(readFileSync(join(d, 'options.json'), 'utf8'))).toEqual({ evalEvery: 1, keep: 3, average: 2, beam: 1 });
  });

  it('a damaged options.json is refused by name before training', () => {
    const d = join(tmp, 'bad-options');
    trainRun(d, '--steps', '1', '--recipe', 'dense');
    writeFileSync(join(d, 'options.json'), '{"evalEvery": "often"}');
    const r = cli(['train', '--resume', d, '--steps', '2', '--threads', '1']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/options\.json: run option 'evalEvery' has the invalid value "often"/);
  });
});

describe('translate CLI: input is read the same way everywhere', () => {
  const dir = join(tmp, 'reader');
  beforeAll(() => trainRun(dir, '--steps', '2'));

  it('invalid UTF-8 is refused naming the file (or stdin) and line, as training refuses it', () => {
    const bad = join(tmp, 'bad.de');
    writeFileSync(bad, Buffer.concat([Buffer.from('Ein Mann.\nEin '), Buffer.from([0xff]), Buffer.from(' Hund.\n')]));
    const good = join(tmp, 'good.de');
    writeFileSync(good, 'Ein Mann.\nEin Hund.\n');
    const cases: [string[], Buffer | undefined, RegExp][] = [
      [['evaluate', '--hyp', good, '--ref', bad], undefined, /bad\.de:2: invalid UTF-8/],
      [['evaluate', '--hyp', bad, '--ref', good], undefined, /bad\.de:2: invalid UTF-8/],
      [['evaluate', '--run', dir, '--src', bad, '--ref', good], undefined, /bad\.de:2: invalid UTF-8/],
      [['translate', '--run', dir, '--input', bad], undefined, /bad\.de:2: invalid UTF-8/],
      [['translate', '--run', dir], readFileSync(bad), /stdin:2: invalid UTF-8/],
    ];
    for (const [args, input, re] of cases) {
      const r = cli(args, input);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });

  it('a line longer than the model accepts is translated from its start, with a warning naming the line', () => {
    const long = Array.from({ length: 200 }, () => 'the dog').join(' ');
    const r = cli(['translate', '--run', dir, '--threads', '1'], `A man.\n${long}\n`);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').length).toBe(3); // two lines out, each newline-terminated
    expect(r.stderr).toMatch(/warning: input line 2 has \d+ tokens; only the first 128 \(the model's maximum length\) are translated/);
    expect(r.stderr).not.toMatch(/input line 1/);
  });

  it('--length-penalty with greedy decoding says that it has no effect', () => {
    const r = cli(['translate', '--run', dir, '--length-penalty', '0.6', '--threads', '1'], 'A man.\n');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/--length-penalty only applies to beam search/);
  });

  it('train --out FILE and translate --input /missing are one-line typed errors, never a stack trace', () => {
    const file = join(tmp, 'plain-file');
    writeFileSync(file, 'x\n');
    for (const args of [['train', ...S, '--out', file], ['train', ...S, '--out', join(file, 'below')], ['translate', '--run', dir, '--input', join(tmp, 'missing.en')]]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^translate: --(out|input) /);
      expect(r.stderr).not.toMatch(/\n\s+at |EEXIST|ENOTDIR|ENOENT/);
    }
    expect(existsSync(join(file, 'below'))).toBe(false);
  });
});

describe('translate CLI: the worker pool environment', () => {
  it('a bad NMGRAD_WORKER_TIMEOUT_MS or NMGRAD_THREADS is refused at start, even when no pool would start', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ NMGRAD_WORKER_TIMEOUT_MS: 'abc' }, /^translate: pool: NMGRAD_WORKER_TIMEOUT_MS must be a positive integer \(milliseconds\), got 'abc'/],
      [{ NMGRAD_WORKER_TIMEOUT_MS: '0' }, /NMGRAD_WORKER_TIMEOUT_MS must be a positive integer \(milliseconds\), got '0'/],
      [{ NMGRAD_THREADS: 'x' }, /^translate: threads: NMGRAD_THREADS must be a positive integer, got 'x'/],
    ];
    for (const [env, re] of cases) {
      const r = cli(['train', ...S, '--steps', '1', '--out', join(tmp, 'env-probe')], undefined, env);
      expect(r.status, JSON.stringify(env)).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(existsSync(join(tmp, 'env-probe'))).toBe(false);
    }
  });
});
