/** Shared layout of the pool's control block (Int32Array over a SharedArrayBuffer). */
export const CTRL_DONE = 0; // chunks finished (or failed) in the current dispatch
export const CTRL_READY = 1; // workers whose listener is installed
export const CTRL_ERROR = 2; // non-zero once a job threw
export const CTRL_DEAD = 3; // non-zero once a worker exited
export const CTRL_NEXT = 4; // the dispatch's epoch << CHUNK_BITS | the next unclaimed chunk
export const CTRL_SLOTS = 5;

import type { TaskName } from './tasks.js';

/**
 * One dispatch: rows [0, rows) cut into `chunks` aligned chunks. Chunk 0 is the caller's and
 * chunk `first` this worker's; every later chunk goes to whichever thread claims it first
 * (claimChunk), so a thread that starts late or runs slow takes less of the work. Each chunk
 * is computed exactly as a single thread would, so who runs it never changes the bits.
 */
export interface Job {
  task: TaskName;
  args: object;
  rows: number;
  align: number;
  chunks: number;
  first: number;
  epoch: number;
  /** Names the dispatch for tasks that cache per-product work across its chunks (never reused). */
  seq: number;
}

export const CHUNK_BITS = 12;
const CHUNK_MASK = (1 << CHUNK_BITS) - 1;
/** Most chunks of one dispatch. */
export const MAX_CHUNKS = CHUNK_MASK;
/** Epochs wrap below 2^19, keeping the control word a positive int32. */
export const EPOCH_MASK = (1 << (31 - CHUNK_BITS)) - 1;

/** Rows [start, end) of chunk i of `chunks` (whole blocks of `align` rows, the last one clipped). */
export function chunkRange(rows: number, align: number, chunks: number, i: number): [number, number] {
  const blocks = Math.ceil(rows / align);
  const base = Math.floor(blocks / chunks);
  const extra = blocks % chunks;
  const b0 = i * base + Math.min(i, extra);
  const take = base + (i < extra ? 1 : 0);
  return [Math.min(rows, b0 * align), Math.min(rows, (b0 + take) * align)];
}

/** Claims the next unclaimed chunk of dispatch `epoch`; -1 when none is left (or the dispatch is over). */
export function claimChunk(ctrl: Int32Array, epoch: number, chunks: number): number {
  for (;;) {
    const cur = Atomics.load(ctrl, CTRL_NEXT);
    if (cur >>> CHUNK_BITS !== epoch) return -1;
    const i = cur & CHUNK_MASK;
    if (i >= chunks) return -1;
    if (Atomics.compareExchange(ctrl, CTRL_NEXT, cur, cur + 1) === cur) return i;
  }
}

/** Ends dispatch `epoch` for claims: returns how many chunks were claimed before it closed. */
export function closeClaims(ctrl: Int32Array, epoch: number, chunks: number): number {
  for (;;) {
    const cur = Atomics.load(ctrl, CTRL_NEXT);
    const i = cur & CHUNK_MASK;
    if (i >= chunks || Atomics.compareExchange(ctrl, CTRL_NEXT, cur, (epoch << CHUNK_BITS) | chunks) === cur) return Math.min(i, chunks);
  }
}
