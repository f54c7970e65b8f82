import { expect, it } from 'vitest';
import { getBackend } from '../../src/kernels/backends.js';
import { Rng } from '../../src/kernels/random.js';
import { allocF32 } from '../../src/kernels/memory/storage.js';
import { DEFAULT_PARALLEL_MIN_COST, setParallelMinCost, setThreads } from '../../src/kernels/threads/pool.js';
import * as ng from '../../src/index.js';
import { restoreThreadsAfterAll } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

/**
 * crossEntropyWithGrad (the training loss and its gradient in one sweep) against its oracle, the
 * three kernels it replaces called one after the other: bitwise, for 1 and 2 threads, on shapes
 * under and over the wasm row kernels' size floor, with ignored rows and label smoothing.
 */
restoreThreadsAfterAll({ shutdown: true });

const sameBits = (a: Float32Array, b: Float32Array, what: string): void => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) expect.fail(`${what} element ${i}: ${a[i]} vs ${b[i]}`);
};

describeEachBackend('crossEntropyWithGrad', () => {
  it('gives the bits of softmaxRows (log), crossEntropyLoss and crossEntropyBackward in turn', () => {
    for (const [rows, classes] of [[7, 9], [61, 300], [150, 1003]] as const) {
      const rng = new Rng(rows);
      const x = allocF32(rows * classes);
      for (let i = 0; i < x.length; i++) x[i] = 4 * rng.normal();
      const targets = Int32Array.from({ length: rows }, (_, r) => (r % 5 === 3 ? -100 : rng.int(classes)));
      for (const eps of [0, 0.1]) {
        for (const threads of [1, 2]) {
          setThreads(threads);
          setParallelMinCost(0);
          const b = getBackend();
          const ref = allocF32(rows * classes);
          b.softmaxRows(x, rows, classes, ref, true);
          const want = b.crossEntropyLoss(ref, targets, rows, classes, -100, eps);
          b.crossEntropyBackward(ref, targets, rows, classes, -100, eps, 0.37, ref);
          const gx = allocF32(rows * classes);
          const got = b.crossEntropyWithGrad(x, targets, rows, classes, -100, eps, 0.37, gx);
          setParallelMinCost(DEFAULT_PARALLEL_MIN_COST);
          expect(got, `${rows}×${classes} ε ${eps} ${threads} threads`).toEqual(want);
          sameBits(gx, ref, `${rows}×${classes} ε ${eps} ${threads} threads`);
        }
      }
    }
  });

  it('crossEntropy trains with it: the loss and gradient of the unfused path, for any upstream gradient', () => {
    const rng = new Rng(3);
    const [rows, classes] = [40, 333];
    const logits = ng.Tensor.zeros([rows, classes]);
    for (let i = 0; i < logits.size; i++) logits.data[i] = 3 * rng.normal();
    logits.requiresGrad = true;
    const targets = Array.from({ length: rows }, (_, r) => (r % 7 === 0 ? 0 : rng.int(classes)));
    const unfused = (g: number): [number, Float32Array] => {
      const b = getBackend();
      const logp = allocF32(logits.size);
      b.softmaxRows(logits.data, rows, classes, logp, true);
      const { total, count } = b.crossEntropyLoss(logp, Int32Array.from(targets), rows, classes, 0, 0.1);
      b.crossEntropyBackward(logp, Int32Array.from(targets), rows, classes, 0, 0.1, g / count, logp);
      return [total / count, logp];
    };
    for (const g of [1, 2.5]) {
      logits.grad = null;
      const loss = ng.crossEntropy(logits, targets, { ignoreIndex: 0, labelSmoothing: 0.1 });
      (g === 1 ? loss : ng.mul(loss, g)).backward();
      const [wantLoss, wantGrad] = unfused(g);
      expect(loss.data[0]).toBe(Math.fround(wantLoss));
      sameBits(logits.grad!.data, wantGrad, `upstream gradient ${g}`);
    }
    // Without gradients the loss is the same number.
    expect(ng.noGrad(() => ng.crossEntropy(logits, targets, { ignoreIndex: 0, labelSmoothing: 0.1 })).data[0]).toBe(Math.fround(unfused(1)[0]));
  });
});
