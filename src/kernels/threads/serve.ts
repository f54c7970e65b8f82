/**
 * A worker's job loop: runs the row chunks of dispatches posted by the pool and signals each
 * chunk's completion via Atomics. It runs the tasks of the table it is given (the worker entry,
 * ../worker.ts, passes every backend's), so it imports no kernel.
 */
import { deserialize } from 'node:v8';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { CTRL_DEAD, CTRL_DONE, CTRL_ERROR, CTRL_READY, CTRL_SLOTS, MB_HEADER_BYTES, MB_JSON, MB_KIND, MB_LEN, MB_LISTENING, MB_PORT, MB_POLLING, MB_SEQ, MB_STATE, chunkRange, claimChunk, decodeArenaArgs, type Job, type PortJob, type TaskTable } from './protocol.js';
import { noteSharedBytes } from '../memory/shared-gc.js';
import { arenaBuffer, attachArena } from '../memory/arena.js';
import type { WasmMemory } from '../memory/wasm-runtime.js';

/** Serves this worker's mailbox for the rest of its life, running jobs from `tasks`. */
export function serveJobs(tasks: TaskTable): void {
  const { ctrl, busy, index, errorPort, jobPort, mailbox, arena } = workerData as {
    ctrl: Int32Array; busy: Float64Array; index: number; errorPort: MessagePort; jobPort: MessagePort; mailbox: SharedArrayBuffer; arena: WasmMemory | null;
  };
  attachArena(arena);
  const head = new Int32Array(mailbox, 0, MB_HEADER_BYTES / 4);
  const payload = new Uint8Array(mailbox, MB_HEADER_BYTES);

  function signal(slot: number): void {
    Atomics.add(ctrl, slot, 1);
    Atomics.notify(ctrl, slot);
  }

  process.on('exit', () => {
    errorPort.postMessage({ index, message: `worker ${index} exited` });
    Atomics.store(ctrl, CTRL_DEAD, 1);
    Atomics.notify(ctrl, CTRL_DONE);
  });

  /** Runs this worker's chunks of one dispatch. */
  function runJob(posted: Job): void {
    const job = { ...posted, args: decodeArenaArgs(posted.args, arenaBuffer) };
    const fn = tasks[job.task];
    // This worker's own chunk first (unless the caller, out of work, already took it), then
    // whatever chunks of the dispatch are still unclaimed.
    const reserved = job.epoch + 1;
    const own = Atomics.compareExchange(ctrl, CTRL_SLOTS + index, reserved, 0) === reserved ? job.first : claimChunk(ctrl, job.epoch, job.chunks);
    for (let i = own; i >= 0; i = claimChunk(ctrl, job.epoch, job.chunks)) {
      const t0 = performance.now();
      let failed = false;
      try {
        if (fn === undefined) throw new Error(`task '${job.task}' is not in this worker's task table (tasks: ${Object.keys(tasks).join(', ')})`);
        const [r0, r1] = chunkRange(job.rows, job.align, job.chunks, i);
        fn(job.args, r0, r1, job.seq);
      } catch (e) {
        errorPort.postMessage({ index, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
        Atomics.store(ctrl, CTRL_ERROR, 1);
        failed = true;
      }
      // Only this worker writes its slot; the pool reads it after the dispatch's chunks are done.
      busy[index]! += performance.now() - t0;
      signal(CTRL_DONE);
      if (failed) break;
    }
    // The buffer wrappers this job received (arena tensors come as numbers) are garbage now; let this isolate collect them in time.
    noteSharedBytes(sharedBytesOf(posted.args));
  }

  /** After a job: spin this long on the mailbox, then sleep on it until IDLE_MS, then return to the event loop. */
  const SPIN_MS = 0.2;
  const IDLE_MS = 5;
  /** The last mailbox sequence number this worker has taken. */
  let seen = 0;

  /** The next job's sequence number, or -1 when none came within IDLE_MS. */
  function nextSeq(): number {
    const t0 = performance.now();
    for (;;) {
      const s = Atomics.load(head, MB_SEQ);
      if (s !== seen && (s & 1) === 0) return s;
      if ((s & 1) === 1) continue; // the caller is writing a job
      const t = performance.now() - t0;
      if (t >= IDLE_MS) return -1;
      if (t >= SPIN_MS) Atomics.wait(head, MB_SEQ, s, IDLE_MS - t);
    }
  }

  /** The job published as `seq`, or null when a newer one replaced it while it was read. */
  function readJob(seq: number): Job | null {
    const kind = Atomics.load(head, MB_KIND);
    if (kind === MB_PORT) {
      // Posted before the sequence number was published: the queue holds it (and maybe stale ones).
      for (let m = receiveMessageOnPort(jobPort); m !== undefined; m = receiveMessageOnPort(jobPort)) {
        const p = m.message as PortJob;
        if (p.seq === seq) return p.job;
      }
      return null;
    }
    const bytes = payload.slice(0, Atomics.load(head, MB_LEN));
    if (Atomics.load(head, MB_SEQ) !== seq) return null;
    return kind === MB_JSON ? (JSON.parse(String.fromCharCode.apply(null, bytes as unknown as number[])) as Job) : (deserialize(bytes) as Job);
  }

  /** Takes jobs from the mailbox until none comes for IDLE_MS; then the event loop runs until a message wakes this worker. */
  function serve(): void {
    for (;;) {
      Atomics.store(head, MB_STATE, MB_POLLING);
      const s = nextSeq();
      if (s < 0) {
        Atomics.store(head, MB_STATE, MB_LISTENING);
        // A job published just before the state changed would see MB_POLLING and send no message.
        if (Atomics.load(head, MB_SEQ) === seen) return;
        continue;
      }
      const job = readJob(s);
      if (job === null) {
        // Replaced while read: take the newer one. (A port job that is missing cannot happen; skip it rather than spin on it.)
        if (Atomics.load(head, MB_SEQ) === s) seen = s;
        continue;
      }
      seen = s;
      runJob(job);
    }
  }

  // A message only wakes the worker; the job itself is always in the mailbox.
  parentPort!.on('message', serve);

  function sharedBytesOf(args: object): number {
    let bytes = 0;
    for (const v of Object.values(args)) if (ArrayBuffer.isView(v) && v.buffer instanceof SharedArrayBuffer) bytes += v.byteLength;
    return bytes;
  }

  signal(CTRL_READY);
  serve();
}
