import { describe, expect, it } from 'vitest';
import { Rng, Transformer, translate, type TextCodec } from '../../src/index.js';

// An untrained model: near-flat distributions rarely pick eos, so decoding runs into the length
// caps — exactly where a cap shared by the batch used to show through.
const model = new Transformer({ srcVocab: 40, tgtVocab: 40, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 2, dropout: 0, maxLen: 48, seed: 9 });
const digits: TextCodec = { encode: (s) => s.split(/\s+/).filter(Boolean).map(Number), decode: (ids) => ids.join(' ') };

function lines(seed: number, count: number, maxLen: number): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: 1 + rng.int(maxLen) }, () => 3 + rng.int(37)).join(' '));
}

describe('translate(): a sentence translates the same whatever its batch', () => {
  // Short and long sentences mixed, so that a batch's longest source is far longer than most.
  // Interleaved (i · 7 mod 16 visits all 16), so every batch mixes lengths.
  const srcs = [...lines(3, 12, 3), ...lines(4, 4, 16)].map((_s, i, a) => a[(i * 7) % a.length]!);

  for (const beam of [1, 3]) {
    it(`${beam === 1 ? 'greedy' : `beam ${beam}`}: each line alone, in one batch, and in batches of 5 give the same text`, () => {
      const alone = srcs.map((s) => translate(model, digits, [s], { beam })[0]!);
      // The oracle's own check: each output respects its sentence's cap (2 · source + 10).
      alone.forEach((h, i) => expect(digits.encode(h).length).toBeLessThanOrEqual(2 * digits.encode(srcs[i]!).length + 10));
      expect(alone.some((h, i) => digits.encode(h).length === 2 * digits.encode(srcs[i]!).length + 10), 'some outputs reach their cap').toBe(true);
      expect(translate(model, digits, srcs, { beam }), 'one batch').toEqual(alone);
      expect(translate(model, digits, srcs, { beam, batchSize: 5 }), 'batches of 5').toEqual(alone);
      expect(translate(model, digits, [...srcs].reverse(), { beam, batchSize: 4 }), 'reversed, batches of 4').toEqual([...alone].reverse());
    });
  }

  it('empty and blank sources give empty lines in place, in any batch', () => {
    const withBlanks = ['', srcs[0]!, '   ', srcs[1]!, '\t', ''];
    for (const beam of [1, 3]) {
      const want = ['', translate(model, digits, [srcs[0]!], { beam })[0]!, '', translate(model, digits, [srcs[1]!], { beam })[0]!, '', ''];
      expect(want[1]).not.toBe('');
      for (const batchSize of [1, 2, 64]) expect(translate(model, digits, withBlanks, { beam, batchSize }), `beam ${beam} batch ${batchSize}`).toEqual(want);
    }
    expect(translate(model, digits, ['', ' '], { beam: 1 })).toEqual(['', '']);
  });
});
