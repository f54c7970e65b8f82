/**
 * The cell's lock: `<out>/<cell>.lock`, held by the one task that trains the cell. Schedulers
 * run the same shard twice more often than one would think (a task resubmitted while the old
 * one still runs, a replacement pod next to a terminating one, two array jobs over one results
 * folder), and two trainers in one run folder would overwrite each other's checkpoints. The
 * lock is created with link(2), which is atomic on local and network file systems alike, so
 * exactly one task gets it; the others skip the cell and report it (compare exits 4).
 *
 * A holder that died without removing its lock (SIGKILL, a lost node) must not block the cell
 * forever. The lock is taken over when
 *   - its owner is this very task, restarted by its scheduler (a Slurm requeue keeps the array
 *     task's identity; a restarted pod keeps its Job index): the scheduler has ended the old
 *     process before starting the new one;
 *   - it was taken on this host by a process that no longer exists;
 *   - its heartbeat is older than STUDY_LOCK_STALE_S seconds (default 1800): the holder touches
 *     it every minute while it trains, so only a holder on a lost machine goes quiet that long.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface LockHolder {
  /** The task's identity: STUDY_TASK_ID (set by docs/study/study-task.sh), else host and pid. */
  owner: string;
  host: string;
  pid: number;
  since: string;
}

const HEARTBEAT_MS = 60_000;

export function lockPath(outDir: string, cell: string): string {
  return join(outDir, `${cell}.lock`);
}

export function staleSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.STUDY_LOCK_STALE_S);
  return Number.isFinite(v) && v > 0 ? v : 1800;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readLock(path: string): { holder: LockHolder | null; ageSeconds: number } | null {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return null;
  }
  let holder: LockHolder | null = null;
  try {
    holder = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    // unreadable: judged by its age alone
  }
  return { holder, ageSeconds: (Date.now() - mtimeMs) / 1000 };
}

/** Why a lock held by someone else may be taken over, or null while its holder may still be at work. */
export function takeoverReason(lock: { holder: LockHolder | null; ageSeconds: number }, me: LockHolder, stale: number): string | null {
  const h = lock.holder;
  if (h && h.owner === me.owner && !h.owner.startsWith('pid:')) return `it is this task's own lock (${h.owner}), left by its previous run`;
  if (h && h.host === me.host && (h.pid === me.pid || !alive(h.pid))) return `its process ${h.pid} on ${h.host} is gone`;
  if (lock.ageSeconds > stale) return `no heartbeat for ${Math.round(lock.ageSeconds)} s (over ${stale} s)`;
  return null;
}

export function describeHolder(h: LockHolder | null): string {
  return h ? `${h.owner} (pid ${h.pid} on ${h.host}, since ${h.since})` : 'an unreadable lock';
}

/** The locks of one process: taken per cell, touched while held, removed when done or at exit. */
export class CellLocks {
  private readonly held = new Set<string>();
  private readonly me: LockHolder;
  private readonly timer: NodeJS.Timeout;
  private readonly onExit = (): void => this.releaseAll();

  constructor(private readonly outDir: string, private readonly log: (s: string) => void, env: NodeJS.ProcessEnv = process.env) {
    const host = hostname();
    this.me = { owner: env.STUDY_TASK_ID || `pid:${host}:${process.pid}`, host, pid: process.pid, since: '' };
    this.timer = setInterval(() => this.touchAll(), HEARTBEAT_MS);
    this.timer.unref();
    process.on('exit', this.onExit);
  }

  /** Takes the cell's lock; returns null when taken, else a description of its live holder. */
  acquire(cell: string): string | null {
    mkdirSync(this.outDir, { recursive: true });
    const path = lockPath(this.outDir, cell);
    const mine: LockHolder = { ...this.me, since: new Date().toISOString() };
    const tmp = `${path}.${this.me.host}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(mine)}\n`);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(tmp, path);
          this.held.add(path);
          return null;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const lock = readLock(path);
        if (lock === null) continue; // removed meanwhile: try again
        const reason = attempt === 0 ? takeoverReason(lock, this.me, staleSeconds()) : null;
        if (reason === null) return describeHolder(lock.holder);
        this.log(`${cell}: taking over the lock of ${describeHolder(lock.holder)}: ${reason}`);
        rmSync(path, { force: true });
      }
      return describeHolder(readLock(path)?.holder ?? null);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Removes the cell's lock if it is still this process's. */
  release(cell: string): void {
    const path = lockPath(this.outDir, cell);
    if (!this.held.delete(path)) return;
    const lock = readLock(path);
    if (lock?.holder && lock.holder.pid === this.me.pid && lock.holder.host === this.me.host) rmSync(path, { force: true });
  }

  releaseAll(): void {
    for (const path of [...this.held]) {
      this.held.delete(path);
      const lock = readLock(path);
      if (lock?.holder && lock.holder.pid === this.me.pid && lock.holder.host === this.me.host) rmSync(path, { force: true });
    }
  }

  /** Stops the heartbeat and the exit hook (the locks themselves are released per cell). */
  close(): void {
    this.releaseAll();
    clearInterval(this.timer);
    process.off('exit', this.onExit);
  }

  private touchAll(): void {
    const now = new Date();
    for (const path of this.held) if (existsSync(path)) utimesSync(path, now, now);
  }
}

/** For `--list`: whether a live task holds the cell (a fresh heartbeat; a dead process on this host does not count). */
export function cellRunning(outDir: string, cell: string): boolean {
  const lock = readLock(lockPath(outDir, cell));
  if (lock === null) return false;
  const probe: LockHolder = { owner: '', host: hostname(), pid: process.pid, since: '' };
  return takeoverReason(lock, probe, staleSeconds()) === null;
}
