/** Worker entry: runs the row chunks of dispatches posted by the pool and signals each chunk's completion via Atomics. */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { CTRL_DEAD, CTRL_DONE, CTRL_ERROR, CTRL_READY, CTRL_SLOTS, chunkRange, claimChunk, decodeArenaArgs, type Job } from './protocol.js';
import { TASKS } from './tasks.js';
import { noteSharedBytes } from '../shared-gc.js';
import { arenaBuffer, attachArena } from '../arena.js';
import type { WasmMemory } from '../wasm/runtime.js';

type TaskFn = (args: object, rowStart: number, rowEnd: number, seq?: number) => void;

const { ctrl, busy, index, errorPort, arena } = workerData as { ctrl: Int32Array; busy: Float64Array; index: number; errorPort: MessagePort; arena: WasmMemory | null };
attachArena(arena);

function signal(slot: number): void {
  Atomics.add(ctrl, slot, 1);
  Atomics.notify(ctrl, slot);
}

process.on('exit', () => {
  errorPort.postMessage({ index, message: `worker ${index} exited` });
  Atomics.store(ctrl, CTRL_DEAD, 1);
  Atomics.notify(ctrl, CTRL_DONE);
});

parentPort!.on('message', (posted: Job) => {
  const job = { ...posted, args: decodeArenaArgs(posted.args, arenaBuffer) };
  const fn = TASKS[job.task] as TaskFn | undefined;
  // This worker's own chunk first (unless the caller, out of work, already took it), then
  // whatever chunks of the dispatch are still unclaimed.
  const reserved = job.epoch + 1;
  const own = Atomics.compareExchange(ctrl, CTRL_SLOTS + index, reserved, 0) === reserved ? job.first : claimChunk(ctrl, job.epoch, job.chunks);
  for (let i = own; i >= 0; i = claimChunk(ctrl, job.epoch, job.chunks)) {
    const t0 = performance.now();
    let failed = false;
    try {
      if (fn === undefined) throw new Error(`task '${job.task}' is not in this worker's task table (tasks: ${Object.keys(TASKS).join(', ')})`);
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
});

function sharedBytesOf(args: object): number {
  let bytes = 0;
  for (const v of Object.values(args)) if (ArrayBuffer.isView(v) && v.buffer instanceof SharedArrayBuffer) bytes += v.byteLength;
  return bytes;
}

signal(CTRL_READY);
