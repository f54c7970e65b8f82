import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, loadSafetensors, saveSafetensors } from '../../src/index.js';
import { BpeTokenizer } from '../../src/text/bpe.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { buildTranslationRun, loadTranslationRun, saveTranslationRun, type TranslationConfig } from '../../src/index.js';
import { train, type Splits } from '../../examples/transformer-translate/train.js';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/examples/transformer-translate/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const corpus = generateBuiltinCorpus({ seed: 9, train: 3000, val: 20, test: 20 });
const splits: Splits = { ...corpus, name: 'builtin-tiny' };

function config(steps: number): TranslationConfig {
  return {
    model: { srcVocab: 0, tgtVocab: 0, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 48, shareEmbeddings: true, tieOutput: true, seed: 3 },
    recipe: 'ste:1:8', sparsify: 'ffn', steps, batchTokens: 400, lr: 3e-3, warmup: 10, seed: 3, labelSmoothing: 0.1, maxLen: 40, data: 'builtin', merges: 50,
  };
}

/** A saved, untrained run directory (no training needed to exercise the loaders). */
function savedRun(name: string): string {
  const dir = join(tmp, name);
  const run = buildTranslationRun(config(10), BpeTokenizer.train(splits.train.slice(0, 200).flatMap((p) => [p.en, p.de]), 50));
  saveTranslationRun(dir, run, { step: 0, epoch: 0, batchInEpoch: 0, flops: null, elapsedMs: 0 });
  return dir;
}

function cliRun(args: string[], input = 'A dog runs.\n'): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { input, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function expectCleanRefusal(r: { status: number | null; stderr: string }, re: RegExp): void {
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(re);
  expect(r.stderr).not.toMatch(/\n\s+at |SyntaxError|TypeError/);
  expect(r.stderr.trim().split('\n').length).toBe(1);
}

describe('damaged run directories', () => {
  it("a training state that is broken JSON, '{}' or 'null' is a DataError naming the checkpoint, and the CLI prints one line", () => {
    for (const [label, state, re] of [
      ['broken', '{"step": 1, ', /metadata 'state' is not valid JSON/],
      ['empty', '{}', /metadata 'state' is not an nmgrad training state: 'step' must be an integer/],
      ['null', 'null', /metadata 'state' is not an nmgrad training state: expected an object/],
      ['past-end', JSON.stringify({ step: 99, epoch: 0, batchInEpoch: 0, dropoutRngs: [], masks: {}, flops: null, elapsedMs: 0 }), /'step' 99 is beyond the run's 10 steps/],
    ] as const) {
      const dir = savedRun(`state-${label}`);
      const ckpt = join(dir, 'checkpoint.safetensors');
      const { tensors, bytes, metadata } = loadSafetensors(ckpt);
      saveSafetensors(ckpt, [...tensors, ...bytes], { ...metadata, state });
      expect(() => loadTranslationRun(dir), label).toThrow(DataError);
      expect(() => loadTranslationRun(dir), label).toThrow(re);
      expectCleanRefusal(cliRun(['translate', '--run', dir]), re);
    }
  });

  it("a config.json that is not an object, or whose recipe is not a string, is refused in one line", () => {
    for (const [label, config, re] of [
      ['array', '[1]', /config.json: must be a JSON object \(the run's config\)/],
      ['null', 'null', /config.json: must be a JSON object/],
      ['recipe', null, /recipe: must be a string such as 'pmd:1:8', got 5/],
    ] as const) {
      const dir = savedRun(`config-${label}`);
      const path = join(dir, 'config.json');
      writeFileSync(path, config ?? JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), recipe: 5 }));
      expectCleanRefusal(cliRun(['translate', '--run', dir]), re);
    }
  });

  it('translate and evaluate refuse a checkpoint whose tensor bytes were flipped', () => {
    const dir = savedRun('flipped');
    const ckpt = join(dir, 'checkpoint.safetensors');
    const bytes = readFileSync(ckpt);
    const mid = Math.floor(bytes.length * 0.75);
    for (let i = mid; i < mid + 64; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(ckpt, bytes);
    writeFileSync(join(tmp, 'src.en'), 'A dog runs.\n');
    writeFileSync(join(tmp, 'ref.de'), 'Ein Hund rennt.\n');
    expectCleanRefusal(cliRun(['translate', '--run', dir]), /checkpoint.safetensors: data section checksum mismatch/);
    expectCleanRefusal(cliRun(['evaluate', '--run', dir, '--src', join(tmp, 'src.en'), '--ref', join(tmp, 'ref.de')]), /data section checksum mismatch/);
    expectCleanRefusal(cliRun(['train', '--resume', dir]), /data section checksum mismatch/);
  });
});

describe('resume after a kill', () => {
  it('removes the stale temp file of a killed checkpoint write and cuts metrics.jsonl back to the checkpoint step', async () => {
    const dir = join(tmp, 'killed');
    const quiet = (): void => {};
    const first = await train({ config: config(30), out: dir, log: quiet, json: true, splits, stopAfter: 13 });
    expect(first.state.step).toBe(13);
    // What a `kill -9` at step ~27 leaves: records logged after the checkpoint, a half-written
    // line, and the temp file of the checkpoint write it was in the middle of.
    appendFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: 25, loss: 1 })}\n{"step":2`);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = join(dir, `.checkpoint.safetensors.tmp-${dead}-1700000000000`);
    writeFileSync(stale, 'partial');
    const logs: string[] = [];
    const resumed = await train({ config: config(30), out: dir, resume: true, log: (s) => logs.push(s), json: true, splits });
    expect(resumed.state.step).toBe(30);
    expect(existsSync(stale)).toBe(false);
    expect(logs.some((l) => l.includes('left by an interrupted checkpoint write'))).toBe(true);
    const steps = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([25, 30]);
  }, 120_000);
});

describe('bad values reach the CLI as errors naming them', () => {
  it('an empty val split is refused before training (it would report BLEU 0 of nothing)', () => {
    const data = join(tmp, 'no-val');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'train.en'), `${splits.train.slice(0, 50).map((p) => p.en).join('\n')}\n`);
    writeFileSync(join(data, 'train.de'), `${splits.train.slice(0, 50).map((p) => p.de).join('\n')}\n`);
    writeFileSync(join(data, 'val.en'), '\n\n');
    writeFileSync(join(data, 'val.de'), '\n\n');
    const r = cliRun(['train', '--data', data, '--steps', '2', '--out', join(tmp, 'no-val-run')]);
    expectCleanRefusal(r, /val split has no sentence pairs \(2 lines, 2 empty pairs skipped\): nothing to score/);
    expect(existsSync(join(tmp, 'no-val-run', 'checkpoint.safetensors'))).toBe(false);
  });

  it('evaluate with an empty --ref file is refused (BLEU of nothing)', () => {
    writeFileSync(join(tmp, 'empty.de'), '');
    writeFileSync(join(tmp, 'hyp.de'), '');
    const r = cliRun(['evaluate', '--hyp', join(tmp, 'hyp.de'), '--ref', join(tmp, 'empty.de')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--ref .*empty\.de is empty: nothing to score/);
  });

  it("--steps 0.5 is a --steps error, not a recipe error", () => {
    const r = cliRun(['train', '--steps', '0.5']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--steps .*0\.5/);
    expect(r.stderr).not.toMatch(/recipe/);
  });
});

describe('Ctrl-C', () => {
  it('compare stops with the checkpoint saved and exits 130 (128 + SIGINT), writing no results', async () => {
    const out = join(tmp, 'compare');
    const tinyModel = ['--layers', '1', '--d-model', '16', '--heads', '2', '--ffn', '32', '--merges', '50', '--batch-tokens', '300'];
    const child = spawn(process.execPath, [cli, 'compare', '--recipes', 'dense', '--steps', '5000', ...tinyModel, '--threads', '1', '--json', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && /"step":25,/.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(stdout).toMatch(/interrupted: checkpoint saved at step \d+/);
    const cells = readdirSync(out).filter((d) => existsSync(join(out, d, 'checkpoint.safetensors')));
    expect(cells.length, readdirSync(out).join(', ')).toBe(1);
    expect(existsSync(join(out, 'results.json'))).toBe(false);
  }, 180_000);
});
