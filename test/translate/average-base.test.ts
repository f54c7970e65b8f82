import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, noGrad } from '../../src/index.js';
import { BpeTokenizer } from '../../src/text/bpe.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { averageRun, averageWeights, listSnapshots, pruneSnapshots, saveCheckpoint, SNAPSHOT_DIR } from '../../src/index.js';
import { buildTranslationRun, loadTranslationRun, readRunConfig, saveTranslationRun, type TranslationConfig } from '../../src/index.js';
import { PRESETS, train, type Splits } from '../../examples/transformer-translate/train.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-avg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const corpus = generateBuiltinCorpus({ seed: 9, train: 600, val: 12, test: 12 });
const splits: Splits = { ...corpus, name: 'builtin-tiny' };
const tok = BpeTokenizer.train(splits.train.slice(0, 200).flatMap((p) => [p.en, p.de]), 50);

function tinyConfig(steps: number): TranslationConfig {
  return {
    model: { srcVocab: 0, tgtVocab: 0, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 48, shareEmbeddings: true, tieOutput: true, seed: 3 },
    recipe: 'dense', sparsify: 'ffn', steps, batchTokens: 300, lr: 3e-3, warmup: 10, seed: 3, labelSmoothing: 0.1, maxLen: 40, data: 'builtin', merges: 50,
  };
}

const weights = (m: { namedParameters(): [string, { data: Float32Array }][] }): Map<string, Float32Array> => new Map(m.namedParameters().map(([n, p]) => [n, Float32Array.from(p.data)]));

describe('checkpoint averaging', () => {
  it('keeps the last K snapshots and averages the last ones to the float mean, in a loadable run folder', () => {
    const dir = join(tmp, 'avg');
    const run = buildTranslationRun(tinyConfig(10), tok);
    const state = { step: 3, epoch: 0, batchInEpoch: 3, flops: null, elapsedMs: 0 };
    saveTranslationRun(dir, run, state);
    const seen: Map<string, Float32Array>[] = [];
    for (const step of [1, 2, 3, 4]) {
      // Distinct weights per snapshot: every parameter shifted by a step-dependent amount.
      noGrad(() => run.model.parameters().forEach((p, i) => p.data.forEach((v, j) => (p.data[j] = v + (((i + j) % 7) - 3) * 0.01 * step))));
      seen.push(weights(run.model));
      mkdirSync(join(dir, SNAPSHOT_DIR), { recursive: true });
      saveCheckpoint(join(dir, SNAPSHOT_DIR, `step-${step}.safetensors`), run.model);
      pruneSnapshots(dir, 3);
    }
    expect(listSnapshots(dir).map((s) => s.step)).toEqual([2, 3, 4]);
    const a = averageRun(dir, 2);
    expect(a.steps).toEqual([3, 4]);
    const averaged = weights(loadTranslationRun(a.out).run.model);
    for (const [name, w] of averaged) {
      const x = seen[2]!.get(name)!, y = seen[3]!.get(name)!;
      expect(w, name).toEqual(Float32Array.from(x, (v, i) => (v + y[i]!) / 2));
    }
    // Three checkpoints: the float64 mean, rounded once.
    const three = averageWeights(listSnapshots(dir).map((s) => s.path));
    for (const [name, t] of three) {
      const [x, y, z] = [seen[1]!.get(name)!, seen[2]!.get(name)!, seen[3]!.get(name)!];
      expect(t.data, name).toEqual(Float32Array.from(x, (v, i) => (v + y[i]! + z[i]!) / 3));
    }
    expect(() => averageRun(dir, 4)).toThrow(DataError);
    expect(() => averageRun(dir, 4)).toThrow(/holds 3 kept checkpoints .*fewer than the 4 to average; train with --keep 4/);
  });

  it('train --keep / select best: snapshots at every checkpoint and best/ as a run folder', async () => {
    const out = join(tmp, 'trained');
    const r = await train({ config: tinyConfig(100), out, log: () => {}, json: false, splits, tokenizer: tok, keep: 2, evalEvery: 50, evalSentences: 6, selectBest: true });
    expect(r.stopped).toBe('done');
    expect(readdirSync(join(out, SNAPSHOT_DIR)).sort()).toEqual(['step-100.safetensors', 'step-50.safetensors']);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; valBleu?: number; best?: boolean });
    const evals = metrics.filter((m) => m.valBleu !== undefined);
    expect(evals.map((m) => m.step)).toEqual([50, 100]);
    const bestStep = evals.filter((m) => m.best).at(-1)!.step;
    expect(evals[0]!.best).toBe(true);
    expect(loadTranslationRun(join(out, 'best')).state.step).toBe(bestStep);
    // The last snapshot is the final checkpoint's weights.
    expect(averageWeights([join(out, SNAPSHOT_DIR, 'step-100.safetensors')]).get('srcEmbed.weight')!.data).toEqual(weights(loadTranslationRun(out).run.model).get('srcEmbed.weight'));
  });
});

describe('base preset', () => {
  it('builds, trains one step and its config round-trips through config.json', async () => {
    const p = PRESETS.base;
    expect([p.dModel, p.heads, p.ffn, p.encoderLayers, p.decoderLayers, p.dropout]).toEqual([256, 4, 1024, 3, 3, 0.2]);
    const config: TranslationConfig = {
      model: { srcVocab: 0, tgtVocab: 0, dModel: p.dModel, heads: p.heads, ffn: p.ffn, encoderLayers: p.encoderLayers, decoderLayers: p.decoderLayers, dropout: p.dropout, maxLen: 128, shareEmbeddings: true, tieOutput: true, seed: 1 },
      recipe: 'dense', sparsify: 'ffn', steps: 1, batchTokens: 300, lr: p.lr, warmup: p.warmup, seed: 1, labelSmoothing: 0.1, maxLen: 100, data: 'builtin', merges: 50,
    };
    const out = join(tmp, 'base');
    const before = weights(buildTranslationRun(config, tok).model);
    const r = await train({ config, out, log: () => {}, json: false, splits, tokenizer: tok });
    expect(r.state.step).toBe(1);
    expect(Number.isFinite(r.lastLoss)).toBe(true);
    expect(readRunConfig(out)).toEqual(config);
    const loaded = loadTranslationRun(out);
    expect(loaded.run.model.config).toMatchObject({ dModel: 256, heads: 4, ffn: 1024, encoderLayers: 3, decoderLayers: 3, dropout: 0.2 });
    // The step changed the weights.
    const after = weights(loaded.run.model);
    expect([...after].some(([n, w]) => w.some((v, i) => v !== before.get(n)![i]))).toBe(true);
    expect(existsSync(join(out, SNAPSHOT_DIR))).toBe(false);
  });
});
