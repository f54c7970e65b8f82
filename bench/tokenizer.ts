import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultDataDir } from '../examples/transformer-translate/data/parallel.js';
import { generateBuiltinCorpus } from '../examples/transformer-translate/data/builtin.js';
import { BpeTokenizer } from '../src/text/bpe.js';
import type { BenchRecord, SuiteOptions } from './lib.js';

/** BPE training (8000 merges) and encoding of a whole training set (Multi30k train when present). */
export async function tokenizerSuite(_opts: SuiteOptions): Promise<BenchRecord[]> {
  const dir = defaultDataDir();
  let texts: string[];
  let name: string;
  if (dir) {
    texts = ['train.en', 'train.de'].flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'));
    name = 'Multi30k train (en+de)';
  } else {
    texts = generateBuiltinCorpus().train.flatMap((p) => [p.en, p.de]);
    name = 'built-in train (en+de)';
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
