import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { Rng } from '../src/kernels/random.js';
import { allocF32, allocOwned, releaseOwned } from '../src/kernels/memory/storage.js';

/** One benchmark record; `ratio` = baseline time / this time. */
export interface BenchRecord {
  suite: string;
  case: string;
  variant: string;
  threads: number;
  median_ms: number;
  gflops?: number;
  baseline?: string;
  ratio?: number;
  [extra: string]: unknown;
}

export interface SuiteOptions {
  /** Shorter runs (fewer samples) for a smoke check. */
  quick: boolean;
}

export type Suite = (opts: SuiteOptions) => Promise<BenchRecord[]>;

/** Median latency (ms) of `fn` with tinybench, after a warm-up. */
export async function medianMs(name: string, fn: () => void, opts: SuiteOptions, minIterations = 5, each: { yield?: boolean } = {}): Promise<number> {
  const bench = new Bench({ name, time: opts.quick ? 200 : 1500, iterations: opts.quick ? 2 : minIterations, warmupIterations: opts.quick ? 1 : 3, warmupTime: opts.quick ? 50 : 300 });
  // With `yield`, every run is followed by a turn of the event loop, as a training loop has
  // between steps: that is when tensors a run dropped go back to the arena (storage.ts), so a
  // kernel that allocates its output is timed on recycled memory, not on fresh page faults.
  bench.add(name, each.yield === true ? async () => {
    fn();
    await new Promise((r) => setImmediate(r));
  } : fn);
  await bench.run();
  const r = bench.tasks[0]!.result;
  if (r.state !== 'completed') throw new Error(`benchmark ${name} did not complete: ${r.state}${'error' in r ? `: ${String(r.error)}` : ''}`);
  return r.latency.p50;
}

export function fmt(n: number, digits = 2): string {
  return n.toFixed(digits);
}

/** Prints records as an aligned table. */
export function printTable(records: BenchRecord[]): void {
  const cols = ['case', 'variant', 'threads', 'median_ms', 'gflops', 'tokens_per_s', 'sentences_per_s', 'worker_idle', 'gc_share', 'gflop_per_step', 'max_rss_mb', 'ratio', 'baseline'] as const;
  const rows = records.map((r) => cols.map((c) => (r[c] === undefined ? '' : typeof r[c] === 'number' && c !== 'threads' ? fmt(r[c] as number) : String(r[c]))));
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(cols));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** Standard-normal data in pool-shareable storage. */
export function randData(n: number, rng: Rng): Float32Array {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/**
 * A kernel that allocates its output, run as the backward sweep runs it: in an owner scope
 * whose output goes back to the arena once consumed, so each run reuses the last one's memory
 * instead of taking fresh pages until a collection (storage.ts releaseOwned). The dense
 * baselines write into the bench's own buffers.
 */
export function asInSweep(run: () => Float32Array | null): () => void {
  return () => {
    const out = allocOwned(() => run() ?? new Float32Array(0));
    releaseOwned(out);
  };
}

/** The shared Multi30k folder (`../shared/data/multi30k` beside the project), or null when absent. */
export function sharedMulti30k(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(process.cwd(), '../shared/data/multi30k'), resolve(here, '../../../shared/data/multi30k'), resolve(here, '../../shared/data/multi30k')];
  return candidates.find((c) => existsSync(join(c, 'train.en'))) ?? null;
}
