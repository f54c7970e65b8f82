import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { getThreads } from '../src/kernels/threads/pool.js';
import { sharedMulti30k, type BenchRecord, type SuiteOptions } from './lib.js';

/** This checkout's compiled translation CLI (bench/ runs from dist/bench/). */
const OWN_CLI = fileURLToPath(new URL('../examples/transformer-translate/cli.js', import.meta.url));

/**
 * Decoding speed against another build of nmgrad, back to back on the same machine: the
 * translation CLI of the checkout in NMGRAD_BENCH_BASELINE (built: its dist/ is used) and of
 * this one translate the Multi30k val sources (the first 200 with --quick) with the model in
 * NMGRAD_BENCH_RUN, with beam 4 and greedy, each as one whole process (model load included),
 * alternating baseline and current. `ratio` = baseline time / current time; the records also
 * count the output lines that differ between the two.
 */
export async function decodeCommitsSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const runPath = process.env.NMGRAD_BENCH_RUN;
  const basePath = process.env.NMGRAD_BENCH_BASELINE;
  const dir = sharedMulti30k();
  const baseCli = basePath ? join(resolve(basePath), 'dist/examples/transformer-translate/cli.js') : '';
  if (!runPath || !basePath || !dir) {
    console.log('decode-commits: skipped (needs NMGRAD_BENCH_RUN=<trained run>, NMGRAD_BENCH_BASELINE=<a built checkout> and ../shared/data/multi30k)');
    return [];
  }
  // Asked for, but not runnable: say which path is wrong instead of skipping quietly.
  if (!existsSync(baseCli)) throw new Error(`decode-commits: NMGRAD_BENCH_BASELINE=${basePath} has no ${baseCli} (check out a commit there and run \`npm ci && npm run build\`)`);
  if (!existsSync(resolve(runPath))) throw new Error(`decode-commits: NMGRAD_BENCH_RUN=${runPath} does not exist`);
  const src = join(dir, 'val.en');
  const rev = spawnSync('git', ['-C', resolve(basePath), 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  const label = rev.status === 0 ? `${basePath} (${rev.stdout.trim()})` : basePath;
  const threads = getThreads();
  const lines = readFileSync(src, 'utf8').split('\n');
  const sources = (opts.quick ? lines.slice(0, 200) : lines).join('\n');
  const n = sources.split('\n').filter((l) => l.trim().length > 0).length;
  const translate = (cli: string, beam: number): { ms: number; lines: string[] } => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [cli, 'translate', '--run', resolve(runPath), '--beam', String(beam)], {
      input: sources,
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      env: { ...process.env, NMGRAD_THREADS: String(threads) },
    });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`decode-commits: ${cli} translate --beam ${beam} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    return { ms, lines: r.stdout.split('\n') };
  };
  const out: BenchRecord[] = [];
  for (const beam of [4, 1]) {
    const base = translate(baseCli, beam);
    const cur = translate(OWN_CLI, beam);
    const differing = cur.lines.filter((l, i) => l !== base.lines[i]).length;
    const what = beam === 1 ? 'greedy' : `beam ${beam}`;
    const rec = (variant: string, ms: number, extra: Partial<BenchRecord> = {}): BenchRecord => ({
      suite: 'decode-commits', case: `Multi30k val ${n} sentences, whole process`, variant, threads, median_ms: ms, samples: 1, sentences_per_s: (n * 1000) / ms, ...extra,
    });
    out.push(rec(`${what}, baseline ${label}`, base.ms));
    out.push(rec(`${what}, this build`, cur.ms, { baseline: `${what}, baseline ${label}`, ratio: base.ms / cur.ms, outputs_differing: differing }));
  }
  return out;
}
