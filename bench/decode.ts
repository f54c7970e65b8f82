import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTranslator } from '../src/train/translation.js';
import { beamSearchBatch, translate } from '../src/decode/index.js';
import { getThreads } from '../src/kernels/threads/pool.js';
import { sharedMulti30k, type BenchRecord, type SuiteOptions } from './lib.js';

/** Beam size and length penalty of the translation example's final evaluation. */
const BEAM = 4;
const ALPHA = 1;

/**
 * Decoding speed of a trained run (env NMGRAD_BENCH_RUN=DIR, a `train` run folder or an exported
 * model) on the Multi30k val sources (the first 100 with --quick): greedy in batches of 64, beam 4
 * one sentence at a time (batchSize 1: what `beamSearch` does, the pre-batching search), and beam 4
 * batched (batchSize 64), whose outputs must equal the unbatched ones. Each variant decodes the
 * whole set; the median is over `samples` passes (1 for the slow unbatched search).
 */
export async function decodeSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const runPath = process.env.NMGRAD_BENCH_RUN;
  const dir = sharedMulti30k();
  if (!runPath || !dir) {
    console.log(`decode: skipped (needs NMGRAD_BENCH_RUN=<trained run folder>${dir ? '' : ' and ../shared/data/multi30k'})`);
    return [];
  }
  const { model, tokenizer } = loadTranslator(resolve(runPath));
  const all = readFileSync(join(dir, 'val.en'), 'utf8').split('\n').map((s) => s.trim()).filter((s) => s.length > 0);
  const sentences = opts.quick ? all.slice(0, 100) : all;
  const limit = model.config.maxLen;
  const sources = sentences.map((s) => tokenizer.encode(s).slice(0, limit));
  // translate()'s per-sentence cap, so both beam variants search exactly as evaluation does.
  const maxLen = sources.map((r) => Math.min(200, limit, r.length * 2 + 10));
  const threads = getThreads();
  const timed = <T>(fn: () => T, samples: number): { ms: number; out: T } => {
    const times: number[] = [];
    let out!: T;
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      out = fn();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { ms: times[Math.floor(times.length / 2)]!, out };
  };
  const reps = opts.quick ? 1 : 3;
  const greedy = timed(() => translate(model, tokenizer, sentences, { beam: 1 }), reps);
  const one = timed(() => beamSearchBatch(model, sources, { beam: BEAM, lengthPenalty: ALPHA, maxLen, batchSize: 1 }), 1);
  const batched = timed(() => beamSearchBatch(model, sources, { beam: BEAM, lengthPenalty: ALPHA, maxLen, batchSize: 64 }), reps);
  const differing = one.out.filter((r, i) => r.join(' ') !== batched.out[i]!.join(' ')).length;
  const n = sentences.length;
  const rec = (variant: string, ms: number, samples: number, extra: Partial<BenchRecord> = {}): BenchRecord => ({
    suite: 'decode', case: `Multi30k val ${n} sentences`, variant, threads, median_ms: ms, samples, sentences_per_s: (n * 1000) / ms, ...extra,
  });
  return [
    rec('greedy, batch 64', greedy.ms, reps),
    rec(`beam ${BEAM}, one sentence at a time`, one.ms, 1),
    rec(`beam ${BEAM}, batch 64`, batched.ms, reps, { baseline: `beam ${BEAM}, one sentence at a time`, ratio: one.ms / batched.ms, outputs_differing: differing }),
  ];
}
