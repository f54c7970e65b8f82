import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PARALLEL_MIN_COST, setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';
import { restoreThreadsAfterAll } from '../helpers.js';
import {
  Adam, DataError, Dropout, FeedForward, Linear, Module, Recipe, Rng, Tensor, constantLr, fit, isHardNM, loadCheckpoint, mean, mul, readMetrics, sparsify,
  type FitOptions, type TrainEvent,
} from '../../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-fit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

class Net extends Module {
  ffn: FeedForward;
  head: Linear;
  drop: Dropout;
  constructor(seed: number) {
    super();
    const rng = new Rng(seed);
    this.ffn = this.module('ffn', new FeedForward(16, 32, { rng, dropout: 0.1 }));
    this.head = this.module('head', new Linear(16, 4, { rng }));
    this.drop = this.module('drop', new Dropout(0.1, new Rng(seed + 1)));
    this.nameModules();
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.drop.forward(this.ffn.forward(x)));
  }
}

interface Batch { x: Tensor; y: Tensor }

/** Eight fixed batches, shuffled per epoch with a seed derived from the epoch (so a resume replays them). */
const data: Batch[] = (() => {
  const rng = new Rng(42);
  return Array.from({ length: 8 }, () => ({ x: Tensor.randn([5, 16], rng), y: Tensor.randn([5, 4], rng) }));
})();
const batches = (epoch: number): Batch[] => {
  const order = data.map((_, i) => i);
  new Rng(1000 + epoch).shuffle(order);
  return order.map((i) => data[i]!);
};

function setup(recipe = 'pmd:1:8', steps = 20): Pick<FitOptions<Batch>, 'model' | 'optimizer' | 'loss' | 'batches' | 'steps' | 'lr' | 'clipNorm'> & { net: Net } {
  const net = new Net(3);
  const r = Recipe.parse(recipe, { steps });
  if (r.config.kind !== 'dense') sparsify(net, r, { layers: 'ffn' });
  const loss = (b: Batch): Tensor => {
    const d = net.forward(b.x).sub(b.y);
    return mean(mul(d, d));
  };
  return { net, model: net, optimizer: new Adam(net.parameters(), 1e-2), loss, batches, steps, lr: constantLr(1e-2), clipNorm: 1 };
}

const weights = (m: Module): Float32Array[] => m.parameters().map((p) => Float32Array.from(p.data));

describe('fit', () => {
  it('runs the recipe to its hard fine-tune phase and reports progress with phase, α and N:M', async () => {
    const s = setup('pmd:1:8', 40);
    const events: TrainEvent[] = [];
    const r = await fit({ ...s, progressEvery: 4, onEvent: (e) => events.push(e) });
    expect(r.stopped).toBe('done');
    expect(r.state.step).toBe(40);
    expect(r.endsHard).toBe(true);
    expect(r.warnings).toEqual([]);
    const progress = events.filter((e): e is Extract<TrainEvent, { type: 'progress' }> => e.type === 'progress');
    expect(progress.map((e) => e.step)).toEqual([4, 8, 12, 16, 20, 24, 28, 32, 36, 40]);
    // The default split: 4 dense steps, a decay window, 12 hard fine-tune steps.
    expect(progress[0]).toMatchObject({ phase: 'dense', alpha: 1, nm: 'dense' });
    expect(progress.at(-1)).toMatchObject({ phase: 'finetune', alpha: 0, nm: '1:8' });
    expect(progress.every((e) => Number.isFinite(e.loss) && e.itemsPerSec > 0 && e.etaSec >= 0)).toBe(true);
    expect(r.counter.steps).toBe(40);
  });

  it('says so when the last step is not hard N:M', async () => {
    const r = await fit({ ...setup('pmd:1:8,finetune=0,dense=0', 10) });
    expect(r.endsHard).toBe(false);
    expect(r.warnings.join('\n')).toMatch(/the run's last step \(10\) is not hard N:M \(phase decay, α 0\.\d+, N:M 1:8\)/);
  });

  it('resumes bit-identically: paused, interrupted by its signal and resumed equals one uninterrupted run', async () => {
    const whole = setup();
    await fit({ ...whole, dir: join(tmp, 'whole'), checkpointEvery: 5, keep: 2 });
    const dir = join(tmp, 'parts');
    const first = setup();
    expect((await fit({ ...first, dir, checkpointEvery: 5, keep: 2, stopAfter: 7 })).stopped).toBe('paused');
    const second = setup();
    const ctl = new AbortController();
    // The signal fires during step 11 (as a Ctrl-C would); the run stops after it with a checkpoint.
    const lr = (t: number): number => {
      if (t === 11) ctl.abort();
      return 1e-2;
    };
    const r2 = await fit({ ...second, dir, resume: true, checkpointEvery: 5, keep: 2, signal: ctl.signal, lr });
    expect(r2.stopped).toBe('interrupted');
    expect(r2.state.step).toBe(11);
    const third = setup();
    const r3 = await fit({ ...third, dir, resume: true, checkpointEvery: 5, keep: 2 });
    expect(r3.state.step).toBe(20);
    expect(weights(third.net)).toEqual(weights(whole.net));
    const strip = (rs: Record<string, unknown>[]): unknown[] => rs.map(({ step, loss, lr, phase, alpha, nm }) => ({ step, loss, lr, phase, alpha, nm }));
    expect(strip(readMetrics(dir))).toEqual(strip(readMetrics(join(tmp, 'whole'))));
    expect(readdirSync(join(dir, 'checkpoints')).sort()).toEqual(['step-15.safetensors', 'step-20.safetensors']);
    // The FLOP counter resumes too.
    expect(r3.counter.steps).toBe(20);
  });

  it('keeps the best checkpoint by a user metric in best/, a loadable run folder', async () => {
    const s = setup();
    const scores = [3, 9, 4, 1];
    const dir = join(tmp, 'best');
    const r = await fit({ ...s, dir, config: { name: 'best' }, evaluate: { every: 5, run: (_m, step) => ({ score: scores[step / 5 - 1]! }), select: { metric: 'score', mode: 'max' } } });
    const evals = readMetrics(dir).filter((m) => m.score !== undefined);
    expect(evals.map((m) => [m.step, m.score, m.best ?? false])).toEqual([[5, 3, true], [10, 9, true], [15, 4, false], [20, 1, false]]);
    const back = setup();
    expect(loadCheckpoint(join(dir, 'best', 'checkpoint.safetensors'), back.net, { optimizer: back.optimizer })).toMatchObject({ step: 10 });
    expect(JSON.parse(readFileSync(join(dir, 'best', 'config.json'), 'utf8'))).toEqual({ name: 'best' });
    expect(r.warnings).toEqual([]);
    const never = await fit({ ...setup(), dir: join(tmp, 'never'), evaluate: { every: 50, run: () => ({ score: 1 }), select: { metric: 'score' } } });
    expect(never.warnings[0]).toMatch(/evaluate\.every \(50\) is more than the run's 20 steps: no evaluation will run before the last step/);
  });

  it('never starts over a run, and one process trains a folder at a time', async () => {
    const dir = join(tmp, 'guarded');
    await fit({ ...setup(), steps: 3, dir });
    await expect(fit({ ...setup(), steps: 3, dir })).rejects.toThrow(/already holds a run \(checkpoint\.safetensors, metrics\.jsonl\); continue it with --resume/);
    writeFileSync(join(dir, '.lock'), String(process.ppid));
    await expect(fit({ ...setup(), steps: 5, dir, resume: true })).rejects.toThrow(new RegExp(`is being trained by process ${process.ppid} \\(lock file`));
    // The lock of a process that died is taken over, and released at the end.
    writeFileSync(join(dir, '.lock'), '2147483646');
    expect((await fit({ ...setup(), steps: 5, dir, resume: true })).state.step).toBe(5);
    expect(existsSync(join(dir, '.lock'))).toBe(false);
    expect((await fit({ ...setup(), steps: 3, dir, overwrite: true })).state.step).toBe(3);
  });

  it('a NaN loss stops the run naming the step and the intact checkpoint; a fresh run that fails first leaves nothing', async () => {
    const dir = join(tmp, 'nan');
    const s = setup();
    const nanAfter = (n: number) => (b: Batch, step: number): Tensor => (step >= n ? s.loss(b, step).mul(NaN) : s.loss(b, step));
    await expect(fit({ ...s, dir, checkpointEvery: 4, loss: nanAfter(6) })).rejects.toThrow(/step 6: loss became NaN; training stopped\. The last good checkpoint in .* is intact \(step 4\)/);
    expect(loadCheckpoint(join(dir, 'checkpoint.safetensors'), setup().net)).toMatchObject({ step: 4 });
    const fresh = join(tmp, 'nan-fresh');
    await expect(fit({ ...setup(), dir: fresh, config: {}, loss: nanAfter(0) })).rejects.toThrow(/step 0: loss became NaN; training stopped before its first checkpoint, so nothing of the run is kept/);
    expect(existsSync(fresh)).toBe(false);
    const kept = join(tmp, 'nan-kept');
    mkdirSync(kept);
    writeFileSync(join(kept, 'notes.txt'), 'mine');
    await expect(fit({ ...setup(), dir: kept, loss: nanAfter(0) })).rejects.toThrow(DataError);
    expect(readdirSync(kept)).toEqual(['notes.txt']);
  });

  it('removes temp files left by killed writes in the run, checkpoints/ and best/ on resume', async () => {
    const dir = join(tmp, 'stale');
    await fit({ ...setup(), steps: 4, dir, keep: 1, evaluate: { every: 2, run: () => ({ s: 1 }), select: { metric: 's' } } });
    const stale = ['.checkpoint.safetensors.tmp-2147483646-1', 'checkpoints/.step-9.safetensors.tmp-2147483646-2', 'best/.checkpoint.safetensors.tmp-2147483646-3'];
    for (const f of stale) writeFileSync(join(dir, f), 'partial');
    const events: TrainEvent[] = [];
    await fit({ ...setup(), steps: 6, dir, resume: true, keep: 1, onEvent: (e) => events.push(e) });
    for (const f of stale) expect(existsSync(join(dir, f)), f).toBe(false);
    expect(events.find((e) => e.type === 'cleaned')).toMatchObject({ paths: stale.map((f) => join(dir, f)) });
  });
});

describe('fit refuses bad input with typed errors', () => {
  it('an epoch without batches is a DataError, a non-finite selected metric a ValueError', async () => {
    await expect(fit({ ...setup(), batches: () => [] })).rejects.toThrow(/fit: epoch 0 has no batches/);
    await expect(fit({ ...setup(), batches: () => [] })).rejects.toThrow(DataError);
    const r = fit({ ...setup(), dir: join(tmp, 'nan-metric'), evaluate: { every: 5, run: () => ({ score: NaN }), select: { metric: 'score' } } });
    await expect(r).rejects.toThrow(/evaluate\.run returned no finite number 'score' \(got \{"score":null\}\)/);
  });
});

describe('fit gives the same bits on any thread count', () => {
  restoreThreadsAfterAll({ shutdown: true });
  it('1 and 2 threads (every threaded kernel on the pool), with a pause and resume on 2', async () => {
    const run = async (threads: number, dir: string, pause: boolean): Promise<Float32Array[]> => {
      setThreads(threads);
      setParallelMinCost(0);
      try {
        const s = setup();
        if (pause) await fit({ ...s, dir, stopAfter: 9 });
        const t = pause ? setup() : s;
        await fit({ ...t, dir, resume: pause });
        return weights(t.net);
      } finally {
        setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
      }
    };
    const one = await run(1, join(tmp, 'threads-1'), false);
    const two = await run(2, join(tmp, 'threads-2'), true);
    expect(two).toEqual(one);
  });
});

describe('one meaning per recipe string: the default split', () => {
  it('pmd, ssd and gradual run 10% dense and 30% hard fine-tune unless told otherwise', () => {
    for (const kind of ['pmd', 'ssd', 'gradual']) {
      const r = Recipe.parse(`${kind}:1:8`, { steps: 1000 });
      expect([r.config.dense, r.config.finetune], kind).toEqual([100, 300]);
      expect(r.at(99).phase).toBe('dense');
      expect(isHardNM(r.at(700)), kind).toBe(true);
      expect(isHardNM(r.at(999)), kind).toBe(true);
    }
    expect(Recipe.parse('pmd:1:8,finetune=0', { steps: 100 }).config).toMatchObject({ dense: 10, finetune: 0 });
    expect(Recipe.parse('pmd:1:8,dense=90', { steps: 100 }).config).toMatchObject({ dense: 90, finetune: 10 });
    expect(Recipe.parse('ssd:1:8,finetune=95', { steps: 100 }).config).toMatchObject({ dense: 5, finetune: 95 });
    // Hard from step 0: the other recipes keep 0 / 0.
    for (const kind of ['fixed', 'ste', 'srste', 'unstructured']) expect(Recipe.parse(`${kind}:1:8`, { steps: 100 }).config, kind).toMatchObject({ dense: 0, finetune: 0 });
  });
});
