import { Adam, Recipe, Rng, Transformer, clipGradNorm, labelSmoothedLoss, getBackend, listBackends, setBackend, sparseLayers, sparsify } from '../src/index.js';
import { dispatchCount, poolStats, resetPoolStats, setThreads } from '../src/kernels/threads/pool.js';
import { storagePoolStats } from '../src/kernels/memory/storage.js';
import { FlopCounter, countFlops } from '../src/autograd/flops.js';
import { PerformanceObserver } from 'node:perf_hooks';
import { medianMs, type BenchRecord, type SuiteOptions } from './lib.js';

/** The translation example's `small` preset (examples/transformer-translate/train.ts). */
const SMALL = { dModel: 128, heads: 4, ffn: 512, encoderLayers: 2, decoderLayers: 2, dropout: 0.1 };
/** About the vocabulary 3000 BPE merges give on Multi30k. */
const VOCAB = 3000;
/** 60 sentence pairs of 25 tokens: 1500 tokens per side, like one `small` batch. */
const [BATCH, SRC_LEN, TGT_LEN] = [60, 25, 25];
/** PMD's fine-tune phase of a 1000-step schedule (steps 700…999): α = 0, compressed 1:8 kernels on the FFN layers. */
const SPARSE = { recipe: 'pmd:1:8,dense=100,finetune=300', steps: 1000, step: 900 };

interface Batch { src: number[]; tgtIn: number[]; tgtOut: number[] }

/** Fixed synthetic token ids (1..VOCAB-1; 0 is padding), with a few padded source tails. */
function syntheticBatch(): Batch {
  const rng = new Rng(11);
  const ids = (n: number): number[] => Array.from({ length: n }, () => 1 + rng.int(VOCAB - 1));
  const src = ids(BATCH * SRC_LEN);
  for (let b = 0; b < BATCH; b += 4) for (let t = SRC_LEN - 1 - (b % 5); t < SRC_LEN; t++) src[b * SRC_LEN + t] = 0;
  return { src, tgtIn: ids(BATCH * TGT_LEN), tgtOut: ids(BATCH * TGT_LEN) };
}

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

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Steps (with a turn of the event loop after each) until one allocates no fresh arena memory, at most 8. */
async function warmUp(step: () => void): Promise<void> {
  for (let i = 0; i < 8; i++) {
    const fresh = storagePoolStats().fresh;
    step();
    await turn();
    if (i > 0 && storagePoolStats().fresh === fresh) return;
  }
}

/** One training step as the translation example runs it: forward, loss, backward, clip, Adam. */
function makeStep(variant: 'dense' | '1:8', batch: Batch): () => void {
  const model = new Transformer({ ...SMALL, srcVocab: VOCAB, tgtVocab: VOCAB, seed: 5 });
  if (variant === '1:8') sparsify(model, Recipe.parse(SPARSE.recipe, { steps: SPARSE.steps }), { layers: 'ffn' });
  model.nameModules();
  model.setStep(variant === '1:8' ? SPARSE.step : 0);
  if (variant === '1:8') {
    // The hard phase is what this case measures: refuse to time a step that still decays.
    const layers = sparseLayers(model).map(([, l]) => l);
    const soft = layers.filter((l) => l.state.alpha !== 0 || l.state.phase !== 'finetune');
    if (layers.length === 0 || soft.length > 0) throw new Error(`train-step: ${SPARSE.recipe} at step ${SPARSE.step} is not in its hard phase (${layers.length} sparse layers, ${soft.length} with α > 0)`);
  }
  const opt = new Adam(model.parameters(), 1e-4, { beta1: 0.9, beta2: 0.98, eps: 1e-9 });
  return () => {
    opt.zeroGrad();
    const logits = model.forward(batch.src, [BATCH, SRC_LEN], batch.tgtIn, [BATCH, TGT_LEN], 0);
    labelSmoothedLoss(logits, batch.tgtOut, 0, 0.1).backward();
    clipGradNorm(opt.params, 1);
    opt.step();
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
  const batch = syntheticBatch();
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
          const step = makeStep(variant, batch);
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
