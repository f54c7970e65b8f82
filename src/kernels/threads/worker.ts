/** Worker entry: runs row-range jobs posted by the pool and signals completion via Atomics. */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { CTRL_DEAD, CTRL_DONE, CTRL_ERROR, CTRL_READY, type Job } from './protocol.js';

type TaskFn = (args: object, rowStart: number, rowEnd: number) => void;

const { ctrl, index, errorPort } = workerData as { ctrl: Int32Array; index: number; errorPort: MessagePort };
const tasks = new Map<string, TaskFn>();

function signal(slot: number): void {
  Atomics.add(ctrl, slot, 1);
  Atomics.notify(ctrl, slot);
}

process.on('exit', () => {
  errorPort.postMessage({ index, message: `worker ${index} exited` });
  Atomics.store(ctrl, CTRL_DEAD, 1);
  Atomics.notify(ctrl, CTRL_DONE);
});

async function resolveTask(job: Job): Promise<TaskFn> {
  const key = `${job.url}#${job.name}`;
  let fn = tasks.get(key);
  if (fn === undefined) {
    const mod = (await import(job.url)) as Record<string, unknown>;
    const f = mod[job.name];
    if (typeof f !== 'function') throw new Error(`task '${job.name}' is not exported by ${job.url}`);
    fn = f as TaskFn;
    tasks.set(key, fn);
  }
  return fn;
}

parentPort!.on('message', (job: Job) => {
  const fn = tasks.get(`${job.url}#${job.name}`);
  const run = (f: TaskFn): void => {
    try {
      f(job.args, job.rowStart, job.rowEnd);
    } catch (e) {
      errorPort.postMessage({ index, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      Atomics.store(ctrl, CTRL_ERROR, 1);
    }
    signal(CTRL_DONE);
  };
  if (fn !== undefined) run(fn);
  else
    resolveTask(job).then(run, (e: unknown) => {
      errorPort.postMessage({ index, message: e instanceof Error ? e.message : String(e) });
      Atomics.store(ctrl, CTRL_ERROR, 1);
      signal(CTRL_DONE);
    });
});

signal(CTRL_READY);
