import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, saveSafetensors } from '../../src/index.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { loadRun, type RunConfig } from '../../examples/transformer-translate/model-io.js';
import { train, type Splits } from '../../examples/transformer-translate/train.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-masks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const splits: Splits = { ...generateBuiltinCorpus({ seed: 2, train: 1500, val: 20, test: 20 }), name: 'builtin-masks' };
const config: RunConfig = {
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
    const meta = (h as unknown as { __metadata__: { state: string } }).__metadata__;
    const masks = (JSON.parse(meta.state) as { masks: Record<string, unknown> }).masks;
    expect(Object.values(masks)).toEqual(r.run.sparse.map(() => ({ key: 'nm:1:8:0', stored: true })));
    const back = loadRun(dir).run.sparse;
    r.run.sparse.forEach((l, i) => expect(back[i]!.keep).toEqual(l.keep));
  }, 120_000);

  it('checkpoints written before masks were tensors (JSON number arrays) still load, to the same masks', () => {
    const { tensors, bytes, metadata } = loadSafetensors(ckpt);
    const state = JSON.parse(metadata.state!) as { masks: Record<string, { key: string; stored?: boolean; keep?: number[] | null }> };
    for (const [layer, m] of Object.entries(state.masks)) state.masks[layer] = { key: m.key, keep: Array.from(bytes.get(`${layer}.weight_mask`)!.data) };
    saveSafetensors(ckpt, tensors, { ...metadata, state: JSON.stringify(state) });
    expect(Object.keys(header(ckpt)).some((k) => k.endsWith('weight_mask'))).toBe(false);
    const fresh = loadRun(dir).run.sparse;
    fresh.forEach((l) => expect(Uint8Array.from(l.keep!)).toEqual(bytes.get(`${l.path}.weight_mask`)!.data));
  });

  it('a checkpoint missing a mask tensor fails with a message naming the layer and asking to re-save', () => {
    const { tensors, metadata } = loadSafetensors(ckpt);
    const state = JSON.parse(metadata.state!) as { masks: Record<string, { key: string; stored?: boolean; keep?: number[] | null }> };
    for (const m of Object.values(state.masks)) {
      m.stored = true;
      delete m.keep;
    }
    saveSafetensors(ckpt, tensors, { ...metadata, state: JSON.stringify(state) });
    expect(() => loadRun(dir)).toThrow(/the mask of sparse layer 'encoder\.0\.ffn\.fc1' is missing \(expected the U8 tensor 'encoder\.0\.ffn\.fc1\.weight_mask'\); re-save/);
  });
});
