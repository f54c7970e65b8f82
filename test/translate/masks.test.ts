import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, saveSafetensors } from '../../src/index.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { loadTranslationRun, type TranslationConfig } from '../../src/index.js';
import { train, type Splits } from '../../examples/transformer-translate/train.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-masks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const splits: Splits = { ...generateBuiltinCorpus({ seed: 2, train: 1500, val: 20, test: 20 }), name: 'builtin-masks' };
const config: TranslationConfig = {
  model: { srcVocab: 0, tgtVocab: 0, dModel: 32, heads: 2, ffn: 64, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 64, shareEmbeddings: true, tieOutput: true, seed: 2 },
  recipe: 'srste:1:8', sparsify: 'ffn', steps: 6, batchTokens: 600, lr: 3e-3, warmup: 10, seed: 2, labelSmoothing: 0.1, maxLen: 60, data: 'builtin', merges: 100,
};

function header(path: string): Record<string, { dtype: string; shape: number[] }> {
  const b = readFileSync(path);
  return JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8'));
}

describe('sparsity masks in run checkpoints', () => {
  const dir = join(tmp, 'run');
  const ckpt = join(dir, 'checkpoint.safetensors');

  it('are U8 [out, in] tensors named <layer>.weight_mask, not JSON in the metadata', async () => {
    const r = await train({ config, out: dir, log: () => {}, json: true, splits });
    const h = header(ckpt);
    expect(r.run.sparse.length).toBe(4);
    for (const l of r.run.sparse) {
      expect(h[`${l.path}.weight_mask`]).toMatchObject({ dtype: 'U8', shape: [...l.weight.shape] });
      expect(loadSafetensors(ckpt).bytes.get(`${l.path}.weight_mask`)!.data).toEqual(Uint8Array.from(l.keep!));
    }
    const meta = (h as unknown as { __metadata__: Record<string, string> }).__metadata__;
    const entries = (JSON.parse(meta['nmgrad.sparse']!) as { layers: Record<string, { key: string; mask: boolean; step: number; recipe: { kind: string; n: number; m: number } }> }).layers;
    expect(Object.keys(entries)).toEqual(r.run.sparse.map((l) => l.path));
    for (const e of Object.values(entries)) expect(e).toMatchObject({ key: 'nm:1:8:0', mask: true, step: 5, recipe: { kind: 'srste', n: 1, m: 8 } });
    const back = loadTranslationRun(dir).run.sparse;
    r.run.sparse.forEach((l, i) => expect(back[i]!.keep).toEqual(l.keep));
  }, 120_000);

  it('checkpoints written before the sparse state had its own entry (masks in the training state, as tensors or JSON numbers) still load, to the same masks', () => {
    const { tensors, bytes, metadata } = loadSafetensors(ckpt);
    const sparse = (JSON.parse(metadata['nmgrad.sparse']!) as { layers: Record<string, { key: string }> }).layers;
    const legacy = { ...metadata };
    delete legacy['nmgrad.sparse'];
    delete legacy['nmgrad.rng'];
    const state = JSON.parse(metadata.state!) as Record<string, unknown>;
    // Masks as U8 tensors, listed in the state.
    saveSafetensors(ckpt, [...tensors, ...bytes], { ...legacy, state: JSON.stringify({ ...state, dropoutRngs: [], masks: Object.fromEntries(Object.entries(sparse).map(([l, e]) => [l, { key: e.key, stored: true }])) }) });
    loadTranslationRun(dir).run.sparse.forEach((l) => expect(Uint8Array.from(l.keep!)).toEqual(bytes.get(`${l.path}.weight_mask`)!.data));
    // Masks as JSON number arrays.
    saveSafetensors(ckpt, tensors, { ...legacy, state: JSON.stringify({ ...state, dropoutRngs: [], masks: Object.fromEntries(Object.entries(sparse).map(([l, e]) => [l, { key: e.key, keep: Array.from(bytes.get(`${l}.weight_mask`)!.data) }])) }) });
    expect(Object.keys(header(ckpt)).some((k) => k.endsWith('weight_mask'))).toBe(false);
    loadTranslationRun(dir).run.sparse.forEach((l) => expect(Uint8Array.from(l.keep!)).toEqual(bytes.get(`${l.path}.weight_mask`)!.data));
    saveSafetensors(ckpt, [...tensors, ...bytes], metadata);
  });

  it('a checkpoint missing a mask tensor fails with a message naming the layer', () => {
    const { tensors, bytes, metadata } = loadSafetensors(ckpt);
    saveSafetensors(ckpt, [...tensors, ...[...bytes].filter(([n]) => n !== 'encoder.0.ffn.fc1.weight_mask')], metadata);
    expect(() => loadTranslationRun(dir)).toThrow(/the mask of sparse layer 'encoder\.0\.ffn\.fc1' is missing \(expected the U8 tensor 'encoder\.0\.ffn\.fc1\.weight_mask'\)/);
  });
});
