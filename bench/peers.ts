/**
 * `npm run bench -- peers`: nmgrad's Transformer training step beside its PyTorch twin
 * (bench/peers/torch_step.py) in one sitting. See docs/peers.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend, listBackends, setBackend } from '../src/index.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { medianMs, type BenchRecord, type SuiteOptions } from './lib.js';
import { STEP_PRESETS, buildModel, makeStep, syntheticBatch, warmUp, type StepPreset, type StepPresetName, type StepVariant } from './step-builder.js';
import { bestPeer, blasWarning, checkParamCounts, parseChildReport, parseMaxRssMb, peerRatio, type ChildReport } from './peers/report.js';

const THREADS = [1, 2];
const VARIANTS: StepVariant[] = ['dense', '1:8', '1:8 all'];
/** nmgrad's thread count for the peak-memory child. */
const MEMORY_THREADS = 2;
const here = dirname(fileURLToPath(import.meta.url));

function firstExisting(paths: string[]): string | null {
  return paths.find((p) => existsSync(p)) ?? null;
}

/** null when `python3 -c 'import torch'` works, else why not. */
function torchMissing(): string | null {
  const r = spawnSync('python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return `python3 not runnable (${r.error.message})`;
  if (r.status !== 0) return `python3 cannot import torch (${(r.stderr.trim().split('\n').pop() ?? '').trim() || `exit ${r.status}`})`;
  return null;
}

/** GNU time with `-v` (peak RSS of a child), or null: then the children's own VmHWM is used. */
function gnuTime(): string | null {
  const r = spawnSync('/usr/bin/time', ['-v', 'true'], { encoding: 'utf8' });
  return r.status === 0 && /Maximum resident set size/.test(r.stderr) ? '/usr/bin/time' : null;
}

interface ChildRun { report: ChildReport; maxRssMb: number | null; rssSource: string }

/** Runs one child (under `/usr/bin/time -v` when there is one) and reads its JSON report and peak RSS. */
function runChild(who: string, cmd: string, args: string[], timeBin: string | null, env: NodeJS.ProcessEnv = process.env): ChildRun {
  const [bin, argv] = timeBin ? [timeBin, ['-v', cmd, ...args]] : [cmd, args];
  const r = spawnSync(bin, argv, { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${who}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = r.stderr.split('\n').filter((l) => l.trim() && !/^\t/.test(l) && !/Command (being timed|exited)/.test(l)).slice(-5).join('\n');
    throw new Error(`${who} exited with ${r.status ?? r.signal}:\n${tail}`);
  }
  const report = parseChildReport(r.stdout, who);
  const timed = timeBin ? parseMaxRssMb(r.stderr) : null;
  if (timed !== null) return { report, maxRssMb: timed, rssSource: '/usr/bin/time -v' };
  return { report, maxRssMb: report.vm_hwm_mb ?? null, rssSource: 'VmHWM' };
}

/** The presets to run: NMGRAD_PEERS_PRESETS (comma list; `tiny` is a smoke-test size), default small,base. */
function chosenPresets(): StepPresetName[] {
  const names = (process.env.NMGRAD_PEERS_PRESETS ?? 'small,base').split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(n in STEP_PRESETS)) throw new Error(`NMGRAD_PEERS_PRESETS: unknown preset '${n}' (${Object.keys(STEP_PRESETS).join(', ')})`);
  return names as StepPresetName[];
}

const caseName = (name: string, p: StepPreset): string => `${name} step ${p.batch}×${p.srcLen}+${p.tgtLen} tok`;

/**
 * Per preset: the PyTorch twin at 1 and 2 threads (each in a fresh child under /usr/bin/time -v,
 * so each has its peak RSS), then nmgrad's step on the wasm backend, dense, 1:8 FFN and 1:8 on
 * every Linear (hard phase), 1 and 2 threads, in this process as train-step times it; then a
 * fresh nmgrad child (dense, 2 threads) for nmgrad's peak RSS. `ratio` = the twin's time at its
 * best thread count (`baseline`) / nmgrad's time; the parameter counts must agree.
 */
export async function peersSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const missing = torchMissing();
  if (missing) {
    console.log(`peers: skipped: ${missing}`);
    return [];
  }
  if (!listBackends().includes('wasm')) throw new Error(`peers: the wasm backend is not available here (${listBackends().join(', ')})`);
  const script = firstExisting([resolve(here, '../../bench/peers/torch_step.py'), resolve(here, 'peers/torch_step.py'), resolve(process.cwd(), 'bench/peers/torch_step.py')]);
  const nmgradChild = firstExisting([resolve(here, 'peers/nmgrad-step.js')]);
  if (!script || !nmgradChild) throw new Error(`peers: ${!script ? 'bench/peers/torch_step.py' : 'dist/bench/peers/nmgrad-step.js'} not found (run npm run build)`);
  const timeBin = gnuTime();
  if (!timeBin) console.log('peers: /usr/bin/time -v unavailable: peak RSS is each child\'s own VmHWM (read from /proc/self/status at its end)');
  const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-peers-'));
  const out: BenchRecord[] = [];
  try {
    for (const name of chosenPresets()) {
      const preset = STEP_PRESETS[name];
      const batch = syntheticBatch(preset);
      const tokens = batch.src.filter((t) => t !== 0).length + batch.tgtIn.length;
      const params = buildModel(preset).numParameters();
      const kase = caseName(name, preset);

      const peers: (BenchRecord & { threads: number; median_ms: number })[] = [];
      for (const threads of THREADS) {
        const cfg = join(tmp, `${name}-${threads}.json`);
        writeFileSync(cfg, JSON.stringify({ ...preset, ...batch, threads, warmup: opts.quick ? 1 : 3, steps: opts.quick ? 3 : 10 }));
        const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
        const run = runChild(`torch_step.py ${name} ${threads}t`, 'python3', [script, '--config', cfg], timeBin, env);
        const r = run.report;
        checkParamCounts(name, params, r.params);
        if (threads === THREADS[0]) {
          console.log(`peers: ${name}: ${params} parameters in nmgrad's model, ${r.params} in the PyTorch twin; torch ${r.torch}, BLAS ${r.blas} (${(r.blas_libs ?? []).join(', ') || 'no BLAS library mapped'})`);
          const warning = blasWarning(r.blas, r.blas_libs);
          if (warning) console.log(`peers: ${warning}`);
        }
        peers.push({
          suite: 'peers', case: kase, variant: 'torch dense', threads, median_ms: r.median_ms, tokens_per_s: Math.round(tokens / (r.median_ms / 1000)),
          params: r.params, torch: r.torch, blas: r.blas, blas_libs: r.blas_libs, torch_threads: r.torch_threads,
          max_rss_mb: run.maxRssMb, rss_source: run.rssSource, rss_after_import_mb: r.rss_after_import_mb,
        });
      }
      const best = bestPeer(peers);
      const baseline = `torch ${best.threads}t`;
      out.push(...peers);

      for (const threads of THREADS) {
        setThreads(threads);
        for (const variant of VARIANTS) {
          let ms = 0;
          // withBackend is synchronous and tinybench is not: select the backend around the run.
          const previous = getBackend().name;
          setBackend('wasm');
          try {
            const { step } = makeStep(preset, variant, batch);
            await warmUp(step);
            ms = await medianMs(`peers ${name} wasm ${variant} ${threads}t`, step, opts, 3, { yield: true });
          } finally {
            setBackend(previous);
          }
          out.push({
            suite: 'peers', case: kase, variant: `wasm ${variant}`, threads, median_ms: ms, tokens_per_s: Math.round(tokens / (ms / 1000)),
            params, baseline, ratio: peerRatio(best, ms),
          });
        }
      }

      const mem = runChild(`nmgrad-step.js ${name}`, process.execPath, [nmgradChild, '--preset', name, '--variant', 'dense', '--threads', String(MEMORY_THREADS), '--backend', 'wasm', '--steps', opts.quick ? '2' : '5'], timeBin);
      checkParamCounts(name, params, mem.report.params);
      out.push({
        suite: 'peers', case: kase, variant: 'wasm dense (own process)', threads: MEMORY_THREADS, median_ms: mem.report.median_ms,
        params, max_rss_mb: mem.maxRssMb, rss_source: mem.rssSource, rss_after_import_mb: mem.report.rss_after_import_mb,
        baseline, ratio: peerRatio(best, mem.report.median_ms),
      });
      const mb = (x: number | null | undefined): string => (x == null ? '?' : `${x.toFixed(0)} MB`);
      console.log(`peers: ${name}: peak RSS of one training step: nmgrad ${MEMORY_THREADS}t ${mb(mem.maxRssMb)} (${mb(mem.report.rss_after_import_mb)} after start-up), torch ${best.threads}t ${mb(best.max_rss_mb as number | null)} (${mb(best.rss_after_import_mb as number | null)} after import torch) [${mem.rssSource}]`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}
