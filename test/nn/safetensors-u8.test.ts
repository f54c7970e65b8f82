import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, Tensor, Transformer, byteTensor, decodeSafetensors, encodeSafetensors, loadCheckpoint, readCheckpoint, saveCheckpoint } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'nmgrad-u8-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Reads one tensor's header entry and raw bytes straight from the format description. */
function rawEntry(buf: Uint8Array, name: string): { dtype: string; shape: number[]; bytes: Uint8Array } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const n = Number(b.readBigUInt64LE(0));
  const info = JSON.parse(b.subarray(8, 8 + n).toString('utf8'))[name];
  return { dtype: info.dtype, shape: info.shape, bytes: new Uint8Array(b.subarray(8 + n + info.data_offsets[0], 8 + n + info.data_offsets[1])) };
}

describe('U8 tensors in safetensors', () => {
  it('round-trips U8 next to F32 tensors; other readers see dtype U8 with the raw bytes', () => {
    const mask = Uint8Array.from([1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0]);
    const w = Tensor.fromArray([[1.5, -2], [3, 4.25]]);
    const bytes = encodeSafetensors([['w', w], ['w_mask', byteTensor(mask, [3, 4])], ['v', Tensor.fromArray([7])]], { note: 'x' });
    expect(rawEntry(bytes, 'w_mask')).toEqual({ dtype: 'U8', shape: [3, 4], bytes: mask });
    expect(Array.from(new Float32Array(rawEntry(bytes, 'v').bytes.slice().buffer))).toEqual([7]);
    const back = decodeSafetensors(bytes);
    expect(back.bytes.get('w_mask')).toEqual({ dtype: 'U8', shape: [3, 4], data: mask });
    expect(Array.from(back.tensors.get('w')!.data)).toEqual([1.5, -2, 3, 4.25]);
    expect([...back.tensors.keys()]).toEqual(['w', 'v']);
    expect(back.metadata).toEqual({ note: 'x' });
  });

  it('rejects a U8 tensor whose offsets do not match its shape, and a byteTensor of the wrong size', () => {
    const good = encodeSafetensors([['m', byteTensor(new Uint8Array(6), [2, 3])]]);
    const b = Buffer.from(good);
    const n = Number(b.readBigUInt64LE(0));
    const header = b.subarray(8, 8 + n).toString('utf8').replace('[2,3]', '[2,4]');
    const bad = Buffer.concat([b.subarray(0, 8), Buffer.from(header), b.subarray(8 + n)]);
    expect(() => decodeSafetensors(bad, 'bad.safetensors')).toThrow(/bad.safetensors: U8 tensor 'm' of shape \[2, 4\] needs 8 bytes, offsets give 6/);
    expect(() => byteTensor(new Uint8Array(5), [2, 3])).toThrow(DataError);
  });

  it('saveCheckpoint stores extra U8 tensors; readCheckpoint returns them, loadCheckpoint ignores them', () => {
    const model = new Transformer({ srcVocab: 9, tgtVocab: 9, dModel: 8, heads: 2, ffn: 16, encoderLayers: 1, decoderLayers: 1, seed: 7 });
    const keep = Uint8Array.from({ length: 16 * 8 }, (_v, i) => (i % 4 === 0 ? 1 : 0));
    const path = join(dir, 'ckpt.safetensors');
    saveCheckpoint(path, model, { state: { step: 3 }, bytes: [['encoder.0.ffn.fc1.weight_mask', byteTensor(keep, [16, 8])]] });
    expect(rawEntry(readFileSync(path), 'encoder.0.ffn.fc1.weight_mask')).toEqual({ dtype: 'U8', shape: [16, 8], bytes: keep });
    const other = new Transformer({ ...model.config, seed: 1 });
    const r = readCheckpoint(path, other);
    expect(r.state).toEqual({ step: 3 });
    expect(r.bytes.get('encoder.0.ffn.fc1.weight_mask')!.data).toEqual(keep);
    expect(loadCheckpoint(path, new Transformer({ ...model.config, seed: 2 }))).toEqual({ step: 3 });
  });
});
