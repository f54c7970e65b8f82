import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CellLocks, cellRunning, lockPath, type LockHolder } from '../../examples/transformer-translate/study/lock.js';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/examples/transformer-translate/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-study-lock-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A process that has exited: its pid is free (a dead holder). */
function deadPid(): number {
  const r = spawnSync('node', ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

function plant(dir: string, cell: string, holder: Partial<LockHolder>, ageSeconds = 0): void {
  mkdirSync(dir, { recursive: true });
  const path = lockPath(dir, cell);
  writeFileSync(path, JSON.stringify({ owner: 'pid:elsewhere:1', host: hostname(), pid: process.ppid, since: 'then', ...holder }));
  if (ageSeconds) {
    const t = new Date(Date.now() - ageSeconds * 1000);
    utimesSync(path, t, t);
  }
}

const quiet = (): void => {};

describe('the cell lock', () => {
  it('is taken exclusively and removed on release', () => {
    const dir = join(tmp, 'basic');
    const locks = new CellLocks(dir, quiet, { STUDY_TASK_ID: 'slurm:7_1' });
    expect(locks.acquire('a')).toBeNull();
    const held = JSON.parse(readFileSync(lockPath(dir, 'a'), 'utf8')) as LockHolder;
    expect(held).toMatchObject({ owner: 'slurm:7_1', host: hostname(), pid: process.pid });
    locks.release('a');
    expect(existsSync(lockPath(dir, 'a'))).toBe(false);
    locks.close();
  });

  it('is refused while a live process of another task holds it, and taken over from the same task, a dead process or a silent holder', () => {
    const dir = join(tmp, 'takeover');
    const locks = new CellLocks(dir, quiet, { STUDY_TASK_ID: 'slurm:7_1' });
    // A live process on this host (our parent), another task: busy.
    plant(dir, 'live', { owner: 'slurm:8_1' });
    expect(locks.acquire('live')).toMatch(/^slurm:8_1 \(pid \d+ on /);
    expect(cellRunning(dir, 'live')).toBe(true);
    // The same scheduler task restarted (a requeue): its own lock, even with a live pid.
    plant(dir, 'requeued', { owner: 'slurm:7_1' });
    expect(locks.acquire('requeued')).toBeNull();
    // A dead process on this host.
    plant(dir, 'dead', { owner: 'slurm:9_1', pid: deadPid() });
    expect(cellRunning(dir, 'dead')).toBe(false);
    expect(locks.acquire('dead')).toBeNull();
    // Another host: only its heartbeat tells; fresh is busy, stale is taken over.
    plant(dir, 'remote', { owner: 'slurm:9_2', host: 'some-other-node' });
    expect(locks.acquire('remote')).toMatch(/^slurm:9_2/);
    plant(dir, 'lost', { owner: 'slurm:9_3', host: 'some-other-node' }, 4000);
    expect(locks.acquire('lost')).toBeNull();
    for (const c of ['requeued', 'dead', 'lost']) expect((JSON.parse(readFileSync(lockPath(dir, c), 'utf8')) as LockHolder).owner).toBe('slurm:7_1');
    locks.close(); // releases what it holds, leaves the others' locks
    expect(['live', 'requeued', 'dead', 'remote', 'lost'].filter((c) => existsSync(lockPath(dir, c)))).toEqual(['live', 'remote']);
  });
});

/** The grid of study-e2e.test.ts with one recipe: dense + SR-STE at 1:8, one seed, 2 cells. */
const GRID = [
  'compare', '--recipes', 'srste', '--nm', '1:8', '--seeds', '1', '--steps', '60',
  '--d-model', '16', '--ffn', '32', '--heads', '2', '--layers', '1', '--merges', '50', '--batch-tokens', '300', '--eval-sentences', '10', '--threads', '1',
];

function compare(...extra: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('node', [cli, ...GRID, ...extra], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function summaryNumbers(dir: string): string {
  const { trainSeconds: _t, wallSeconds: _w, ...rest } = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Record<string, unknown>;
  return JSON.stringify(rest);
}

describe('compare under a scheduler', () => {
  it('skips a cell whose lock another live task holds (exit 4, folder untouched) and trains it once the lock is gone', () => {
    const out = join(tmp, 'busy');
    plant(out, 'srste-1-8_seed1', { owner: 'slurm:5_0' });
    const r = compare('--out', out);
    expect(r.status).toBe(4);
    expect(r.stdout).toMatch(/srste-1-8_seed1: skipped, another task is training it: slurm:5_0/);
    expect(r.stderr).toMatch(/1 cell\(s\) skipped because another task holds their lock: srste-1-8_seed1/);
    expect(existsSync(join(out, 'srste-1-8_seed1'))).toBe(false);
    expect(existsSync(join(out, 'dense_seed1', 'summary.json'))).toBe(true);
    expect(existsSync(lockPath(out, 'dense_seed1'))).toBe(false);
    const listed = compare('--out', out, '--list', '--json').stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; status: string });
    expect(listed.map((c) => [c.name, c.status])).toEqual([['dense_seed1', 'done'], ['srste-1-8_seed1', 'running']]);
    rmSync(lockPath(out, 'srste-1-8_seed1'));
    expect(compare('--out', out).status).toBe(0);
  }, 120_000);

  it('SIGTERM checkpoints the cell in training and exits 143; the rerun resumes it bit-identically', async () => {
    const whole = join(tmp, 'whole');
    const cut = join(tmp, 'cut');
    expect(compare('--out', whole).status).toBe(0);
    const child = spawn('node', [cli, ...GRID, '--out', cut], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // The first logged step of the first cell: in the middle of training.
      if (/"step":25\b/.test(stdout) && !child.killed) child.kill('SIGTERM');
    });
    const status = await new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    expect(status).toBe(143);
    const saved = /interrupted: checkpoint saved at step (\d+)/.exec(stdout);
    expect(saved).not.toBeNull();
    const step = Number(saved![1]);
    expect(step).toBeGreaterThan(0);
    expect(step).toBeLessThan(60);
    expect(existsSync(lockPath(cut, 'dense_seed1'))).toBe(false);
    const again = compare('--out', cut);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(`resuming ${join(cut, 'dense_seed1')} at step ${step}`);
    for (const cell of ['dense_seed1', 'srste-1-8_seed1']) expect(summaryNumbers(join(cut, cell))).toBe(summaryNumbers(join(whole, cell)));
    expect(readFileSync(join(cut, 'results.json'), 'utf8')).toBe(readFileSync(join(whole, 'results.json'), 'utf8'));
  }, 120_000);
});
