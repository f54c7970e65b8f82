import { describe, expect, it } from 'vitest';
import { Rng, ShapeError, beamSearch, greedyDecode, translate, type TextCodec } from '../../src/index.js';
import { trainReverse } from '../nn/reverse-task.js';
import { referenceBeamSearch } from './reference-beam.js';

// A partly trained model: its beams finish at different lengths, so the length penalty matters.
const { model, vocab } = trainReverse(120, 4);
const rng = new Rng(11);
const sources = Array.from({ length: 6 }, () => Array.from({ length: 3 + rng.int(4) }, () => 3 + rng.int(vocab - 3)));

/** Ids as text: "5 7 3" (a tokenizer without merges, enough to drive `translate`). */
const digits: TextCodec = { encode: (s) => s.split(' ').filter(Boolean).map(Number), decode: (ids) => ids.join(' ') };

describe('decoding API', () => {
  it('beam search gives exactly the outputs of the example beam search it replaced', () => {
    for (const beam of [1, 2, 4]) {
      for (const alpha of [0, 0.6, 1]) {
        for (const src of sources) {
          const maxLen = src.length * 2 + 4;
          expect(beamSearch(model, src, { beam, lengthPenalty: alpha, maxLen }), `beam ${beam} α ${alpha} src ${src}`).toEqual(referenceBeamSearch(model, src, beam, alpha, maxLen));
        }
      }
    }
  });

  it('beam 1 is greedy decoding', () => {
    const greedy = greedyDecode(model, sources, { maxLen: 14 });
    expect(sources.map((s) => beamSearch(model, s, { beam: 1, maxLen: 14 }))).toEqual(greedy);
    // Greedy on the reversal task reverses most inputs after this much training.
    const reversed = greedy.filter((g, i) => g.join() === [...sources[i]!].reverse().join()).length;
    expect(reversed).toBeGreaterThan(0);
  });

  it('translate decodes text through any codec, greedy in batches or by beam, and restores training mode', () => {
    const lines = sources.map((s) => s.join(' '));
    model.train();
    const greedy = translate(model, digits, lines, { batchSize: 4 });
    expect(model.training).toBe(true);
    const maxLens = sources.map((s) => Math.min(200, model.config.maxLen, s.length * 2 + 10));
    expect(greedy).toEqual(sources.map((s, i) => greedyDecode(model, [s], { maxLen: maxLens[i] })[0]!.join(' ')));
    const beam = translate(model, digits, lines, { beam: 3, lengthPenalty: 0.6 });
    expect(model.training).toBe(true);
    expect(beam).toEqual(sources.map((s, i) => referenceBeamSearch(model, s, 3, 0.6, maxLens[i]!).join(' ')));
  });

  it('rejects a bad beam width or length penalty, naming the op', () => {
    expect(() => beamSearch(model, [3, 4], { beam: 0 })).toThrow(ShapeError);
    expect(() => beamSearch(model, [3, 4], { beam: 0 })).toThrow(/beamSearch: beam must be a positive integer, got 0/);
    expect(() => beamSearch(model, [3, 4], { lengthPenalty: NaN })).toThrow(/lengthPenalty must be a finite number/);
    expect(() => translate(model, digits, ['3 4'], { beam: 1.5 })).toThrow(/translate: beam must be a positive integer, got 1.5/);
  });
});
