/**
 * Fault-injection tasks used by the pool's tests: a job that throws, one that kills its worker
 * mid-task, one whose worker exits after the job, and one that stalls. They live in src (and
 * the task table) so the compiled worker runs them. Only the throwing one also fires on the
 * calling thread; the others act only inside a worker. A dispatch gives each worker its own
 * first chunk (chunk 1 is the first worker's: rows [512, 1024) of 4096 rows on 2 threads), so
 * with work stealing off (setWorkStealing(false), as those tests set it) a fault placed there
 * always fires in a worker.
 */
import { isMainThread } from 'node:worker_threads';

export interface FaultArgs {
  out: Float32Array;
  /** Row at which the fault fires; rows before it are written. */
  failAt: number;
}

export function throwingRows(args: FaultArgs, start: number, end: number): void {
  for (let r = start; r < end; r++) {
    if (r === args.failAt) throw new Error(`injected failure at row ${r}`);
    args.out[r] = r;
  }
}

export function exitingRows(args: FaultArgs, start: number, end: number): void {
  for (let r = start; r < end; r++) {
    if (r === args.failAt && !isMainThread) process.exit(3);
    args.out[r] = r;
  }
}

/** Finishes its rows; in a worker it then exits the worker once the job is done: a worker dying while idle. */
export function exitingAfterRows(args: FaultArgs, start: number, end: number): void {
  for (let r = start; r < end; r++) args.out[r] = r;
  if (!isMainThread) setTimeout(() => process.exit(4), 0);
}

/** In a worker, blocks for `failAt` milliseconds before writing its rows: a stalled worker. */
export function stallingRows(args: FaultArgs, start: number, end: number): void {
  if (!isMainThread) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, args.failAt);
  for (let r = start; r < end; r++) args.out[r] = r;
}

export interface FillArgs {
  out: Float32Array;
  /** Written to every row; a nested copy checks that objects arrive whole. */
  value: number;
  nested: { value: number; label: string };
}

/** Writes `value` to its rows after checking that `nested` came through intact: the pool's transport tests. */
export function fillValueRows(args: FillArgs, start: number, end: number): void {
  if (!Object.is(args.nested.value, args.value)) throw new Error(`nested value ${args.nested.value} arrived, ${args.value} at the top`);
  for (let r = start; r < end; r++) args.out[r] = args.value;
}

export const FAULT_TASKS = { throwingRows, exitingRows, exitingAfterRows, stallingRows, fillValueRows };
