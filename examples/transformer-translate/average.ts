/**
 * Checkpoint averaging: a run can keep the weights of its last K checkpoints
 * (`checkpoints/step-N.safetensors`), and `averageRun` writes a run folder whose weights are
 * their element-wise mean (the optimizer state, masks and training state of the latest).
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, Tensor, loadSafetensors, saveCheckpoint } from 'nmgrad';
import { loadRun, saveRun, type Run } from './model-io.js';

export const SNAPSHOT_DIR = 'checkpoints';

const SNAPSHOT = /^step-(\d+)\.safetensors$/;

/** The kept weight snapshots of a run, oldest first, with their steps. */
export function listSnapshots(dir: string): { step: number; path: string }[] {
  const d = join(dir, SNAPSHOT_DIR);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .map((f) => SNAPSHOT.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), path: join(d, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** Writes the model's weights at `step` (atomic) and deletes all but the newest `keep` snapshots. */
export function saveSnapshot(dir: string, run: Run, step: number, keep: number): void {
  mkdirSync(join(dir, SNAPSHOT_DIR), { recursive: true });
  saveCheckpoint(join(dir, SNAPSHOT_DIR, `step-${step}.safetensors`), run.model);
  const all = listSnapshots(dir);
  for (const s of all.slice(0, Math.max(0, all.length - keep))) rmSync(s.path, { force: true });
}

/** Deletes snapshots past `step` (left by a run killed after a snapshot, before its checkpoint). */
export function dropSnapshotsAfter(dir: string, step: number): void {
  for (const s of listSnapshots(dir)) if (s.step > step) rmSync(s.path, { force: true });
}

/** Element-wise mean (float64 sums, one rounding to float32) of the weight files at `paths`, by tensor name. */
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

/**
 * Averages the last `k` snapshots of the run in `dir` into a run folder `out` (default
 * `dir/averaged`), written atomically file by file; returns the steps averaged.
 */
export function averageRun(dir: string, k: number, out = join(dir, 'averaged')): { steps: number[]; out: string } {
  if (!(Number.isInteger(k) && k >= 1)) throw new DataError('average', `the number of checkpoints must be a positive integer, got ${k}`);
  const snaps = listSnapshots(dir);
  if (snaps.length < k) {
    throw new DataError(dir, `holds ${snaps.length} kept checkpoint${snaps.length === 1 ? '' : 's'} (${SNAPSHOT_DIR}/), fewer than the ${k} to average; train with --keep ${k} (or --average ${k})`);
  }
  const picked = snaps.slice(snaps.length - k);
  const { run, state } = loadRun(dir);
  run.model.loadStateDict(averageWeights(picked.map((s) => s.path)), `average of ${picked.map((s) => s.path).join(', ')}`);
  if (existsSync(join(out, SNAPSHOT_DIR))) rmSync(join(out, SNAPSHOT_DIR), { recursive: true, force: true });
  saveRun(out, run, state);
  return { steps: picked.map((s) => s.step), out };
}
