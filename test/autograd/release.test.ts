import { describe, expect, it } from 'vitest';
import { AutogradError, Rng, Tensor, add, crossEntropy, dropout, gradcheck, linear, mean, mul, relu, sum, tanh } from '../../src/index.js';
import { result } from '../../src/autograd/tensor.js';
import { allocF32Uninit, allocOwned, openOwnerScope, releaseOwned, storagePoolStats } from '../../src/kernels/memory/storage.js';
import { inArena } from '../../src/kernels/memory/arena.js';
import { describeEachBackend } from '../backends.js';

/** Big enough for the arena (2048 elements and up). */
const ROWS = 48;
const COLS = 64;

function randn(shape: number[], rng: Rng, requiresGrad = false): Tensor {
  const t = Tensor.zeros(shape, requiresGrad);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * 0.5;
  return t;
}

describe('owned storage', () => {
  it('releases only what was allocated in an owner scope, once, and hands the block out again', () => {
    const outside = allocF32Uninit(4096);
    expect(inArena(outside)).toBe(true);
    expect(releaseOwned(outside)).toBe(false);
    const close = openOwnerScope();
    const a = allocF32Uninit(4096);
    close();
    const at = a.byteOffset;
    const before = storagePoolStats().released;
    expect(releaseOwned(a)).toBe(true);
    expect(storagePoolStats().released).toBe(before + 1);
    // The test setup poisons released blocks: a use after release reads NaN.
    expect(Number.isNaN(a[0]!) && Number.isNaN(a[4095]!)).toBe(true);
    expect(releaseOwned(a)).toBe(false);
    const b = allocF32Uninit(4096);
    expect(b.byteOffset).toBe(at);
    // allocOwned closes its scope: later allocations are not owned.
    const c = allocOwned(() => allocF32Uninit(4096));
    const d = allocF32Uninit(4096);
    expect(releaseOwned(d)).toBe(false);
    expect(releaseOwned(c)).toBe(true);
    expect(releaseOwned(b)).toBe(false);
  });
});

describeEachBackend('the backward sweep gives consumed gradient buffers back', () => {
  /** A small network with every kind of hand-over: dropout and cross-entropy buffers, an in-place unary, a residual sum, a broadcast product. */
  function net(x: Tensor, w1: Tensor, w2: Tensor, s: Tensor, seed: number): { loss: Tensor; held: Tensor[] } {
    const h = relu(linear(x, w1));
    const d = dropout(h, 0.25, new Rng(seed));
    const r = add(d, x);
    const t = tanh(mul(r, s));
    const logits = linear(t, w2);
    const targets = Array.from({ length: ROWS }, (_, i) => (i * 7) % COLS);
    const loss = add(crossEntropy(logits, targets, { labelSmoothing: 0.1 }), mean(mul(t, t)));
    return { loss, held: [h, d, r, t, logits] };
  }

  it('leaves every tensor the caller holds as it was, and releases blocks', () => {
    const rng = new Rng(3);
    const x = randn([ROWS, COLS], rng, true);
    const w1 = randn([COLS, COLS], rng, true);
    const w2 = randn([COLS, COLS], rng, true);
    const s = randn([COLS], rng, true);
    const { loss, held } = net(x, w1, w2, s, 9);
    const snapshot = held.map((t) => Float32Array.from(t.data));
    const released = storagePoolStats().released;
    loss.backward();
    expect(storagePoolStats().released).toBeGreaterThan(released);
    held.forEach((t, i) => expect(Array.from(t.data)).toEqual(Array.from(snapshot[i]!)));
    for (const p of [x, w1, w2, s]) expect(p.grad!.data.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('gradients agree with finite differences', () => {
    const rng = new Rng(5);
    const inputs = [randn([ROWS, COLS], rng, true), randn([COLS, COLS], rng, true), randn([COLS, COLS], rng, true), randn([COLS], rng, true)];
    const r = gradcheck((x, w1, w2, s) => net(x!, w1!, w2!, s!, 9).loss, inputs, { eps: 3e-3, rtol: 3e-2, atol: 1e-3 });
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it('the same gradients twice in a row (recycled blocks start clean)', () => {
    const grads = (): number[][] => {
      const rng = new Rng(7);
      const ps = [randn([ROWS, COLS], rng, true), randn([COLS, COLS], rng, true), randn([COLS, COLS], rng, true), randn([COLS], rng, true)];
      net(ps[0]!, ps[1]!, ps[2]!, ps[3]!, 4).loss.backward();
      return ps.map((p) => Array.from(p.grad!.data));
    };
    expect(grads()).toEqual(grads());
  });

  it('a sweep that fails part-way cannot be run again over the buffers it consumed', () => {
    const rng = new Rng(11);
    const x = randn([ROWS, COLS], rng, true);
    const d = dropout(relu(x), 0.5, new Rng(2));
    const boom = result('boom', Float32Array.from(d.data), d.shape, [d], () => {
      throw new Error('boom');
    });
    const loss = sum(mul(boom, boom));
    expect(() => loss.backward()).toThrow(/boom/);
    expect(() => loss.backward()).toThrow(AutogradError);
    expect(() => loss.backward()).toThrow(/already released/);
  });
});
