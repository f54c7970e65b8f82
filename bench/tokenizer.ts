import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../src/kernels/random.js';
import { BpeTokenizer } from '../src/text/bpe.js';
import { sharedMulti30k, type BenchRecord, type SuiteOptions } from './lib.js';

/** BPE training (8000 merges) and encoding of a whole training set (Multi30k train when present). */
export async function tokenizerSuite(_opts: SuiteOptions): Promise<BenchRecord[]> {
  const dir = sharedMulti30k();
  let texts: string[];
  let name: string;
  if (dir) {
    texts = ['train.en', 'train.de'].flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'));
    name = 'Multi30k train (en+de)';
  } else {
    texts = syntheticText(58_000, new Rng(1));
    name = 'synthetic Zipf text (58,000 lines)';
  }
  const t0 = performance.now();
  const bpe = BpeTokenizer.train(texts, 8000);
  const trainMs = performance.now() - t0;
  const t1 = performance.now();
  let tokens = 0;
  for (const t of texts) tokens += bpe.encode(t).length;
  const encodeMs = performance.now() - t1;
  const t2 = performance.now();
  for (const t of texts) bpe.encode(t);
  const warmMs = performance.now() - t2;
  return [
    { suite: 'tokenizer', case: name, variant: 'train 8000 merges', threads: 1, median_ms: trainMs, lines: texts.length },
    { suite: 'tokenizer', case: name, variant: 'encode (cold cache)', threads: 1, median_ms: encodeMs, tokens, baseline: '10 s budget', ratio: 10000 / encodeMs },
    { suite: 'tokenizer', case: name, variant: 'encode (warm cache)', threads: 1, median_ms: warmMs, tokens },
  ];
}

/**
 * Stand-in text when Multi30k is absent: lines of 6–20 words drawn from a Zipf-distributed
 * vocabulary of 20,000 generated words, about the size and skew of Multi30k's two sides.
 */
function syntheticText(lines: number, rng: Rng): string[] {
  const letters = 'etaoinshrdlucmfwypvbgkqjxz';
  const vocab = Array.from({ length: 20_000 }, () => {
    const len = 2 + Math.floor(rng.uniform() * 8);
    let w = '';
    for (let i = 0; i < len; i++) w += letters[Math.floor(Math.pow(rng.uniform(), 2) * letters.length)];
    return w;
  });
  const harmonic = vocab.reduce((h, _w, i) => h + 1 / (i + 1), 0);
  const cumulative: number[] = [];
  vocab.reduce((c, _w, i) => (cumulative.push(c + 1 / (i + 1) / harmonic), c + 1 / (i + 1) / harmonic), 0);
  const draw = (): string => {
    const u = rng.uniform();
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return vocab[lo]!;
  };
  return Array.from({ length: lines }, () => Array.from({ length: 6 + Math.floor(rng.uniform() * 15) }, draw).join(' ') + ' .');
}
