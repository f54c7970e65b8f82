import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Adam, DataError, Transformer, decodeSafetensors, encodeSafetensors, loadCheckpoint, loadSafetensors, removeStaleTempFiles, saveCheckpoint,
} from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'nmgrad-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const small = (seed = 7): Transformer => new Transformer({ srcVocab: 9, tgtVocab: 9, dModel: 8, heads: 2, ffn: 16, encoderLayers: 1, decoderLayers: 1, seed });
const snapshot = (m: Transformer): number[][] => m.parameters().map((p) => Array.from(p.data));

/** Splits safetensors bytes into its JSON header and data section (an independent reader). */
function split(bytes: Uint8Array): { header: Record<string, unknown>; data: Buffer } {
  const buf = Buffer.from(bytes);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>, data: buf.subarray(8 + n) };
}

/** Builds safetensors bytes from a header object and a data section, as another tool would. */
function join8(header: Record<string, unknown>, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function savedWithOptimizer(path: string): Transformer {
  const a = small();
  const opt = new Adam(a.parameters(), 1e-3);
  saveCheckpoint(path, a, { optimizer: opt, state: { step: 3 } });
  return a;
}

describe('checkpoint integrity', () => {
  it('64 flipped bytes in the middle of the data section are refused by checksum, naming the file; without the checksum they would load', () => {
    const path = join(dir, 'flip.safetensors');
    savedWithOptimizer(path);
    const { header, data } = split(readFileSync(path));
    const flipped = Buffer.from(data);
    const mid = Math.floor(flipped.length / 2);
    for (let i = mid; i < mid + 64; i++) flipped[i] = flipped[i]! ^ 0x5a;
    const bad = join(dir, 'flipped.safetensors');
    writeFileSync(bad, join8(header, flipped));
    const b = small(99);
    const before = snapshot(b);
    expect(() => loadCheckpoint(bad, b)).toThrow(DataError);
    expect(() => loadCheckpoint(bad, b)).toThrow(new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: data section checksum mismatch`));
    expect(snapshot(b)).toEqual(before);
    // The same bytes with the nmgrad digests removed (a file from another tool): loads unchecked.
    const meta = { ...(header.__metadata__ as Record<string, string>) };
    delete meta['nmgrad.data_sha256'];
    delete meta['nmgrad.metadata_sha256'];
    const foreign = join(dir, 'foreign.safetensors');
    writeFileSync(foreign, join8({ ...header, __metadata__: meta }, flipped));
    expect(() => loadSafetensors(foreign)).not.toThrow();
  });

  it('a tampered training state or optimizer entry is refused by the metadata checksum', () => {
    const path = join(dir, 'meta.safetensors');
    savedWithOptimizer(path);
    const { header, data } = split(readFileSync(path));
    const meta = header.__metadata__ as Record<string, string>;
    for (const key of ['state', 'optimizer']) {
      const bad = join(dir, `tampered-${key}.safetensors`);
      writeFileSync(bad, join8({ ...header, __metadata__: { ...meta, [key]: meta[key]!.replace(/\d/, '7') } }, data));
      expect(() => loadSafetensors(bad)).toThrow(/metadata checksum mismatch/);
    }
    // Intact files round-trip, and the digests are not handed back as user metadata.
    expect(Object.keys(loadSafetensors(path).metadata).sort()).toEqual(['format', 'nmgrad.rng', 'nmgrad.sparse', 'optimizer', 'state']);
  });

  it('NaN and Inf weights are refused with the tensor name; allowNonFinite loads them for inspection', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const a = small();
      const w = a.namedParameters().find(([n]) => n === 'encoder.0.ffn.fc1.weight')![1];
      w.data[5] = bad;
      const path = join(dir, `nonfinite-${bad}.safetensors`);
      saveCheckpoint(path, a);
      const b = small(99);
      const before = snapshot(b);
      expect(() => loadCheckpoint(path, b)).toThrow(new RegExp(`tensor 'encoder.0.ffn.fc1.weight' holds ${bad} at flat index 5`));
      expect(snapshot(b)).toEqual(before);
      loadCheckpoint(path, b, { allowNonFinite: true });
      expect(b.namedParameters().find(([n]) => n === 'encoder.0.ffn.fc1.weight')![1].data[5]).toBe(bad);
    }
  });

  it('malformed metadata is a DataError naming the file, never a raw SyntaxError or TypeError', () => {
    const good = join(dir, 'good.safetensors');
    savedWithOptimizer(good);
    const { tensors, metadata } = loadSafetensors(good);
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['state JSON broken', { state: '{"step": 3' }, /metadata 'state' is not valid JSON/],
      ['optimizer JSON broken', { optimizer: '{"kind":' }, /metadata 'optimizer' is not valid JSON/],
      ['optimizer JSON null', { optimizer: 'null' }, /metadata 'optimizer' must be \{kind/],
      ['optimizer slots missing', { optimizer: '{"kind":"Adam","step":0,"lr":0.001}' }, /metadata 'optimizer' must be \{kind/],
    ];
    for (const [what, patch, re] of cases) {
      // encodeSafetensors recomputes the digests, so only the shape check can catch these.
      const path = join(dir, `${what.replace(/ /g, '-')}.safetensors`);
      writeFileSync(path, encodeSafetensors(tensors, { ...metadata, ...(patch as Record<string, string>) }));
      const b = small(99);
      const opt = new Adam(b.parameters(), 1e-3);
      let err: unknown;
      try {
        loadCheckpoint(path, b, { optimizer: opt });
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(DataError);
      expect((err as Error).message, what).toContain(path);
      expect((err as Error).message, what).toMatch(re);
    }
    // __metadata__ null, an array, or a tensor entry that is not an object: typed errors from the header check.
    const { header, data } = split(readFileSync(good));
    for (const [patch, re] of [
      [{ __metadata__: null }, /__metadata__ must be an object of strings, got null/],
      [{ __metadata__: ['x'] }, /__metadata__ must be an object of strings, got an array/],
      [{ 'encoder.0.ffn.fc1.weight': null }, /tensor 'encoder.0.ffn.fc1.weight' has no \{dtype, shape, data_offsets\} entry/],
    ] as const) {
      expect(() => decodeSafetensors(join8({ ...header, ...patch }, data), 'f.safetensors')).toThrow(DataError);
      expect(() => decodeSafetensors(join8({ ...header, ...patch }, data), 'f.safetensors')).toThrow(re);
    }
  });
});

describe('stale temp files', () => {
  it('removes the temp files of a killed writer and keeps those of a live process', () => {
    const run = join(dir, 'run');
    mkdirSync(run, { recursive: true });
    // A pid that certainly no longer exists: a child that has already exited.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = `.checkpoint.safetensors.tmp-${dead}-1700000000000`;
    const live = `.checkpoint.safetensors.tmp-${process.pid}-1700000000001`;
    for (const f of [stale, live, 'checkpoint.safetensors', 'notes.tmp-1-2']) writeFileSync(join(run, f), 'x');
    expect(removeStaleTempFiles(run)).toEqual([stale]);
    expect(existsSync(join(run, stale))).toBe(false);
    for (const f of [live, 'checkpoint.safetensors', 'notes.tmp-1-2']) expect(existsSync(join(run, f)), f).toBe(true);
    expect(removeStaleTempFiles(join(dir, 'no-such-dir'))).toEqual([]);
  });
});
