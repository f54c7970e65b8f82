import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BpeTokenizer } from '../../src/text/bpe.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { buildTranslationRun, loadTranslationRun, saveTranslationRun, type TranslationConfig } from '../../src/index.js';
import { translateAll } from '../../examples/transformer-translate/translate.js';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/examples/transformer-translate/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-stream-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const corpus = generateBuiltinCorpus({ seed: 4, train: 400, val: 1, test: 1 });
const sentences = corpus.train.map((p) => p.en);

/** An untrained, small run: decoding cost is what matters here, not quality. */
const runDir = join(tmp, 'run');
{
  const config: TranslationConfig = {
    model: { srcVocab: 0, tgtVocab: 0, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 24, shareEmbeddings: true, tieOutput: true, seed: 3 },
    recipe: 'dense', sparsify: 'ffn', steps: 1, batchTokens: 400, lr: 1e-3, warmup: 1, seed: 3, labelSmoothing: 0.1, maxLen: 24, data: 'builtin', merges: 50,
  };
  const run = buildTranslationRun(config, BpeTokenizer.train(corpus.train.flatMap((p) => [p.en, p.de]), 50));
  saveTranslationRun(runDir, run, { step: 0, epoch: 0, batchInEpoch: 0, flops: null, elapsedMs: 0 });
}

describe('translate CLI streams', () => {
  it('writes the first batch while stdin is still open, then every line in input order', async () => {
    const child = spawn(process.execPath, [cli, 'translate', '--run', runDir, '--threads', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const first = sentences.slice(0, 70);
    child.stdin.write(`${first.join('\n')}\n`);
    // 64 lines make a batch: their translations must arrive before the input ends.
    const deadline = Date.now() + 60_000;
    while (out.split('\n').length - 1 < 64 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const early = out.split('\n').length - 1;
    const rest = sentences.slice(70, 150);
    child.stdin.end(`${rest.join('\n')}`); // the last line has no newline: still translated
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code).toBe(0);
    expect(early).toBeGreaterThanOrEqual(64);
    const { run } = loadTranslationRun(runDir);
    const all = [...first, ...rest];
    expect(out.split('\n').slice(0, -1)).toEqual(translateAll(run.model, run.tokenizer, all));
    // Over-long lines are reported by their line number in the whole input, not in their batch.
    const long = all.flatMap((s, i) => (run.tokenizer.encode(s).length > run.model.config.maxLen ? [i + 1] : []));
    expect(long.some((n) => n > 64)).toBe(true);
    expect(err.trimEnd().split('\n').map((l) => Number(/input line (\d+) has/.exec(l)?.[1]))).toEqual(long);
  }, 120_000);

  it('memory is bounded by a batch, not the input: 40 MB of input translates inside a 32 MB heap', async () => {
    // Reading the input whole needs the 40 MB text on the heap at once, and dies here of OOM.
    const path = await generate('large.en', 40e6);
    const child = spawn(process.execPath, ['--max-old-space-size=32', cli, 'translate', '--run', runDir, '--threads', '1', '--input', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      for (const b of d) if (b === 0x0a) lines++;
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(err.split('\n').filter((l) => l !== '' && !/warning: input line \d+ has/.test(l)).join('\n').slice(0, 500)).toBe('');
    expect(code).toBe(0);
    expect(lines).toBe(Math.ceil(40e6 / 50_001));
  }, 240_000);
});

/** Writes long lines of corpus text (≈50 KB each) up to `bytes`; returns the path. */
async function generate(name: string, bytes: number): Promise<string> {
  const path = join(tmp, name);
  const out = createWriteStream(path);
  let line = '';
  for (let i = 0; line.length < 50_000; i++) line += `${sentences[i % sentences.length]} `;
  line = line.slice(0, 50_000);
  for (let written = 0; written < bytes; written += line.length + 1) {
    if (!out.write(`${line}\n`)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  return path;
}
