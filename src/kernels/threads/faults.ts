/**
 * Fault-injection tasks used by the pool's tests: a job that throws and a job that kills its
 * worker mid-task. They live in src (and the task table) so the compiled worker runs them.
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
