/**
 * The worker_threads pool. Synchronous API: the caller posts one dispatch to each worker, runs
 * chunks itself, then waits on a shared counter with Atomics.wait. Work is split by output rows
 * into a few chunks per thread: each thread starts with one, and the rest go to whichever thread
 * claims them first (a shared atomic counter), so a worker that wakes late or runs slow does not
 * hold the caller up. Each row is computed exactly as a single thread would, so results are
 * bitwise identical for any thread count and any claiming order.
 *
 * Failure handling without a hang: a job that throws reports through a MessagePort read with
 * receiveMessageOnPort; a worker that exits marks itself dead from its own 'exit' hook; and a
 * watchdog bounds any wait. Any failure tears the pool down (the next call starts a fresh one)
 * and surfaces as a WorkerError in the caller.
 *
 * The pool knows no kernel: a dispatch names a task of the table its caller passes, runs it on
 * this thread from that table, and the workers run it from the table the worker entry
 * (../worker.ts) assembles from the same backend tables.
 */
import { availableParallelism } from 'node:os';
import { serialize } from 'node:v8';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { WorkerError } from '../../errors.js';
import { noteSharedBytes } from '../memory/shared-gc.js';
import { arenaCopy, isShared } from '../memory/storage.js';
import { arenaMemory, inArena } from '../memory/arena.js';
import { workerUrl } from './build-check.js';
import { CHUNK_BITS, CTRL_DEAD, CTRL_DONE, CTRL_ERROR, CTRL_NEXT, CTRL_READY, CTRL_SLOTS, EPOCH_MASK, MAX_CHUNKS, MB_HEADER_BYTES, MB_JSON, MB_KIND, MB_LEN, MB_LISTENING, MB_PORT, MB_V8, MB_PAYLOAD_BYTES, MB_SEQ, MB_STATE, chunkRange, claimChunk, closeClaims, encodeArenaArgs, type Job, type PortJob, type TaskTable } from './protocol.js';

let requested: number | null = null;

/**
 * Most threads (main thread included): 4 × the cores. More only queue for the same cores, each
 * with a worker isolate and its wasm instances of its own (1010 threads took 3.1 GB in 10 s).
 */
export function maxThreads(): number {
  return 4 * Math.max(1, availableParallelism());
}

/** What is wrong with `n` as a thread count, or null: the one rule for setThreads, NMGRAD_THREADS and the CLI's --threads. */
export function threadCountProblem(n: number): string | null {
  const cap = maxThreads();
  if (Number.isInteger(n) && n >= 1 && n <= cap) return null;
  return `must be an integer in [1, ${cap}] (4 × the ${cap / 4} cores: more threads only queue for the same cores)`;
}

function envThreads(): number | null {
  const raw = process.env.NMGRAD_THREADS;
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new WorkerError('threads', `NMGRAD_THREADS must be a positive integer, got '${raw}'`);
  const problem = threadCountProblem(n);
  if (problem !== null) throw new WorkerError('threads', `NMGRAD_THREADS ${problem}, got '${raw}'`);
  return n;
}

/** NMGRAD_THREADS, else the core count: read once (every kernel call asks, and both cost a call into the runtime). */
let defaultThreads: number | null = null;

/** Threads used by parallel kernels (main thread included). */
export function getThreads(): number {
  if (requested !== null) return requested;
  defaultThreads ??= envThreads() ?? Math.max(1, availableParallelism());
  return defaultThreads;
}

/** Sets the thread count (main thread included); 1 disables the pool. */
export function setThreads(n: number): void {
  const problem = threadCountProblem(n);
  if (problem !== null) throw new WorkerError('setThreads', `thread count ${problem}, got ${n}`);
  if (n !== getThreads()) shutdownPool();
  requested = n;
}

/**
 * Below this many (estimated) flops a kernel stays on the calling thread. With jobs handed
 * over through the shared mailbox (~6 µs) splitting pays from about a quarter million: on the
 * `small` training step (wasm, 2 threads) 2¹⁸ against 2²⁰ puts attention's softmax and the
 * Adam update of 128×128 weights on both threads and cuts the worker's idle share from
 * 23–25% to 20–21% (2¹⁷ and 2¹⁹ in between or no better).
 */
export const DEFAULT_PARALLEL_MIN_COST = 1 << 18;
export let PARALLEL_MIN_COST = DEFAULT_PARALLEL_MIN_COST;
export function setParallelMinCost(cost: number): void {
  PARALLEL_MIN_COST = cost;
}

interface Mailbox {
  head: Int32Array;
  payload: Uint8Array;
  /** Jobs that cannot be serialized into the payload (the worker reads it with receiveMessageOnPort). */
  jobPort: MessagePort;
}

interface PoolState {
  workers: Worker[];
  errorPorts: MessagePort[];
  mailboxes: Mailbox[];
  ctrl: Int32Array;
  /** Milliseconds each worker has spent running jobs since the last resetPoolStats(). */
  busy: Float64Array;
  /** Bound on any wait for this pool's workers (read once, when the pool starts). */
  watchdogMs: number;
}

let pool: PoolState | null = null;
const DEFAULT_WATCHDOG_MS = 300_000;
const START_TIMEOUT_MS = 30_000;

/**
 * The watchdog from NMGRAD_WORKER_TIMEOUT_MS (milliseconds). A value that is not a positive
 * integer is refused: read as a number it would be NaN, and a NaN deadline never expires, so a
 * hung worker would hang the caller forever.
 */
export function watchdogMs(): number {
  const raw = process.env.NMGRAD_WORKER_TIMEOUT_MS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_WATCHDOG_MS;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new WorkerError('pool', `NMGRAD_WORKER_TIMEOUT_MS must be a positive integer (milliseconds), got '${raw}' (unset it for the default ${DEFAULT_WATCHDOG_MS})`);
  }
  return n;
}

function startPool(size: number): PoolState {
  const watchdog = watchdogMs();
  const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_SLOTS * 4 + size * 4));
  const busy = new Float64Array(new SharedArrayBuffer(size * 8));
  const url = workerUrl(import.meta.url);
  const workers: Worker[] = [];
  const errorPorts: MessagePort[] = [];
  const mailboxes: Mailbox[] = [];
  for (let i = 0; i < size; i++) {
    const { port1, port2 } = new MessageChannel();
    const jobs = new MessageChannel();
    const box = new SharedArrayBuffer(MB_HEADER_BYTES + MB_PAYLOAD_BYTES);
    const w = new Worker(url, { workerData: { ctrl, busy, index: i, errorPort: port2, jobPort: jobs.port2, mailbox: box, arena: arenaMemory() }, transferList: [port2, jobs.port2] });
    w.on('error', () => {}); // reported synchronously through ctrl / the error port
    w.unref();
    port1.unref();
    jobs.port1.unref();
    workers.push(w);
    errorPorts.push(port1);
    mailboxes.push({ head: new Int32Array(box, 0, MB_HEADER_BYTES / 4), payload: new Uint8Array(box, MB_HEADER_BYTES), jobPort: jobs.port1 });
  }
  // Wait until every worker has its message listener installed, so no job can be missed.
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Atomics.load(ctrl, CTRL_READY) < size) {
    const seen = Atomics.load(ctrl, CTRL_READY);
    if (Atomics.load(ctrl, CTRL_DEAD) !== 0) break;
    if (Date.now() > deadline) break;
    Atomics.wait(ctrl, CTRL_READY, seen, 50);
  }
  const state = { workers, errorPorts, mailboxes, ctrl, busy, watchdogMs: watchdog };
  if (Atomics.load(ctrl, CTRL_READY) < size) {
    const msg = drainErrors(state);
    terminate(state);
    throw new WorkerError('pool', `workers failed to start${msg ? `: ${msg}` : ' within ' + START_TIMEOUT_MS + ' ms'}`);
  }
  return state;
}

function drainErrors(state: PoolState): string {
  const msgs: string[] = [];
  for (const p of state.errorPorts) {
    for (let m = receiveMessageOnPort(p); m !== undefined; m = receiveMessageOnPort(p)) msgs.push(String((m.message as { message: string }).message));
  }
  return msgs.join('; ');
}

function terminate(state: PoolState): void {
  for (const w of state.workers) void w.terminate();
  for (const p of state.errorPorts) p.close();
  for (const m of state.mailboxes) m.jobPort.close();
}

/**
 * How a job's arguments can travel: 'json' when JSON keeps them exactly (plain objects, arrays,
 * ASCII strings, finite numbers other than -0, booleans, null), 'v8' when v8.serialize does
 * (typed arrays over plain buffers are copied, as postMessage copies them), 'port' when they
 * hold a SharedArrayBuffer outside the arena, which only a message shares.
 */
function transport(v: unknown, depth = 0): 'json' | 'v8' | 'port' {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0) ? 'json' : 'v8';
    case 'string':
      return /^[\x20-\x7e]*$/.test(v) ? 'json' : 'v8';
    case 'boolean':
      return 'json';
    case 'object': {
      if (v === null) return 'json';
      if (v instanceof SharedArrayBuffer) return 'port';
      if (ArrayBuffer.isView(v)) return v.buffer instanceof SharedArrayBuffer ? 'port' : 'v8';
      if (depth > 4) return 'port'; // deeper than any task's arguments: let postMessage handle it
      const proto = Object.getPrototypeOf(v) as unknown;
      let how: 'json' | 'v8' = proto === Object.prototype || proto === Array.prototype ? 'json' : 'v8';
      for (const x of Object.values(v)) {
        const t = transport(x, depth + 1);
        if (t === 'port') return 'port';
        if (t === 'v8') how = 'v8';
      }
      return how;
    }
    default:
      return 'v8'; // undefined, bigint; a function fails in v8.serialize as it would in postMessage
  }
}

/**
 * Hands a job to worker i through its mailbox (protocol.ts): serialized into the shared payload
 * when it holds only plain data (arena tensors are already offsets), else posted on the job
 * port; then the sequence number is published, a polling worker is notified, and one that has
 * gone back to its event loop is woken with a message.
 */
const sent = { json: 0, v8: 0, port: 0 };
/** How many jobs have gone to workers by each transport (sendJob); for tests and diagnostics. */
export function jobTransportCounts(): { json: number; v8: number; port: number } {
  return { ...sent };
}

function sendJob(state: PoolState, i: number, job: Job): void {
  const { head, payload, jobPort } = state.mailboxes[i]!;
  // v8.serialize copies a SharedArrayBuffer (it does not share it): one outside the arena must travel as a message.
  const how = transport(job.args);
  const text = how === 'json' ? JSON.stringify(job) : null;
  const bytes = how === 'v8' ? serialize(job) : null;
  const seq = head[MB_SEQ]!;
  Atomics.store(head, MB_SEQ, seq + 1);
  if (text !== null && text.length <= payload.length) {
    for (let i = 0; i < text.length; i++) payload[i] = text.charCodeAt(i);
    Atomics.store(head, MB_LEN, text.length);
    Atomics.store(head, MB_KIND, MB_JSON);
    sent.json++;
  } else if (bytes !== null && bytes.length <= payload.length) {
    payload.set(bytes);
    Atomics.store(head, MB_LEN, bytes.length);
    Atomics.store(head, MB_KIND, MB_V8);
    sent.v8++;
  } else {
    jobPort.postMessage({ seq: seq + 2, job } satisfies PortJob);
    Atomics.store(head, MB_KIND, MB_PORT);
    sent.port++;
  }
  Atomics.store(head, MB_SEQ, seq + 2);
  Atomics.notify(head, MB_SEQ);
  if (Atomics.load(head, MB_STATE) === MB_LISTENING) state.workers[i]!.postMessage(0);
}

/** Stops all workers; the next parallel call starts a fresh pool. */
export function shutdownPool(): void {
  if (pool) terminate(pool);
  pool = null;
}

/** Whether a worker of the current pool has exited (it is replaced at the next call); for tests. */
export function poolHasDeadWorker(): boolean {
  return pool !== null && Atomics.load(pool.ctrl, CTRL_DEAD) !== 0;
}

/** Number of live workers (0 before first use); for tests and diagnostics. */
export function poolSize(): number {
  return pool?.workers.length ?? 0;
}

let statsSince = performance.now();

/** Zeroes the workers' busy-time counters and starts a new measuring interval. */
export function resetPoolStats(): void {
  pool?.busy.fill(0);
  statsSince = performance.now();
}

/**
 * Worker utilisation since the last resetPoolStats(): wall time, each worker's busy time, and
 * the share of worker time spent idle (1 − Σbusy / (workers · wall); 0 with no workers). A pool
 * restarted inside the interval counts only the new pool's work.
 */
export function poolStats(): { wallMs: number; busyMs: number[]; idleShare: number } {
  const wallMs = performance.now() - statsSince;
  const busyMs = pool ? Array.from(pool.busy) : [];
  const idleShare = busyMs.length === 0 || wallMs <= 0 ? 0 : Math.max(0, 1 - busyMs.reduce((a, b) => a + b, 0) / (busyMs.length * wallMs));
  return { wallMs, busyMs, idleShare };
}

let stealing = true;
/**
 * Whether the calling thread, out of chunks, runs the first chunk of a worker that has not
 * started it yet (default on). The pool's fault-injection tests turn it off so that a fault
 * placed in a worker's first chunk always fires in that worker.
 */
export function setWorkStealing(on: boolean): void {
  stealing = on;
}

/**
 * Chunks per thread in one dispatch: enough that a late thread costs little waiting, few enough
 * that each thread keeps long runs of rows (docs/architecture.md: 2 beat 4 and 1 in the step).
 */
const CHUNKS_PER_THREAD = 2;
let epoch = 0;
let dispatchSeq = 0;
/** Dispatches handed to the workers so far (ops that stayed on the calling thread not counted). */
export function dispatchCount(): number {
  return dispatchSeq;
}

/**
 * Runs `tasks[task]` over rows [0, rows) cut into contiguous chunks whose starts are multiples of
 * `align`: one first chunk per thread (chunk 0 on this thread), the rest claimed by whichever
 * thread is free first; a worker's first chunk that it has not started when this thread runs
 * out of work is run here instead. `cost` estimates the flops, to keep small work on this thread.
 * Float32Array arguments must be SharedArrayBuffer-backed (allocF32 does that for large
 * buffers); any that are not are shared by copy and copied back.
 */
export function dispatchRows<T extends TaskTable, K extends keyof T & string>(tasks: T, task: K, args: Parameters<T[K]>[0], rows: number, align: number, cost: number): void {
  const fn = tasks[task]!;
  const blocks = Math.ceil(rows / align);
  const threads = Math.min(getThreads(), blocks);
  if (threads <= 1 || cost < PARALLEL_MIN_COST) {
    fn(args, 0, rows);
    return;
  }
  const { shared, restore } = shareArgs(args);
  const chunks = Math.min(blocks, threads * CHUNKS_PER_THREAD, MAX_CHUNKS);
  // A worker that exited between jobs took no work with it: replace the pool quietly rather
  // than fail this call as if the worker had died running it.
  if (pool === null || pool.workers.length < threads - 1 || poolHasDeadWorker()) {
    shutdownPool();
    pool = startPool(threads - 1);
  }
  const state = pool;
  const { ctrl } = state;
  epoch = (epoch + 1) & EPOCH_MASK;
  const seq = ++dispatchSeq;
  Atomics.store(ctrl, CTRL_DONE, 0);
  // Worker w's first chunk (chunk w) is reserved for it with this dispatch's tag until the
  // worker takes it or this thread steals it (compare-exchange to 0 either way).
  const reserved = epoch + 1;
  for (let w = 1; w < threads; w++) Atomics.store(ctrl, CTRL_SLOTS + w - 1, reserved);
  Atomics.store(ctrl, CTRL_NEXT, (epoch << CHUNK_BITS) | threads);
  const posted = encodeArenaArgs(shared, inArena);
  for (let w = 1; w < threads; w++) {
    sendJob(state, w - 1, { task, args: posted, rows, align, chunks, first: w, epoch, seq });
  }
  let localError: unknown = null;
  let ran = 0;
  const runChunk = (i: number): boolean => {
    ran++;
    try {
      const [r0, r1] = chunkRange(rows, align, chunks, i);
      fn(shared, r0, r1, seq);
      return true;
    } catch (e) {
      localError = e;
      return false;
    }
  };
  /** Takes worker w's first chunk from it if the worker has not started it. */
  const takeFirst = (w: number): boolean => Atomics.compareExchange(ctrl, CTRL_SLOTS + w - 1, reserved, 0) === reserved;
  for (let i = 0; i >= 0; i = claimChunk(ctrl, epoch, chunks)) if (!runChunk(i)) break;
  // Out of shared chunks: run the first chunk of any worker that has not woken up yet, rather
  // than wait for it (a worker's wake-up is often longer than a chunk of a small op).
  if (localError === null && stealing) {
    for (let w = 1; w < threads; w++) if (takeFirst(w) && !runChunk(w)) break;
  }
  // After a failure here, chunks nobody has claimed yet are not run: wait only for the claimed
  // ones, less the workers' first chunks that no worker has started (revoked here).
  let expected = chunks;
  if (localError !== null) {
    expected = closeClaims(ctrl, epoch, chunks);
    for (let w = 1; w < threads; w++) if (takeFirst(w)) expected--;
  }
  Atomics.add(ctrl, CTRL_DONE, ran);
  waitFor(state, expected);
  if (localError !== null) throw localError;
  restore();
}

/** How long the caller spins on the done counter before it sleeps on it (a futex wake-up costs ~10–50 µs). */
const WAIT_SPIN_MS = 0.05;

function waitFor(state: PoolState, count: number): void {
  const { ctrl } = state;
  const deadline = Date.now() + state.watchdogMs;
  const spinUntil = performance.now() + WAIT_SPIN_MS;
  for (;;) {
    const done = Atomics.load(ctrl, CTRL_DONE);
    // Every chunk finished: a worker that exited afterwards is replaced at the next call.
    if (done >= count) break;
    if (Atomics.load(ctrl, CTRL_DEAD) !== 0) {
      const msg = drainErrors(state);
      shutdownPool();
      throw new WorkerError('pool', `a worker died while running a job${msg ? `: ${msg}` : ''}; the pool will restart on the next call`);
    }
    if (Date.now() > deadline) {
      shutdownPool();
      throw new WorkerError('pool', `workers did not finish within ${state.watchdogMs} ms (${done}/${count} chunks done); the pool will restart on the next call`);
    }
    if (performance.now() < spinUntil) continue;
    Atomics.wait(ctrl, CTRL_DONE, done, 100);
  }
  if (Atomics.load(ctrl, CTRL_ERROR) !== 0) {
    const msg = drainErrors(state);
    shutdownPool();
    throw new WorkerError('pool', `a worker job failed: ${msg || 'unknown error'}`);
  }
}

/** The row ranges of `chunks` aligned chunks of [0, rows) (empty ones left out). */
export function splitRows(rows: number, align: number, chunks: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < chunks; i++) {
    const r = chunkRange(rows, align, chunks, i);
    if (r[1] > r[0]) out.push(r);
  }
  return out;
}

/**
 * The arguments with every plain (non-shared) typed array replaced by a shared copy, and a
 * function that copies those back: a copy in the arena when it has room (it then travels as an
 * offset), else a SharedArrayBuffer of its own.
 */
function shareArgs<A extends object>(args: A): { shared: A; restore: () => void } {
  const copies: [Float32Array, Float32Array, Float32Array | null][] = [];
  const shared = { ...args } as Record<string, unknown>;
  for (const [k, v] of Object.entries(args)) {
    if ((v instanceof Float32Array || v instanceof Uint8Array || v instanceof Int32Array) && !isShared(v as Float32Array)) {
      const inArena = arenaCopy(v);
      let s: Float32Array;
      if (inArena !== null) s = inArena.view as Float32Array;
      else {
        const Ctor = v.constructor as { new (b: SharedArrayBuffer): Float32Array };
        noteSharedBytes(v.byteLength);
        s = new Ctor(new SharedArrayBuffer(v.byteLength));
        s.set(v as Float32Array);
      }
      shared[k] = s;
      // The arena block's owner stays referenced until the copy back: the block is not recycled under the view.
      copies.push([v as Float32Array, s, inArena?.hold ?? null]);
    }
  }
  return {
    shared: shared as A,
    restore: () => {
      for (const [orig, s] of copies) orig.set(s);
    },
  };
}
