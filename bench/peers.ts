/**
 * `npm run bench -- peers`: nmgrad's Transformer training step beside its PyTorch twin
 * (bench/peers/torch_step.py) in one sitting. See docs/peers.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend, labelSmoothedLoss, listBackends, noGrad, setBackend, withBackend } from '../src/index.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { medianMs, type BenchRecord, type SuiteOptions } from './lib.js';
import { STEP_PRESETS, buildModel, makeStep, syntheticBatch, warmUp, type Batch, type StepPreset, type StepPresetName, type StepVariant } from './step-builder.js';
import { bestPeer, blasWarning, checkEquivalence, checkParamCounts, parseChildReport, parseMaxRssMb, peerRatio, type ChildReport, type EquivalenceReport } from './peers/report.js';

const THREADS = [1, 2];
const VARIANTS: StepVariant[] = ['dense', '1:8', '1:8 all'];
/** nmgrad's thread count for the peak-memory child. */
const MEMORY_THREADS = 2;
const here = dirname(fileURLToPath(import.meta.url));

function firstExisting(paths: string[]): string | null {
  return paths.find((p) => existsSync(p)) ?? null;
}

/**
 * The first Python that imports torch: NMGRAD_PEERS_PYTHON if set, else `python3` on PATH, else
 * /usr/bin/python3 (Debian's python3-torch installs there, which a pyenv or venv python3 on
 * PATH does not see). `why` says what each one answered when none does.
 */
function findTorchPython(): { python: string } | { why: string } {
  const candidates = process.env.NMGRAD_PEERS_PYTHON ? [process.env.NMGRAD_PEERS_PYTHON] : ['python3', '/usr/bin/python3'];
  const answers: string[] = [];
  for (const python of [...new Set(candidates)]) {
    const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return { python };
    const why = r.error ? `not runnable (${r.error.message})` : `cannot import torch (${(r.stderr.trim().split('\n').pop() ?? '').trim() || `exit ${r.status}`})`;
    answers.push(`${python} ${why}`);
  }
  return { why: answers.join('; ') };
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

/**
 * Gives the twin nmgrad's initial weights and compares the eval-mode (dropout off) logits and loss
 * on the bench batch: the check that the twin runs the same function, not only as many parameters.
 */
export function equivalence(name: string, preset: StepPreset, batch: Batch, python: string, script: string, tmp: string): EquivalenceReport & { nmgrad_loss: number } {
  const model = buildModel(preset);
  model.eval();
  const { logits, loss } = withBackend('wasm', () => noGrad(() => {
    const l = model.forward(batch.src, [preset.batch, preset.srcLen], batch.tgtIn, [preset.batch, preset.tgtLen], 0);
    return { logits: l.data.slice(), loss: labelSmoothedLoss(l, batch.tgtOut, 0, 0.1).data[0]! };
  }));
  const named = model.namedParameters();
  const flat = new Float32Array(named.reduce((n, [, p]) => n + p.size, 0));
  const weights: { name: string; shape: readonly number[]; offset: number }[] = [];
  let offset = 0;
  for (const [n, p] of named) {
    flat.set(p.data.subarray(0, p.size), offset);
    weights.push({ name: n, shape: p.shape, offset });
    offset += p.size;
  }
  const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const weightsFile = join(tmp, `${name}-weights.f32`);
  const logitsFile = join(tmp, `${name}-logits.f32`);
  writeFileSync(weightsFile, bytes(flat));
  writeFileSync(logitsFile, bytes(logits));
  const cfg = join(tmp, `${name}-check.json`);
  writeFileSync(cfg, JSON.stringify({ ...preset, ...batch, threads: 1, check: { weights, weightsFile, logitsFile } }));
  const r = spawnSync(python, [script, '--config', cfg], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) throw new Error(`torch_step.py ${name} check exited with ${r.error?.message ?? r.status}:\n${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
  const report = parseChildReport<EquivalenceReport>(r.stdout, `torch_step.py ${name} check`, ['max_abs_logit_diff', 'max_abs_logit', 'loss']);
  checkEquivalence(name, loss, report);
  rmSync(weightsFile);
  rmSync(logitsFile);
  return { ...report, nmgrad_loss: loss };
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
  const found = findTorchPython();
  if ('why' in found) {
    console.log(`peers: skipped: ${found.why}`);
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
      const same = equivalence(name, preset, batch, found.python, script, tmp);
      console.log(`peers: ${name}: with nmgrad's weights the twin's eval logits differ by at most ${same.max_abs_logit_diff.toExponential(2)} (|logit| ≤ ${same.max_abs_logit.toFixed(2)}), loss ${same.loss.toFixed(5)} vs nmgrad's ${same.nmgrad_loss.toFixed(5)}`);

      const peers: (BenchRecord & { threads: number; median_ms: number })[] = [];
      for (const threads of THREADS) {
        const cfg = join(tmp, `${name}-${threads}.json`);
        writeFileSync(cfg, JSON.stringify({ ...preset, ...batch, threads, warmup: opts.quick ? 1 : 3, steps: opts.quick ? 3 : 10 }));
        const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
        const run = runChild(`torch_step.py ${name} ${threads}t`, found.python, [script, '--config', cfg], timeBin, env);
        const r = run.report;
        checkParamCounts(name, params, r.params);
        if (threads === THREADS[0]) {
          console.log(`peers: ${name}: ${params} parameters in nmgrad's model, ${r.params} in the PyTorch twin; torch ${r.torch}, BLAS ${r.blas} (${(r.blas_libs ?? []).join(', ') || 'no BLAS library mapped'})`);
          const warning = blasWarning(r.blas, r.blas_libs);
          if (warning) console.log(`peers: ${warning}`);
        }
        peers.push({
          suite: 'peers', case: kase, variant: 'torch dense', threads, median_ms: r.median_ms, tokens_per_s: Math.round(tokens / (r.median_ms / 1000)),
          params: r.params, max_abs_logit_diff: same.max_abs_logit_diff, torch: r.torch, blas: r.blas, blas_libs: r.blas_libs, torch_threads: r.torch_threads,
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
