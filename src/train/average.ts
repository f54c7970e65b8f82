/**
 * Checkpoint averaging: a run keeps the weights of its last K checkpoints
 * (`checkpoints/step-N.safetensors`, `fit({ keep })`), and `averageRun` writes a run folder whose
 * weights are their element-wise mean, with the optimizer state, sparse state and training state
 * of the run's latest checkpoint. It needs no model: it works on the files.
 */
import { readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError } from '../errors.js';
import { Tensor } from '../autograd/tensor.js';
import { encodeSafetensors, loadSafetensors, writeFileAtomic, type ByteTensor } from '../nn/checkpoint.js';
import { AVERAGED_DIR, CHECKPOINT_FILE, METRICS_FILE, SNAPSHOT_DIR, SUMMARY_FILE, ensureFolder, existingRunFiles, listSnapshots } from './run-folder.js';

/** Element-wise mean (float64 sums, one rounding to float32) of the F32 tensors of the files at `paths`, by name. */
export function averageWeights(paths: readonly string[]): Map<string, Tensor> {
  if (paths.length === 0) throw new DataError('average', 'no checkpoints to average');
  let sums: Map<string, { shape: number[]; sum: Float64Array }> | null = null;
  for (const path of paths) {
    const { tensors } = loadSafetensors(path);
    if (sums === null) {
      sums = new Map([...tensors].map(([n, t]) => [n, { shape: [...t.shape], sum: new Float64Array(t.size) }]));
    }
    if (tensors.size !== sums.size) throw new DataError(path, `holds ${tensors.size} tensors where ${paths[0]} holds ${sums.size}`);
    for (const [name, t] of tensors) {
      const s = sums.get(name);
      if (!s || s.sum.length !== t.size) throw new DataError(path, `tensor '${name}' is missing from ${paths[0]} or has another shape`);
      const d = t.data;
      for (let i = 0; i < d.length; i++) s.sum[i] += d[i]!;
    }
  }
  const out = new Map<string, Tensor>();
  for (const [name, { shape, sum }] of sums!) out.set(name, new Tensor(Float32Array.from(sum, (v) => v / paths.length), shape));
  return out;
}

const sameFolder = (a: string, b: string): boolean => {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
};

/**
 * Averages the last `k` kept checkpoints of the run in `dir` into the run folder `out` (default
 * `dir/averaged`), file by file atomically; returns the steps averaged. `out` may not be the run
 * itself, and a folder that already holds another run is replaced only with `overwrite`
 * (`dir/averaged` is the run's own and is always refreshed).
 */
export function averageRun(dir: string, k: number, out = join(dir, AVERAGED_DIR), opts: { overwrite?: boolean } = {}): { steps: number[]; out: string } {
  if (!(Number.isInteger(k) && k >= 1)) throw new DataError('average', `the number of checkpoints must be a positive integer, got ${k}`);
  if (sameFolder(out, dir)) throw new DataError(out, 'is the run being averaged; write the average to another folder (default <run>/averaged)');
  const own = sameFolder(out, join(dir, AVERAGED_DIR));
  if (!own && existingRunFiles(out).length && !opts.overwrite) {
    throw new DataError(out, `already holds a run (${existingRunFiles(out).join(', ')}); choose another --out or pass --overwrite to replace it`);
  }
  const snaps = listSnapshots(dir);
  if (snaps.length < k) {
    throw new DataError(dir, `holds ${snaps.length} kept checkpoint${snaps.length === 1 ? '' : 's'} (${SNAPSHOT_DIR}/), fewer than the ${k} to average; train with --keep ${k} (or --average ${k})`);
  }
  const picked = snaps.slice(snaps.length - k);
  const latest = loadSafetensors(join(dir, CHECKPOINT_FILE));
  const mean = averageWeights(picked.map((s) => s.path));
  for (const name of mean.keys()) {
    if (!latest.tensors.has(name)) throw new DataError(join(dir, CHECKPOINT_FILE), `has no tensor '${name}' of the kept checkpoints`);
  }
  const tensors = new Map<string, Tensor | ByteTensor>();
  for (const [name, t] of latest.tensors) tensors.set(name, mean.get(name) ?? t);
  for (const [name, b] of latest.bytes) tensors.set(name, b);
  ensureFolder(out);
  for (const sub of [SNAPSHOT_DIR, METRICS_FILE, SUMMARY_FILE]) rmSync(join(out, sub), { recursive: true, force: true });
  // The run's own files (config, tokenizer, options) travel along, so `out` loads as a run.
  for (const f of readdirSync(dir)) {
    const src = join(dir, f);
    if (f.startsWith('.') || f === CHECKPOINT_FILE || f === METRICS_FILE || f === SUMMARY_FILE || !statSync(src).isFile()) continue;
    writeFileAtomic(join(out, f), readFileSync(src));
  }
  writeFileAtomic(join(out, CHECKPOINT_FILE), encodeSafetensors([...tensors], latest.metadata));
  return { steps: picked.map((s) => s.step), out };
}
