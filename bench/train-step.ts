import { getBackend, listBackends, setBackend } from '../src/index.js';
import { dispatchCount, poolStats, resetPoolStats, setThreads } from '../src/kernels/threads/pool.js';
import { FlopCounter, countFlops } from '../src/autograd/flops.js';
import { PerformanceObserver } from 'node:perf_hooks';
import { medianMs, type BenchRecord, type SuiteOptions } from './lib.js';
import { STEP_PRESETS, makeStep, syntheticBatch, warmUp } from './step-builder.js';

const SMALL = STEP_PRESETS.small;
const [BATCH, SRC_LEN, TGT_LEN] = [SMALL.batch, SMALL.srcLen, SMALL.tgtLen];

/**
 * Main-thread garbage collection while it runs: stop() gives the summed pause time of the GC
 * events observed (minor and major) over the wall time since the start.
 */
function gcTimer(): { stop: () => Promise<number> } {
  let pauses = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses += e.duration;
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  return {
    stop: async () => {
      const wall = performance.now() - t0;
      // GC entries are delivered asynchronously: one turn of the event loop flushes them.
      await new Promise((r) => setImmediate(r));
      for (const e of obs.takeRecords()) pauses += e.duration;
      obs.disconnect();
      return pauses / wall;
    },
  };
}

/**
 * One full `small` Transformer training step on ~1500 tokens per side, dense and 1:8 FFN (hard
 * phase), on every registered backend, 1 and 2 threads. `baseline` is js dense at the same thread
 * count; `worker_idle` is the share of the workers' time spent waiting during the measured run;
 * `gc_share` the share of the measured run's wall time the main thread spent in garbage
 * collection; `gflop_per_step` the step's FLOPs as the ops count them (so dense / 1:8 of it is
 * the speed-up the 1:8 step would have if every FLOP ran at the dense rate).
 */
export async function trainStepSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const batch = syntheticBatch(SMALL);
  const tokens = batch.src.filter((t) => t !== 0).length + batch.tgtIn.length;
  const backends = ['js', ...listBackends().filter((b) => b !== 'js')];
  for (const threads of [1, 2]) {
    setThreads(threads);
    let baselineMs = 0;
    for (const backend of backends) {
      for (const variant of ['dense', '1:8'] as const) {
        let ms = 0;
        let idle = 0;
        let dispatches = 0;
        let gflop = 0;
        let gcShare = 0;
        // withBackend is synchronous and tinybench is not: select the backend around the run.
        const previous = getBackend().name;
        setBackend(backend);
        try {
          const { step } = makeStep(SMALL, variant, batch);
          // Outside the measured interval: start the pool, build cached N:M layouts, and run
          // until the tensor arena has blocks for the whole step (recycled ones come back
          // between steps, as in a training loop, so the first steps allocate fresh memory).
          await warmUp(step);
          const before = dispatchCount();
          step();
          dispatches = dispatchCount() - before;
          const counter = new FlopCounter();
          countFlops(counter, step);
          gflop = counter.total().flops / 1e9;
          resetPoolStats();
          const gc = gcTimer();
          // Each measured step yields to the event loop afterwards, as the training loop does.
          ms = await medianMs(`train-step ${backend} ${variant} ${threads}t`, step, opts, 3, { yield: true });
          idle = poolStats().idleShare;
          gcShare = await gc.stop();
        } finally {
          setBackend(previous);
        }
        if (backend === 'js' && variant === 'dense') baselineMs = ms;
        out.push({
          suite: 'train-step', case: `small step ${BATCH}×${SRC_LEN}+${TGT_LEN} tok`, variant: `${backend} ${variant}`, threads,
          median_ms: ms, tokens_per_s: Math.round(tokens / (ms / 1000)), worker_idle: threads > 1 ? idle : undefined,
          dispatches_per_step: threads > 1 ? dispatches : undefined,
          gflop_per_step: gflop, gc_share: gcShare,
          baseline: 'js dense', ratio: baselineMs / ms,
        });
      }
    }
  }
  return out;
}
