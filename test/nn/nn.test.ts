import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Adam, AdamW, DataError, FeedForward, LayerNorm, Linear, MultiHeadAttention, Rng, SGD, Tensor, Transformer,
  clipGradNorm, cosineLr, inverseSqrtLr, linearSites, loadCheckpoint, noGrad, replaceLinears, saveCheckpoint, encodeSafetensors, decodeSafetensors,
  tokenAccuracy, TransformerEncoderLayer, TransformerDecoderLayer, paddingMask,
} from '../../src/index.js';
import { BOS, EOS, PAD, reverseBatch, trainReverse } from './reverse-task.js';
import { RUNS, expectGrad, maxAbsDiff, randTensor } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nmgrad-nn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('layers: gradcheck at small sizes', () => {
  const check = (name: string, mod: { parameters(): Tensor[] }, input: Tensor, fwd: (x: Tensor) => Tensor): void => {
    it(name, () => {
      // Input gradient by gradcheck.
      expectGrad(fwd, [input]);
      // Parameter gradients: finite differences along a random direction of all parameters at once.
      const rng = new Rng(3);
      const params = mod.parameters();
      const dirs = params.map((p) => Float32Array.from({ length: p.size }, () => rng.normal()));
      const ct = randTensor(fwd(input.detach()).shape, 5, {}, false);
      params.forEach((p) => (p.grad = null));
      fwd(input.detach()).backward(ct);
      let analytic = 0;
      params.forEach((p, i) => p.grad && p.grad.data.forEach((g, j) => (analytic += g * dirs[i]![j]!)));
      const evalAt = (s: number): number => {
        const saved = params.map((p) => Float32Array.from(p.data));
        params.forEach((p, i) => p.data.forEach((_v, j) => (p.data[j] = saved[i]![j]! + s * 1e-3 * dirs[i]![j]!)));
        const y = noGrad(() => fwd(input.detach()));
        params.forEach((p, i) => p.data.set(saved[i]!));
        return y.data.reduce((a, v, j) => a + v * ct.data[j]!, 0);
      };
      const numeric = (evalAt(1) - evalAt(-1)) / 2e-3;
      expect(Math.abs(numeric - analytic)).toBeLessThan(2e-3 + 2e-2 * Math.abs(analytic));
    });
  };
  const rng = new Rng(1);
  const lin = new Linear(5, 3, { rng });
  check('Linear', lin, randTensor([2, 4, 5], 1), (x) => lin.forward(x));
  const ln = new LayerNorm(6);
  ln.weight.data.set(randTensor([6], 2, {}, false).data);
  check('LayerNorm', ln, randTensor([3, 6], 3), (x) => ln.forward(x));
  const ff = new FeedForward(4, 8, { rng, activation: 'gelu' });
  check('FeedForward', ff, randTensor([2, 3, 4], 4), (x) => ff.forward(x));
  const mha = new MultiHeadAttention(8, 2, { rng });
  const mask = paddingMask([5, 5, 0, 5, 5, 5], [2, 3], 0);
  check('MultiHeadAttention (padding + causal)', mha, randTensor([2, 3, 8], 5), (x) => mha.forward(x, null, { keyPaddingMask: mask, causal: true }));
  // GELU keeps the blocks smooth: a ReLU kink inside the finite-difference step would make the
  // numeric side wrong, not the gradient (ReLU's own gradient is checked in elementwise tests).
  const enc = new TransformerEncoderLayer(8, 2, 16, 'pre', 0, rng, 'gelu');
  check('TransformerEncoderLayer (pre-norm)', enc, randTensor([2, 3, 8], 6), (x) => enc.forward(x, mask));
  const encPost = new TransformerEncoderLayer(8, 2, 16, 'post', 0, rng, 'gelu');
  check('TransformerEncoderLayer (post-norm)', encPost, randTensor([2, 3, 8], 7), (x) => encPost.forward(x, null));
  const dec = new TransformerDecoderLayer(8, 2, 16, 'pre', 0, rng, 'gelu');
  const memory = randTensor([2, 3, 8], 8, {}, false);
  check('TransformerDecoderLayer', dec, randTensor([2, 4, 8], 9), (x) => dec.forward(x, memory, mask));
});

describe('Module tree', () => {
  it('has stable dotted names, counts parameters, toggles train/eval', () => {
    const t = new Transformer({ srcVocab: 10, tgtVocab: 10, dModel: 8, heads: 2, ffn: 16, encoderLayers: 2, decoderLayers: 1, shareEmbeddings: true });
    const names = t.namedParameters().map(([n]) => n);
    expect(names).toContain('encoder.1.ffn.fc1.weight');
    expect(names).toContain('decoder.0.crossAttn.kProj.bias');
    expect(names).not.toContain('tgtEmbed.weight'); // shared with srcEmbed: listed once
    expect(new Set(names).size).toBe(names.length);
    expect(t.numParameters()).toBe(t.parameters().reduce((s, p) => s + p.size, 0));
    t.eval();
    expect(t.namedModules().every(([, m]) => !m.training)).toBe(true);
    t.train();
    expect(t.encoder.items[0]!.ffn.drop.training).toBe(true);
  });

  it('sparsify hook: FFN / attention Linear sites are found and replaced by name', () => {
    const t = new Transformer({ srcVocab: 10, tgtVocab: 10, dModel: 8, heads: 2, ffn: 16, encoderLayers: 2, decoderLayers: 2 });
    expect(linearSites(t, 'ffn').map((s) => s.name)).toEqual(['encoder.0.ffn.fc1', 'encoder.0.ffn.fc2', 'encoder.1.ffn.fc1', 'encoder.1.ffn.fc2', 'decoder.0.ffn.fc1', 'decoder.0.ffn.fc2', 'decoder.1.ffn.fc1', 'decoder.1.ffn.fc2']);
    expect(linearSites(t, 'attention').length).toBe(4 * 2 + 8 * 2);
    expect(linearSites(t, 'all').length).toBe(8 + 24);
    const replaced = replaceLinears(t, 'ffn', (s) => new Linear(s.layer.inFeatures, s.layer.outFeatures, { bias: false }));
    expect(replaced.length).toBe(8);
    expect(t.encoder.items[0]!.ffn.fc1).not.toBe(replaced[0]!.layer);
    expect(t.namedParameters().map(([n]) => n)).not.toContain('encoder.0.ffn.fc1.bias');
  });
});

describe('attention', () => {
  it('causal attention never looks at the future', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.nat(1000), (t, seed) => {
        const mha = new MultiHeadAttention(8, 2, { rng: new Rng(seed) });
        const x = randTensor([1, t, 8], seed, {}, false);
        const cut = 1 + (seed % (t - 1));
        const x2 = new Tensor(Float32Array.from(x.data), x.shape);
        for (let i = cut * 8; i < x2.size; i++) x2.data[i] = x2.data[i]! + 10 * Math.sin(i);
        const y1 = noGrad(() => mha.forward(x, null, { causal: true }));
        const y2 = noGrad(() => mha.forward(x2, null, { causal: true }));
        expect(maxAbsDiff(y1.data.subarray(0, cut * 8), y2.data.subarray(0, cut * 8))).toBe(0);
        expect(maxAbsDiff(y1.data, y2.data)).toBeGreaterThan(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('KV-cached incremental decoding equals full recomputation', () => {
    const model = new Transformer({ srcVocab: 15, tgtVocab: 15, dModel: 16, heads: 4, ffn: 32, encoderLayers: 2, decoderLayers: 2, dropout: 0, seed: 4 });
    model.eval();
    const src = [3, 4, 5, 6, 0, 7, 8, 9, 0, 0];
    const srcShape: [number, number] = [2, 5];
    const tgt = [1, 5, 9, 4, 11, 1, 3, 3, 12, 6];
    noGrad(() => {
      const full = model.forward(src, srcShape, tgt, [2, 5], 0); // [2, 5, V]
      const pad = paddingMask(src, srcShape, 0);
      const memory = model.encode(src, srcShape, pad);
      const cache = model.newCache();
      for (let t = 0; t < 5; t++) {
        const step = model.decode([tgt[t]!, tgt[5 + t]!], [2, 1], memory, pad, cache, t);
        for (let b = 0; b < 2; b++) {
          const a = step.data.subarray(b * 15, b * 15 + 15);
          const f = full.data.subarray((b * 5 + t) * 15, (b * 5 + t + 1) * 15);
          expect(maxAbsDiff(a, f)).toBeLessThan(1e-5);
        }
      }
    });
  });
});

describe('optimizers and schedules', () => {
  it('one Adam step and one AdamW step equal hand-computed values', () => {
    const mk = () => {
      const p = Tensor.fromArray([1, -2], [2], true);
      p.grad = Tensor.fromArray([0.5, -1]);
      return p;
    };
    const p = mk();
    new Adam([p], 0.1, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 }).step();
    // g' = g + wd·w = [0.6, -1.2]; m̂ = g', v̂ = g'², update = lr·g'/(|g'| + eps) ≈ ±0.1
    expect(p.data[0]).toBeCloseTo(1 - 0.1 * 0.6 / (0.6 + 1e-8), 6);
    expect(p.data[1]).toBeCloseTo(-2 + 0.1 * 1.2 / (1.2 + 1e-8), 6);
    const q = mk();
    const opt = new AdamW([q], 0.1, { weightDecay: 0.1 });
    opt.step();
    // w ← w·(1 − lr·wd) − lr·sign(g)
    expect(q.data[0]).toBeCloseTo(1 * (1 - 0.01) - 0.1, 6);
    expect(q.data[1]).toBeCloseTo(-2 * (1 - 0.01) + 0.1, 6);
    // Second step: bias-corrected moments with a new gradient.
    q.grad = Tensor.fromArray([0.25, 0.5]);
    const w0 = Array.from(q.data);
    opt.step();
    const m = [0.9 * 0.05 + 0.1 * 0.25, 0.9 * -0.1 + 0.1 * 0.5];
    const v = [0.999 * 0.00025 + 0.001 * 0.0625, 0.999 * 0.001 + 0.001 * 0.25];
    for (let j = 0; j < 2; j++) {
      const expected = w0[j]! * (1 - 0.01) - (0.1 * (m[j]! / (1 - 0.81))) / (Math.sqrt(v[j]! / (1 - 0.998001)) + 1e-8);
      expect(q.data[j]).toBeCloseTo(expected, 5);
    }
  });

  it('SGD with momentum and gradient clipping', () => {
    const p = Tensor.fromArray([1], [1], true);
    const opt = new SGD([p], 0.1, { momentum: 0.9 });
    p.grad = Tensor.fromArray([1]);
    opt.step();
    opt.step();
    expect(p.data[0]).toBeCloseTo(1 - 0.1 - 0.1 * 1.9, 6);
    const a = Tensor.fromArray([3], [1], true);
    const b = Tensor.fromArray([4], [1], true);
    a.grad = Tensor.fromArray([3]);
    b.grad = Tensor.fromArray([4]);
    expect(clipGradNorm([a, b], 1)).toBeCloseTo(5, 6);
    expect(a.grad.data[0]! ** 2 + b.grad.data[0]! ** 2).toBeCloseTo(1, 4);
  });

  it('schedules follow their formulas', () => {
    const s = inverseSqrtLr(1e-3, 100);
    expect(s(1)).toBeCloseTo(1e-5, 12);
    expect(s(50)).toBeCloseTo(5e-4, 12);
    expect(s(100)).toBeCloseTo(1e-3, 12);
    expect(s(400)).toBeCloseTo(5e-4, 12);
    const c = cosineLr(1, 110, 10, 0.1);
    expect(c(5)).toBeCloseTo(0.5, 12);
    expect(c(10)).toBeCloseTo(1, 12);
    expect(c(60)).toBeCloseTo(0.55, 12);
    expect(c(110)).toBeCloseTo(0.1, 12);
  });
});

/** An independent minimal safetensors reader, written from the format description. */
function parseSafetensorsIndependently(buf: Buffer): Record<string, { shape: number[]; values: number[] }> {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out: Record<string, { shape: number[]; values: number[] }> = {};
  for (const [k, v] of Object.entries<any>(header)) {
    if (k === '__metadata__') continue;
    expect(v.dtype).toBe('F32');
    const values: number[] = [];
    for (let o = v.data_offsets[0]; o < v.data_offsets[1]; o += 4) values.push(buf.readFloatLE(8 + n + o));
    out[k] = { shape: v.shape, values };
  }
  expect((8 + n) % 8).toBe(0);
  return out;
}

describe('checkpoints (safetensors)', () => {
  const small = () => new Transformer({ srcVocab: 9, tgtVocab: 9, dModel: 8, heads: 2, ffn: 16, encoderLayers: 1, decoderLayers: 1, seed: 7 });

  it('save → load round trip is bit-exact, with optimizer state, and parses independently', () => {
    const a = small();
    const opt = new Adam(a.parameters(), 1e-3);
    for (const p of a.parameters()) p.grad = randTensor(p.shape, p.size, {}, false);
    opt.step();
    const path = join(dir, 'ckpt.safetensors');
    saveCheckpoint(path, a, { optimizer: opt, state: { step: 1, rng: new Rng(3).getState() } });
    const b = new Transformer({ ...a.config, seed: 99 });
    const optB = new Adam(b.parameters(), 1e-3);
    const state = loadCheckpoint(path, b, { optimizer: optB }) as { step: number };
    expect(state.step).toBe(1);
    for (const [[na, pa], [nb, pb]] of a.namedParameters().map((x, i) => [x, b.namedParameters()[i]!] as const)) {
      expect(nb).toBe(na);
      expect(Buffer.from(pb.data.buffer, pb.data.byteOffset, pb.size * 4).equals(Buffer.from(pa.data.buffer, pa.data.byteOffset, pa.size * 4))).toBe(true);
    }
    expect(optB.getState()).toEqual(opt.getState());
    const parsed = parseSafetensorsIndependently(readFileSync(path));
    const w = a.namedParameters().find(([n]) => n === 'encoder.0.ffn.fc1.weight')![1];
    expect(parsed['encoder.0.ffn.fc1.weight']!.shape).toEqual([16, 8]);
    expect(parsed['encoder.0.ffn.fc1.weight']!.values).toEqual(Array.from(w.data));
  });

  it('corrupt, truncated and mismatched files raise DataError and load nothing', () => {
    const a = small();
    const path = join(dir, 'good.safetensors');
    saveCheckpoint(path, a);
    const bytes = readFileSync(path);
    const b = new Transformer({ ...a.config, seed: 5 });
    const before = b.parameters().map((p) => Array.from(p.data));
    const unchanged = () => expect(b.parameters().map((p) => Array.from(p.data))).toEqual(before);
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, bytes.subarray(0, bytes.length - 10));
    expect(() => loadCheckpoint(bad, b)).toThrow(/truncated/);
    writeFileSync(bad, bytes.subarray(0, 5));
    expect(() => loadCheckpoint(bad, b)).toThrow(DataError);
    const garbled = Buffer.from(bytes);
    garbled[10] = 0x7b; // break the JSON header
    garbled[11] = 0x7b;
    writeFileSync(bad, garbled);
    expect(() => loadCheckpoint(bad, b)).toThrow(DataError);
    expect(() => loadCheckpoint(join(dir, 'missing.safetensors'), b)).toThrow(/cannot read checkpoint/);
    const other = new Transformer({ ...a.config, ffn: 32 });
    expect(() => loadCheckpoint(path, other)).toThrow(/misshaped: .*encoder.0.ffn.fc1.weight \(expected \[32, 8\], got \[16, 8\]\)/);
    const fewer = new Map(a.stateDict());
    fewer.delete('decoderNorm.bias');
    fewer.set('extra.weight', Tensor.zeros([2]));
    writeFileSync(bad, encodeSafetensors(fewer));
    expect(() => loadCheckpoint(bad, b)).toThrow(/missing: decoderNorm.bias; unexpected: extra.weight/);
    unchanged();
  });

  it('rejects non-F32 dtypes and overlapping offsets', () => {
    const hdr = (h: object, data: number) => {
      const json = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      return Buffer.concat([len, json, Buffer.alloc(data)]);
    };
    expect(() => decodeSafetensors(hdr({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, 4))).toThrow(/dtype F16/);
    expect(() => decodeSafetensors(hdr({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8))).toThrow(DataError);
  });
});

describe('learning check', () => {
  it('a small Transformer learns to copy-and-reverse random sequences to near-zero loss', () => {
    const { model, losses, vocab, rng } = trainReverse(700);
    const tail = losses.slice(-20).reduce((a, b) => a + b, 0) / 20;
    expect(losses[0]).toBeGreaterThan(2);
    expect(tail).toBeLessThan(0.08);
    const b = reverseBatch(rng, 50, vocab, 6);
    const out = model.greedy(b.src, b.srcShape, { bos: BOS, eos: EOS, pad: PAD, maxLen: 10 });
    const exact = out.filter((o, i) => JSON.stringify(o) === JSON.stringify([...b.seqs[i]!].reverse())).length;
    expect(exact).toBeGreaterThanOrEqual(40);
    const logits = noGrad(() => model.forward(b.src, b.srcShape, b.tgtIn, b.tgtShape, PAD));
    expect(tokenAccuracy(logits, b.tgtOut, PAD)).toBeGreaterThan(0.97);
  });
});
