/** Shared layout of the pool's control block (Int32Array over a SharedArrayBuffer). */
export const CTRL_DONE = 0; // jobs finished in the current dispatch
export const CTRL_READY = 1; // workers whose listener is installed
export const CTRL_ERROR = 2; // non-zero once a job threw
export const CTRL_DEAD = 3; // non-zero once a worker exited
export const CTRL_SLOTS = 4;

import type { TaskName } from './tasks.js';

export interface Job {
  task: TaskName;
  args: object;
  rowStart: number;
  rowEnd: number;
}
