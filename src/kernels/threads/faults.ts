/**
 * Fault-injection tasks used by the pool's tests: a job that throws, one that kills its worker
 * mid-task, one whose worker exits after the job, and one that stalls. They live in src (and
 * the task table) so the compiled worker runs them.
 */
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
    if (r === args.failAt) process.exit(3);
    args.out[r] = r;
  }
}

/**
 * Finishes its rows; a worker's share (start > 0, never the caller's) then exits its worker once
 * the job is done: a worker dying while idle.
 */
export function exitingAfterRows(args: FaultArgs, start: number, end: number): void {
  for (let r = start; r < end; r++) args.out[r] = r;
  if (start > 0) setTimeout(() => process.exit(4), 0);
}

/** A worker's share blocks for `failAt` milliseconds before writing its rows: a stalled worker. */
export function stallingRows(args: FaultArgs, start: number, end: number): void {
  if (start > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, args.failAt);
  for (let r = start; r < end; r++) args.out[r] = r;
}
