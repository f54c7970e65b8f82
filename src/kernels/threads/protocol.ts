/** Shared layout of the pool's control block (Int32Array over a SharedArrayBuffer). */
export const CTRL_DONE = 0; // chunks finished (or failed) in the current dispatch
export const CTRL_READY = 1; // workers whose listener is installed
export const CTRL_ERROR = 2; // non-zero once a job threw
export const CTRL_DEAD = 3; // non-zero once a worker exited
export const CTRL_NEXT = 4; // the dispatch's epoch << CHUNK_BITS | the next unclaimed chunk
export const CTRL_SLOTS = 5;

/** A row-range task: `fn(args, rowStart, rowEnd, seq)` over rows (elements, columns, batches) [rowStart, rowEnd). */
export type RowTask = (args: any, rowStart: number, rowEnd: number, seq?: number) => void;
/** Tasks by name: a backend's table (js/tasks.ts, wasm/tasks.ts), all of them in ../tasks.ts. */
export type TaskTable = Readonly<Record<string, RowTask>>;

/**
 * One dispatch: rows [0, rows) cut into `chunks` aligned chunks. Chunk 0 is the caller's and
 * chunk `first` this worker's; every later chunk goes to whichever thread claims it first
 * (claimChunk), so a thread that starts late or runs slow takes less of the work. Each chunk
 * is computed exactly as a single thread would, so who runs it never changes the bits.
 */
export interface Job {
  /** A key of the worker's task table (../worker.ts). */
  task: string;
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

/** A typed-array argument that lies in the tensor arena, posted as its place instead of a cloned buffer. */
interface ArenaRef {
  readonly arenaRef: 'f32' | 'i32' | 'u8';
  readonly offset: number;
  readonly length: number;
}

/**
 * The job's arguments with every top-level typed array that lies in the arena replaced by an
 * ArenaRef: posting a SharedArrayBuffer clones a handle to it (and leaves a wrapper for the
 * worker's collector), posting three numbers costs nothing. Other arguments pass unchanged.
 */
export function encodeArenaArgs(args: object, inArena: (v: ArrayBufferView) => boolean): object {
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(args)) {
    if (!ArrayBuffer.isView(v) || !inArena(v)) continue;
    const kind = v instanceof Float32Array ? 'f32' : v instanceof Int32Array ? 'i32' : v instanceof Uint8Array ? 'u8' : null;
    if (kind === null) continue;
    out ??= { ...args };
    out[k] = { arenaRef: kind, offset: v.byteOffset, length: (v as Float32Array).length } satisfies ArenaRef;
  }
  return out ?? args;
}

/** Inverse of encodeArenaArgs in the receiving thread, on its view of the arena's buffer. */
export function decodeArenaArgs(args: object, buffer: () => SharedArrayBuffer): object {
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(args)) {
    if (v === null || typeof v !== 'object' || !('arenaRef' in v)) continue;
    const ref = v as ArenaRef;
    out ??= { ...args };
    const b = buffer();
    out[k] = ref.arenaRef === 'f32' ? new Float32Array(b, ref.offset, ref.length) : ref.arenaRef === 'i32' ? new Int32Array(b, ref.offset, ref.length) : new Uint8Array(b, ref.offset, ref.length);
  }
  return out ?? args;
}

/**
 * A worker's mailbox: how a dispatch reaches a worker that is already awake. After a job the
 * worker polls its mailbox (a short spin, then a futex wait) before it goes back to its event
 * loop, so a training step's hundreds of back-to-back dispatches each start in well under a
 * microsecond instead of waking the worker's event loop through postMessage (~20–40 µs).
 *
 * Header (Int32Array): MB_SEQ counts jobs, 2 per job (odd while the caller writes one), MB_KIND
 * says how the job is stored (MB_JSON: ASCII JSON in the payload, MB_V8: v8.serialize bytes,
 * MB_PORT: posted on the worker's job port, for arguments that hold a SharedArrayBuffer outside
 * the arena), MB_LEN is the payload's byte length, MB_STATE says whether the worker
 * polls (MB_POLLING) or listens on its event loop (MB_LISTENING), where a message wakes it.
 * The caller writes MB_SEQ and then reads MB_STATE; the worker writes MB_STATE and then reads
 * MB_SEQ (all sequentially consistent), so a job is never left unseen.
 */
export const MB_SEQ = 0;
export const MB_LEN = 1;
export const MB_STATE = 2;
export const MB_KIND = 3;
export const MB_JSON = 0;
export const MB_V8 = 1;
export const MB_PORT = 2;
export const MB_HEADER_BYTES = 16;
export const MB_LISTENING = 0;
export const MB_POLLING = 1;
/** Serialized jobs larger than this go through the job port. */
export const MB_PAYLOAD_BYTES = 16384;
/** A job sent through the job port carries the mailbox sequence number it belongs to. */
export interface PortJob {
  seq: number;
  job: Job;
}
