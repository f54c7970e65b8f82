import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, saveSafetensors } from '../../src/index.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { loadRun, type RunConfig } from '../../examples/transformer-translate/model-io.js';
import { evaluateRun, train, type Splits } from '../../examples/transformer-translate/train.js';
import { translateAll } from '../../examples/transformer-translate/translate.js';

const root = resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const corpus = generateBuiltinCorpus({ seed: 5, train: 20000, val: 100, test: 100 });
const splits: Splits = { ...corpus, name: 'builtin-small' };

/** The tiny preset's model and schedule (dropout on in the resume test, to cover its RNG state). */
function config(steps: number, recipe: string, dropout = 0): RunConfig {
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

  it('a NaN loss stops the run with a message naming the step; the last good checkpoint stays intact', async () => {
    const dir = join(tmp, 'nan');
    await train({ config: config(24, 'ste:1:8', 0.1), out: dir, log: quiet, json: true, splits, stopAfter: 5 });
    // Poison one weight inside the saved checkpoint, then resume from it.
    const path = join(dir, 'checkpoint.safetensors');
    const { tensors, bytes, metadata } = loadSafetensors(path);
    tensors.get('decoderNorm.weight')!.data[0] = NaN;
    saveSafetensors(path, [...tensors, ...bytes], metadata);
    const before = readFileSync(path);
    await expect(train({ config: config(24, 'ste:1:8', 0.1), out: dir, resume: true, log: quiet, json: true, splits })).rejects.toThrow(/step 5: loss became NaN; training stopped/);
    expect(readFileSync(path).equals(before)).toBe(true);
  }, 120_000);

  it('trains, saves, reloads, translates and evaluates above a BLEU floor', async () => {
    const dir = join(tmp, 'run');
    const r = await train({ config: config(280, 'pmd:1:8,dense=28,finetune=84'), out: dir, log: quiet, json: true, splits });
    const e = evaluateRun(r.run, r.state, splits.test.slice(0, 60));
    // The default main job reaches ~90 val BLEU by step 550; this short run is checked against a floor.
    expect(e.scores.bleu).toBeGreaterThan(40);
    expect(e.flops.relativeToDense).toBeLessThan(1);
    expect(e.flops.relativeToDense).toBeGreaterThan(0.5);
    const { run } = loadRun(dir);
    const src = splits.test.slice(0, 5).map((p) => p.en);
    expect(translateAll(run.model, run.tokenizer, src)).toEqual(translateAll(r.run.model, r.run.tokenizer, src));
    const beam = translateAll(run.model, run.tokenizer, src, { beam: 3 });
    expect(beam.length).toBe(5);
    expect(existsSync(join(dir, 'metrics.jsonl'))).toBe(true);
    // The CLI translates and evaluates the saved run.
    const cli = join(root, 'dist/examples/transformer-translate/cli.js');
    const out = execFileSync('node', [cli, 'translate', '--run', dir], { input: `${src.join('\n')}\n`, encoding: 'utf8' });
    expect(out.trimEnd().split('\n')).toEqual(translateAll(run.model, run.tokenizer, src));
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
    ];
    for (const [args, re] of cases) {
      const r = spawnSync('node', [cli, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
    const help = execFileSync('node', [cli, 'train', '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/--recipe STR/);
    expect(help).toMatch(/N kept of every M/);
  });

  it('Ctrl-C (SIGINT) saves a checkpoint at the next step boundary and exits cleanly; the run resumes from it', async () => {
    const dir = join(tmp, 'sigint');
    const first = await interruptWhen(['train', '--steps', '5000', '--threads', '1', '--json', '--out', dir], /"step":25,/);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const m = /interrupted: checkpoint saved at step (\d+)/.exec(first.stdout);
    expect(m, first.stdout).not.toBeNull();
    const saved = Number(m![1]);
    expect(saved).toBeGreaterThanOrEqual(25);
    expect(saved).toBeLessThan(5000);
    expect(loadRun(dir).state.step).toBe(saved);
    // --resume continues from that step; a second Ctrl-C stops it again with a later checkpoint.
    const second = await interruptWhen(['train', '--resume', dir, '--threads', '1', '--json'], new RegExp(`resuming .* at step ${saved}`));
    expect(second.code).toBe(0);
    const again = Number(/interrupted: checkpoint saved at step (\d+)/.exec(second.stdout)?.[1]);
    expect(again).toBeGreaterThan(saved);
    expect(loadRun(dir).state.step).toBe(again);
  }, 240_000);
});

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
