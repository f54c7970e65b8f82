import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DataError, NMLinear, Recipe, Rng, SparseLinear, SparsityConfigError, Transformer, decodeCompressedInto, decodeSafetensors, encodeCompressed, encodeSafetensors,
  exportCompressed, loadCompressed, loadCompressedTransformer, noGrad, saveCheckpoint, sparsify, type Tensor,
} from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'nmgrad-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = { srcVocab: 20, tgtVocab: 20, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 2, dropout: 0, maxLen: 16, seed: 5 };

/** FFN layers hard 1:8 (ste), attention layers in a soft pmd phase (α > 0): both export paths. */
function sparseModel(): { model: Transformer; hard: SparseLinear[]; soft: SparseLinear[] } {
  const model = new Transformer(config);
  const byName = (names: string[]): SparseLinear[] => names.map((n) => new Map(model.namedModules()).get(n) as SparseLinear);
  const hard = byName(sparsify(model, Recipe.parse('ste:1:8', { steps: 10 }), { layers: 'ffn' }));
  const soft = byName(sparsify(model, Recipe.parse('pmd:2:4,dense=0,w=0.25,interval=2', { steps: 20 }), { layers: 'attention' }));
  model.setStep(3);
  return { model: model.eval(), hard, soft };
}

const src = Int32Array.from([4, 5, 6, 7, 0, 8, 9, 3, 0, 0]);
const tgt = Int32Array.from([1, 4, 4, 5, 1, 6, 7, 8]);
const logits = (m: Transformer): Tensor => noGrad(() => m.forward(src, [2, 5], tgt, [2, 4], 0));

function header(bytes: Uint8Array): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8'));
}

describe('compressed N:M export', () => {
  it('stores hard N:M layers as F32 values + U8 offsets, soft ones as effective weights; data bytes match the closed form', () => {
    const { model, hard, soft } = sparseModel();
    const { bytes, layers, denseWeightBytes } = encodeCompressed(model);
    const h = header(bytes);
    expect(Object.keys(layers).sort()).toEqual(hard.map((l) => l.path).sort());
    for (const l of hard) {
      const [out, inF] = l.weight.shape as [number, number];
      expect(layers[l.path]).toEqual({ n: 1, m: 8, shape: [out, inF] });
      expect(h[`${l.path}.weight.values`]).toMatchObject({ dtype: 'F32', shape: [out, inF / 8] });
      expect(h[`${l.path}.weight.indices`]).toMatchObject({ dtype: 'U8', shape: [out, inF / 8] });
      expect(h[`${l.path}.weight`]).toBeUndefined();
      // The stored values are the latent weights at the kept positions of the layer's mask.
      const [vb] = h[`${l.path}.weight.values`]!.data_offsets;
      const [ib] = h[`${l.path}.weight.indices`]!.data_offsets;
      const start = bytes.length - (h[Object.keys(h).at(-1)!]!.data_offsets[1]);
      const values = new Float32Array(bytes.slice(start + vb, start + vb + (out * inF) / 2).buffer);
      const offsets = bytes.subarray(start + ib, start + ib + (out * inF) / 8);
      for (let e = 0; e < offsets.length; e++) {
        const flat = e * 8 + offsets[e]!;
        expect(l.keep![flat]).toBe(1);
        expect(values[e]).toBe(l.weight.data[flat]);
      }
    }
    for (const l of soft) {
      const [vb, ve] = h[`${l.path}.weight`]!.data_offsets;
      expect(ve - vb).toBe(l.weight.size * 4);
    }
    expect(Object.keys(h).some((k) => k.startsWith('optimizer.'))).toBe(false);
    const params = model.namedParameters();
    expect(denseWeightBytes).toBe(params.reduce((s, [, p]) => s + p.size * 4, 0));
    const hardElems = hard.reduce((s, l) => s + l.weight.size, 0);
    const dataBytes = Object.values(h).reduce((s, v) => (v.data_offsets ? s + v.data_offsets[1] - v.data_offsets[0] : s), 0);
    expect(dataBytes).toBe(denseWeightBytes - hardElems * 4 + (hardElems / 8) * (4 + 1));
  });

  it('a loaded export gives bit-identical logits, with NMLinear at the hard sites; a Transformer rebuilds from the file alone', () => {
    const { model, hard } = sparseModel();
    const want = logits(model);
    const path = join(dir, 'model.safetensors');
    const r = exportCompressed(path, model, { metadata: { note: 'hello' } });
    expect(r.bytes).toBe(readFileSync(path).length);
    const fresh = new Transformer({ ...config, seed: 99 });
    expect(loadCompressed(path, fresh).note).toBe('hello');
    const mods = new Map(fresh.namedModules());
    for (const l of hard) expect(mods.get(l.path)).toBeInstanceOf(NMLinear);
    expect(Buffer.from(logits(fresh).data.buffer).equals(Buffer.from(want.data.buffer))).toBe(true);
    const { model: rebuilt, metadata } = loadCompressedTransformer(path);
    expect(metadata.note).toBe('hello');
    expect(rebuilt.training).toBe(false);
    expect(Buffer.from(logits(rebuilt).data.buffer).equals(Buffer.from(want.data.buffer))).toBe(true);
    // Exporting the loaded model again stores the same tensors and metadata.
    const again = decodeSafetensors(encodeCompressed(rebuilt, { note: 'hello' }).bytes);
    const first = decodeSafetensors(readFileSync(path));
    expect(again.metadata).toEqual(first.metadata);
    expect(new Map([...again.tensors].map(([k, t]) => [k, Array.from(t.data)]))).toEqual(new Map([...first.tensors].map(([k, t]) => [k, Array.from(t.data)])));
    expect(again.bytes).toEqual(first.bytes);
  });

  it('refuses training checkpoints, missing or corrupt compressed tensors and a wrong architecture, changing nothing', () => {
    const { model, hard } = sparseModel();
    const ckpt = join(dir, 'ckpt.safetensors');
    saveCheckpoint(ckpt, model);
    expect(() => loadCompressed(ckpt, new Transformer(config))).toThrow(/not a compressed nmgrad export \(format 'nmgrad-checkpoint-v1'/);
    const { bytes } = encodeCompressed(model);
    const target = new Transformer(config);
    const before = target.namedParameters().map(([, p]) => Float32Array.from(p.data));
    const name = `${hard[0]!.path}.weight.indices`;
    const h = header(bytes);
    const start = bytes.length - h[Object.keys(h).at(-1)!]!.data_offsets[1];
    const corrupt = Uint8Array.from(bytes);
    corrupt[start + h[name]!.data_offsets[0]] = 9; // offset 9 in a group of 8
    // A flipped byte is caught by the file's SHA-256 first; re-encoded with fresh digests, by the index check.
    expect(() => decodeCompressedInto(corrupt, target, 'corrupt.safetensors')).toThrow(/corrupt.safetensors: data section checksum mismatch/);
    const parts = decodeSafetensors(bytes);
    parts.bytes.get(name)!.data[0] = 9;
    const badIndex = encodeSafetensors([...parts.tensors, ...parts.bytes], parts.metadata);
    expect(() => decodeCompressedInto(badIndex, target, 'corrupt.safetensors')).toThrow(SparsityConfigError);
    expect(() => decodeCompressedInto(badIndex, target, 'corrupt.safetensors')).toThrow(/corrupt.safetensors: encoder.0.ffn.fc1: index 9 at entry 0/);
    const other = new Transformer({ ...config, ffn: 40 });
    expect(() => decodeCompressedInto(bytes, other, 'm')).toThrow(/layer 'encoder.0.ffn.fc1' is \[40, 16\] in this model but \[32, 16\] in the file/);
    const { tensors, bytes: u8, metadata } = decodeSafetensors(bytes);
    u8.delete(name);
    expect(() => decodeCompressedInto(encodeSafetensors([...tensors, ...u8], metadata), target, 'm')).toThrow(DataError);
    expect(() => decodeCompressedInto(encodeSafetensors([...tensors, ...u8], metadata), target, 'm')).toThrow(/needs the F32 tensor '.*weight.values' and the U8 tensor '.*weight.indices'/);
    tensors.delete('decoderNorm.bias');
    u8.set(name, decodeSafetensors(bytes).bytes.get(name)!);
    expect(() => decodeCompressedInto(encodeSafetensors([...tensors, ...u8], metadata), target, 'm')).toThrow(/m: missing: decoderNorm.bias/);
    target.namedParameters().forEach(([, p], i) => expect(p.data).toEqual(before[i]));
    expect([...target.namedModules()].some(([, m]) => m instanceof NMLinear)).toBe(false);
    expect(() => encodeCompressed(model, { format: 'x' })).toThrow(/metadata key 'format' is reserved/);
  });

  it('a dense model exports as plain weights and round-trips', () => {
    const model = new Transformer(config).eval();
    const rng = new Rng(1);
    for (const [, p] of model.namedParameters()) for (let i = 0; i < p.size; i++) p.data[i] = rng.normal();
    const path = join(dir, 'dense.safetensors');
    expect(exportCompressed(path, model).layers).toEqual({});
    expect(Buffer.from(logits(loadCompressedTransformer(path).model).data.buffer).equals(Buffer.from(logits(model).data.buffer))).toBe(true);
  });
});
