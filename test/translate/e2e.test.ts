import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, saveSafetensors } from '../../src/index.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { loadTranslationRun, type TranslationConfig } from '../../src/index.js';
import { evaluateRun, train, type Splits } from '../../examples/transformer-translate/train.js';
import { translateAll } from '../../examples/transformer-translate/translate.js';

const root = resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const corpus = generateBuiltinCorpus({ seed: 5, train: 20000, val: 100, test: 100 });
const splits: Splits = { ...corpus, name: 'builtin-small' };

/** The tiny preset's model and schedule (dropout on in the resume test, to cover its RNG state). */
function config(steps: number, recipe: string, dropout = 0): TranslationConfig {
  return {
    model: { srcVocab: 0, tgtVocab: 0, dModel: 64, heads: 4, ffn: 256, encoderLayers: 2, decoderLayers: 2, dropout, maxLen: 64, shareEmbeddings: true, tieOutput: true, seed: 3 },
    recipe, sparsify: 'ffn', steps, batchTokens: 1500, lr: 3e-3, warmup: 150, seed: 3, labelSmoothing: 0.1, maxLen: 60, data: 'builtin', merges: 600,
  };
}
const quiet = (): void => {};

describe('translation example end to end', () => {
  it('an interrupted-then-resumed run ends bit-identical to an uninterrupted one', async () => {
    const a = await train({ config: config(24, 'pmd:1:8,w=0.25,interval=4,dense=4,finetune=8', 0.1), out: join(tmp, 'a'), log: quiet, json: true, splits });
    const bDir = join(tmp, 'b');
    const first = await train({ config: config(24, 'pmd:1:8,w=0.25,interval=4,dense=4,finetune=8', 0.1), out: bDir, log: quiet, json: true, splits, stopAfter: 13 });
    expect(first.stopped).toBe('paused');
    expect(first.state.step).toBe(13);
    const b = await train({ config: config(24, 'pmd:1:8,w=0.25,interval=4,dense=4,finetune=8', 0.1), out: bDir, resume: true, log: quiet, json: true, splits });
    expect(b.state.step).toBe(24);
    const pa = a.run.model.namedParameters();
    const pb = b.run.model.namedParameters();
    expect(pb.map(([n]) => n)).toEqual(pa.map(([n]) => n));
    pa.forEach(([n, p], i) => expect(Buffer.from(pb[i]![1].data.buffer, pb[i]![1].data.byteOffset, p.size * 4).equals(Buffer.from(p.data.buffer, p.data.byteOffset, p.size * 4)), n).toBe(true));
    expect(b.lastLoss).toBe(a.lastLoss);
  }, 300_000);

  it('a NaN weight in a checkpoint is refused on resume by name; a NaN loss stops the run naming the step, the last good checkpoint intact', async () => {
    const dir = join(tmp, 'nan');
    await train({ config: config(24, 'ste:1:8', 0.1), out: dir, log: quiet, json: true, splits, stopAfter: 5 });
    // Poison one weight inside the saved checkpoint (re-encoding writes fresh checksums), then resume from it.
    const path = join(dir, 'checkpoint.safetensors');
    const { tensors, bytes, metadata } = loadSafetensors(path);
    tensors.get('decoderNorm.weight')!.data[0] = NaN;
    saveSafetensors(path, [...tensors, ...bytes], metadata);
    await expect(train({ config: config(24, 'ste:1:8', 0.1), out: dir, resume: true, log: quiet, json: true, splits })).rejects.toThrow(/tensor 'decoderNorm.weight' holds NaN at flat index 0/);
    // A learning rate that overflows the weights makes the loss non-finite within a few steps.
    const blow = join(tmp, 'blow');
    await train({ config: { ...config(24, 'ste:1:8'), lr: 1e30, warmup: 1 }, out: blow, log: quiet, json: true, splits, stopAfter: 1 });
    const before = readFileSync(join(blow, 'checkpoint.safetensors'));
    await expect(train({ config: { ...config(24, 'ste:1:8'), lr: 1e30, warmup: 1 }, out: blow, resume: true, log: quiet, json: true, splits })).rejects.toThrow(/step \d+: loss became (NaN|Infinity); training stopped. The last good checkpoint .* is intact \(step 1\)/);
    expect(readFileSync(join(blow, 'checkpoint.safetensors')).equals(before)).toBe(true);
  }, 120_000);

  it('trains, saves, reloads, translates and evaluates above a BLEU floor', async () => {
    const dir = join(tmp, 'run');
    const r = await train({ config: config(280, 'pmd:1:8,dense=28,finetune=84'), out: dir, log: quiet, json: true, splits });
    const e = evaluateRun(r.run, r.state, splits.test.slice(0, 60));
    // The default main job reaches ~90 val BLEU by step 550; this short run is checked against a floor.
    expect(e.scores.bleu).toBeGreaterThan(40);
    expect(e.flops.relativeToDense).toBeLessThan(1);
    expect(e.flops.relativeToDense).toBeGreaterThan(0.5);
    const { run } = loadTranslationRun(dir);
    const src = splits.test.slice(0, 5).map((p) => p.en);
    expect(translateAll(run.model, run.tokenizer, src)).toEqual(translateAll(r.run.model, r.run.tokenizer, src));
    const beam = translateAll(run.model, run.tokenizer, src, { beam: 3 });
    expect(beam.length).toBe(5);
    expect(existsSync(join(dir, 'metrics.jsonl'))).toBe(true);
    // The CLI translates and evaluates the saved run.
    const cli = join(root, 'dist/examples/transformer-translate/cli.js');
    const out = execFileSync('node', [cli, 'translate', '--run', dir], { input: `${src.join('\n')}\n`, encoding: 'utf8' });
    expect(out.trimEnd().split('\n')).toEqual(translateAll(run.model, run.tokenizer, src));
    // CRLF line ends and stray spaces translate like the bare lines: training strips both.
    const crlf = execFileSync('node', [cli, 'translate', '--run', dir], { input: src.map((l) => `  ${l} \r\n`).join(''), encoding: 'utf8' });
    expect(crlf).toBe(out);
    writeFileSync(join(tmp, 'src.en'), `${src.join('\n')}\n`);
    writeFileSync(join(tmp, 'ref.de'), `${splits.test.slice(0, 5).map((p) => p.de).join('\n')}\n`);
    const ev = JSON.parse(execFileSync('node', [cli, 'evaluate', '--run', dir, '--src', join(tmp, 'src.en'), '--ref', join(tmp, 'ref.de'), '--json'], { encoding: 'utf8' }));
    expect(ev.bleu).toBeGreaterThan(0);
  }, 480_000);

  it('CLI argument errors exit non-zero with a one-line message and a --help hint', () => {
    const cli = join(root, 'dist/examples/transformer-translate/cli.js');
    writeFileSync(join(tmp, 'broken.safetensors'), 'nonsense');
    const cases: [string[], RegExp][] = [
      [['train', '--bogus', '1'], /unknown flag --bogus/],
      [['train', '--recipe', 'pmd:9:8'], /N must not exceed M/],
      [['train', '--data', join(tmp, 'no-such-dir')], /directory not found/],
      [['translate', '--run', tmp], /missing: not a training run directory/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['train', '--epochs', '1', '--steps', '5'], /--steps or --epochs, not both/],
      [['train', '--dropout', '1.5'], /--dropout must be in \[0, 1\)/],
      [['train', '--resume', join(tmp, 'no-such-run')], /not a run directory/],
      ...badFlagValues(tmp),
    ];
    const never = join(tmp, 'never-created');
    for (const [args, re] of cases) {
      // Every train probe names an --out folder: a value refused up front leaves it uncreated.
      const full = args[0] === 'train' && !args.includes('--out') && !args.includes('--resume') ? [...args, '--out', never] : args;
      const r = spawnSync('node', [cli, ...full], { encoding: 'utf8' });
      expect(r.status, full.join(' ')).toBe(2);
      expect(r.stderr, full.join(' ')).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
      expect(existsSync(never), full.join(' ')).toBe(false);
    }
    const help = execFileSync('node', [cli, 'train', '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/--recipe STR/);
    expect(help).toMatch(/N kept of every M/);
  }, 300_000);

  it('Ctrl-C (SIGINT) saves a checkpoint at the next step boundary and exits cleanly; the run resumes from it', async () => {
    const dir = join(tmp, 'sigint');
    const first = await interruptWhen(['train', '--steps', '5000', '--threads', '1', '--json', '--out', dir], /"step":25,/);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(130); // 128 + SIGINT, after the checkpoint is saved
    const m = /interrupted: checkpoint saved at step (\d+)/.exec(first.stdout);
    expect(m, first.stdout).not.toBeNull();
    const saved = Number(m![1]);
    expect(saved).toBeGreaterThanOrEqual(25);
    expect(saved).toBeLessThan(5000);
    expect(loadTranslationRun(dir).state.step).toBe(saved);
    // --resume continues from that step; a second Ctrl-C stops it again with a later checkpoint.
    const second = await interruptWhen(['train', '--resume', dir, '--threads', '1', '--json'], new RegExp(`resuming .* at step ${saved}`));
    expect(second.code).toBe(130);
    const again = Number(/interrupted: checkpoint saved at step (\d+)/.exec(second.stdout)?.[1]);
    expect(again).toBeGreaterThan(saved);
    expect(loadTranslationRun(dir).state.step).toBe(again);
  }, 240_000);
});

/**
 * One bad value for every value-taking flag of every command (several where a flag has several
 * ways to be wrong). Each is refused before anything is loaded: the translate probes name a run
 * folder that does not exist, so only a check made before loading can give the flag's error.
 */
function badFlagValues(tmp: string): [string[], RegExp][] {
  const file = join(tmp, 'a-file.txt');
  writeFileSync(file, 'A man.\n');
  const noRun = join(tmp, 'no-such-run');
  const S = ['--d-model', '32', '--heads', '2', '--ffn', '64', '--layers', '1', '--merges', '100', '--batch-tokens', '300', '--steps', '1'];
  const train = (...a: string[]): string[] => ['train', ...S, ...a];
  const int = (flag: string, min: number, max?: number): RegExp => new RegExp(`--${flag} must be an integer ${max === undefined ? `≥ ${min}` : `in \\[${min}, ${max}\\]`}`);
  const cases: [string[], RegExp][] = [];
  for (const v of ['0', '1.5', 'abc', '300']) cases.push([train('--threads', v), int('threads', 1, 4 * availableParallelism())]);
  for (const flag of ['layers', 'd-model', 'heads', 'ffn', 'batch-tokens', 'eval-every']) for (const v of ['0', '1.5', 'abc']) cases.push([train(`--${flag}`, v), int(flag, 1)]);
  cases.push([train('--layers', '-2'), int('layers', 1)], [train('--ffn', ''), int('ffn', 1)]);
  for (const v of ['0', '0.5', '2.5', '-3', '1e400']) cases.push([['train', ...S.slice(0, -2), '--steps', v], int('steps', 1)]);
  for (const v of ['-1', '1.5', 'x']) cases.push([train('--merges', v), int('merges', 0)]);
  for (const v of ['-1', '1.5']) cases.push([train('--warmup', v), int('warmup', 0)]);
  for (const v of ['4294967296', '4294967297', '-1', '1.5']) cases.push([train('--seed', v), int('seed', 0, 4294967295)]);
  for (const v of ['-1', '0', '2.5', 'abc', '100000']) cases.push([train('--beam', v), int('beam', 1, 256)]);
  for (const v of ['0', 'abc', 'Infinity']) cases.push([['train', ...S.slice(0, -2), '--epochs', v], /--epochs must be a positive number/]);
  for (const v of ['1.5', '-0.1', 'abc', '1']) cases.push([train('--dropout', v), /--dropout must be in \[0, 1\)/]);
  for (const v of ['0', '-1', 'Infinity', 'NaN']) cases.push([train('--lr', v), /--lr must be a positive number/]);
  cases.push(
    [train('--d-model', '33'), /--d-model 33 is not divisible by --heads 2/],
    [train('--heads', '3'), /--d-model 32 is not divisible by --heads 3/],
    [train('--preset', 'huge'), /--preset must be tiny, small or base/],
    [train('--sparsify', 'mlp'), /--sparsify must be ffn, attention or all/],
    [train('--recipe', ''), /--recipe must not be empty/],
    [train('--data', ''), /--data must not be empty/],
    [train('--data', file), /--data is a file, not a directory/],
    [train('--src', ''), /--src must be a language suffix/],
    [train('--src', '../x'), /--src must be a language suffix/],
    [train('--tgt', 'a/b'), /--tgt must be a language suffix/],
    [train('--src', 'de', '--tgt', 'en'), /the built-in corpus is en → de only/],
    [train('--out', file), /--out is a file, not a folder/],
    [train('--out', join(file, 'sub')), /--out .*lies below a file/],
    [train('--out', ''), /--out must not be empty/],
    [['train', '--resume', file], /--resume is a file, not a folder/],
    [['translate', '--run', noRun, '--beam', '2.5'], int('beam', 1, 256)],
    [['translate', '--run', noRun, '--beam', '0'], int('beam', 1, 256)],
    [['translate', '--run', noRun, '--beam', '-1'], int('beam', 1, 256)],
    [['translate', '--run', noRun, '--length-penalty', 'abc'], /--length-penalty must be a finite number/],
    [['translate', '--run', noRun, '--length-penalty', 'Infinity'], /--length-penalty must be a finite number/],
    [['translate', '--run', noRun, '--length-penalty', ''], /--length-penalty must be a finite number/],
    [['translate', '--run', tmp, '--input', '/nope/missing.en'], /--input file not found/],
    [['translate', '--run', tmp, '--input', tmp], /--input is not a regular file/],
    [['translate', '--run', ''], /--run must not be empty/],
    [['export', '--run', file, '--out', join(tmp, 'model.safetensors')], /--run is a file, not a folder/],
    [['export', '--run', tmp, '--out', tmp], /--out is a folder, expected a file name/],
    [['export', '--run', tmp, '--out', join(file, 'model.safetensors')], /--out lies below a file/],
    [['translate', '--run', noRun, '--threads', '0'], int('threads', 1, 4 * availableParallelism())],
    [['evaluate', '--run', noRun, '--src', file, '--ref', file, '--beam', '2.5'], int('beam', 1, 256)],
    [['evaluate', '--run', noRun, '--src', '/nope/missing.en', '--ref', file], /--src file not found/],
    [['evaluate', '--hyp', '/nope/missing.de', '--ref', file], /--hyp file not found/],
    [['evaluate', '--hyp', file, '--ref', tmp], /--ref is not a regular file/],
    [['evaluate', '--hyp', file, '--ref', file, '--beam', '4'], /--hyp scores an existing file; --beam would be ignored/],
    [['evaluate', '--hyp', file, '--ref', file, '--run', tmp], /--hyp scores an existing file; --run would be ignored/],
    [['download', '--dir', file], /--dir is a file, not a folder/],
    [['compare', '--steps', '2.5'], int('steps', 1)],
    [['compare', '--recipes', ''], /--recipes must not be empty/],
  );
  return cases;
}

/** Runs the CLI, sends SIGINT once stdout matches `when`, and resolves with its exit code and output. */
function interruptWhen(args: string[], when: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('node', [join(root, 'dist/examples/transformer-translate/cli.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!sent && when.test(stdout)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}
