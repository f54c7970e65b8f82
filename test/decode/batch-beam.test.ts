import { describe, expect, it } from 'vitest';
import { Rng, ShapeError, Transformer, beamSearch, beamSearchBatch, translate, type TextCodec } from '../../src/index.js';
import { trainReverse } from '../nn/reverse-task.js';
import { referenceBeamSearch } from './reference-beam.js';

// A partly trained model (beams finish at different lengths) and an untrained one with a wider
// vocabulary (near-flat distributions: many close scores, long beams that hit maxLen).
const { model: trained, vocab } = trainReverse(120, 4);
const random = new Transformer({ srcVocab: 40, tgtVocab: 40, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 2, dropout: 0, maxLen: 24, seed: 9 });

function sentences(seed: number, count: number, v: number, maxLen: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: 1 + rng.int(maxLen) }, () => 3 + rng.int(v - 3)));
}

const digits: TextCodec = { encode: (s) => s.split(' ').filter(Boolean).map(Number), decode: (ids) => ids.join(' ') };

describe('batched beam search', () => {
  it('gives exactly the one-sentence reference search on every sentence (trained model, mixed lengths, small batches)', () => {
    const srcs = [...sentences(21, 40, vocab, 7), []];
    for (const beam of [1, 2, 4, 5]) {
      for (const alpha of [0, 0.6, 1]) {
        const maxLens = srcs.map((s) => Math.min(16, s.length * 2 + 4));
        const want = srcs.map((s, i) => referenceBeamSearch(trained, s, beam, alpha, maxLens[i]!));
        for (const batchSize of [3, 64]) {
          expect(beamSearchBatch(trained, srcs, { beam, lengthPenalty: alpha, maxLen: maxLens, batchSize }), `beam ${beam} α ${alpha} batch ${batchSize}`).toEqual(want);
        }
      }
    }
  });

  it('matches the reference on an untrained model where searches run into their length caps', () => {
    const srcs = sentences(5, 30, 40, 6);
    // Caps from 0 (nothing generated) to the model's maxLen, differing between equal-length sentences.
    const maxLens = srcs.map((_s, i) => [0, 1, 2, 5, 9, 24][i % 6]!);
    for (const beam of [3, 6]) {
      const got = beamSearchBatch(random, srcs, { beam, lengthPenalty: 0.6, maxLen: maxLens, batchSize: 8 });
      expect(got).toEqual(srcs.map((s, i) => referenceBeamSearch(random, s, beam, 0.6, maxLens[i]!)));
      expect(got.some((g) => g.length === 9)).toBe(true); // some searches stopped at their cap
    }
  });

  it('beamSearch (one sentence) and translate with beam > 1 are the batched search', () => {
    const srcs = sentences(33, 12, vocab, 6);
    const batched = beamSearchBatch(trained, srcs, { beam: 3, lengthPenalty: 0.6, maxLen: 12 });
    expect(srcs.map((s) => beamSearch(trained, s, { beam: 3, lengthPenalty: 0.6, maxLen: 12 }))).toEqual(batched);
    trained.train();
    const lines = translate(trained, digits, srcs.map((s) => s.join(' ')), { beam: 3, lengthPenalty: 0.6, batchSize: 5 });
    expect(trained.training).toBe(true);
    const caps = srcs.map((s) => Math.min(200, trained.config.maxLen, s.length * 2 + 10));
    expect(lines).toEqual(srcs.map((s, i) => referenceBeamSearch(trained, s, 3, 0.6, caps[i]!).join(' ')));
  });

  it('refuses bad options, naming the op', () => {
    expect(() => beamSearchBatch(trained, [[3]], { batchSize: 0 })).toThrow(ShapeError);
    expect(() => beamSearchBatch(trained, [[3]], { batchSize: 0 })).toThrow(/beamSearch: batchSize must be a positive integer, got 0/);
    expect(() => beamSearchBatch(trained, [[3], [4]], { maxLen: [3] })).toThrow(/beamSearch: maxLen has 1 entries for 2 sentences/);
    expect(() => beamSearchBatch(trained, [[3]], { beam: 2.5 })).toThrow(/beam must be a positive integer, got 2.5/);
  });
});
