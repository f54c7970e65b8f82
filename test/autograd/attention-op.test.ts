import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as ng from '../../src/index.js';
import { FlopCounter, Rng, ShapeError, Tensor, countFlops, scaledDotProductAttention } from '../../src/index.js';
import { RUNS, expectGrad, maxAbsDiff, randTensor } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

interface Case { b: number; tq: number; tk: number; heads: number; dh: number; pad: boolean; causal: boolean; p: number; seed: number }

/** The unfused composition the op replaces: scale q, split heads, QKᵀ, masked fills, softmax, dropout, ·V, merge heads. */
function unfused(q: Tensor, k: Tensor, v: Tensor, c: Case, mask: Tensor | null, rng: Rng | null): Tensor {
  const split = (x: Tensor, t: number): Tensor => ng.permute(ng.reshape(x, [c.b, t, c.heads, c.dh]), [0, 2, 1, 3]);
  const qs = split(ng.mul(q, 1 / Math.sqrt(c.dh)), c.tq);
  let scores = ng.matmul(qs, split(k, c.tk), { transB: true });
  if (mask) scores = ng.maskedFill(scores, ng.reshape(mask, [c.b, 1, 1, c.tk]), -1e9);
  if (c.causal) {
    const m = Tensor.zeros([1, 1, c.tq, c.tk]);
    for (let i = 0; i < c.tq; i++) for (let j = 0; j < c.tk; j++) m.data[i * c.tk + j] = j > i ? 1 : 0;
    scores = ng.maskedFill(scores, m, -1e9);
  }
  let attn = ng.softmax(scores, -1);
  if (rng) attn = ng.dropout(attn, c.p, rng, true);
  return ng.reshape(ng.permute(ng.matmul(attn, split(v, c.tk)), [0, 2, 1, 3]), [c.b, c.tq, c.heads * c.dh]);
}

function inputs(c: Case): { q: Tensor; k: Tensor; v: Tensor; mask: Tensor | null } {
  const d = c.heads * c.dh;
  const q = randTensor([c.b, c.tq, d], c.seed, { scale: 1.5 });
  const k = randTensor([c.b, c.tk, d], c.seed + 1, { scale: 1.5 });
  const v = randTensor([c.b, c.tk, d], c.seed + 2);
  let mask: Tensor | null = null;
  if (c.pad) {
    mask = Tensor.zeros([c.b, c.tk]);
    // Batch element 0 keeps all keys, the last masks all (a uniform row, no gradient to q, k), others a tail.
    for (let b = 1; b < c.b; b++) for (let j = b === c.b - 1 ? 0 : c.tk - b; j < c.tk; j++) mask.data[b * c.tk + j] = 1;
  }
  return { q, k, v, mask };
}

const arbCase = fc.record({
  b: fc.integer({ min: 1, max: 3 }), tq: fc.integer({ min: 1, max: 9 }), tk: fc.integer({ min: 1, max: 9 }), heads: fc.integer({ min: 1, max: 3 }),
  dh: fc.constantFrom(1, 3, 4, 8, 12), pad: fc.boolean(), causal: fc.boolean(), p: fc.constantFrom(0, 0.3), seed: fc.nat(1000),
});

describeEachBackend('scaledDotProductAttention', () => {
  it('matches the unfused ops (forward, dq, dk, dv) with key padding, causal masks and dropout', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { q, k, v, mask } = inputs(c);
        const g = randTensor([c.b, c.tq, c.heads * c.dh], c.seed + 3, {}, false);
        const run = (fused: boolean): Float32Array[] => {
          for (const t of [q, k, v]) t.grad = null;
          const rng = c.p > 0 ? new Rng(c.seed + 9) : null;
          const out = fused
            ? scaledDotProductAttention(q, k, v, { heads: c.heads, scale: 1 / Math.sqrt(c.dh), keyPaddingMask: mask, causal: c.causal, dropout: rng ? { p: c.p, rng } : null })
            : unfused(q, k, v, c, mask, rng);
          ng.sum(ng.mul(out, g)).backward();
          return [out.data.slice(), q.grad!.data.slice(), k.grad!.data.slice(), v.grad!.data.slice()];
        };
        const fused = run(true);
        const ref = run(false);
        for (let i = 0; i < 4; i++) expect(maxAbsDiff(fused[i]!, ref[i]!), ['out', 'dq', 'dk', 'dv'][i]).toBeLessThan(2e-5 * Math.max(1, c.dh, c.tk));
      }),
      { numRuns: RUNS },
    );
  });

  it('passes gradcheck', () => {
    const c: Case = { b: 2, tq: 3, tk: 4, heads: 2, dh: 4, pad: true, causal: true, p: 0, seed: 5 };
    const { q, k, v, mask } = inputs({ ...c, b: 3 });
    expectGrad((a, b2, c2) => scaledDotProductAttention(a, b2, c2, { heads: 2, scale: 0.5, keyPaddingMask: mask, causal: true }), [q, k, v]);
  });

  it('reports the FLOPs of the ops it replaces', () => {
    const c: Case = { b: 2, tq: 5, tk: 6, heads: 2, dh: 4, pad: true, causal: true, p: 0.2, seed: 7 };
    const { q, k, v, mask } = inputs(c);
    const count = (fused: boolean): FlopCounter => {
      const counter = new FlopCounter();
      countFlops(counter, () => {
        const rng = new Rng(1);
        const out = fused
          ? scaledDotProductAttention(q, k, v, { heads: 2, scale: 0.5, keyPaddingMask: mask, causal: true, dropout: { p: c.p, rng } })
          : unfused(q, k, v, c, mask, rng);
        ng.sum(out).backward();
      });
      return counter;
    };
    const [a, b] = [count(true), count(false)];
    for (const pass of ['forward', 'backward-input', 'backward-weight'] as const) expect(a.total({ pass }).flops, pass).toBe(b.total({ pass }).flops);
  });

  it('names the op and the shapes in its errors', () => {
    const q = Tensor.zeros([2, 3, 8]);
    expect(() => scaledDotProductAttention(q, Tensor.zeros([2, 4, 6]), Tensor.zeros([2, 4, 6]), { heads: 2, scale: 1 })).toThrow(ShapeError);
    expect(() => scaledDotProductAttention(q, q, q, { heads: 3, scale: 1 })).toThrow(/dim 8 is not divisible by heads 3/);
    expect(() => scaledDotProductAttention(q, q, q, { heads: 2, scale: 1, keyPaddingMask: Tensor.zeros([2, 4]) })).toThrow(/key padding mask \[2, 4\] must be \[2, 3\]/);
  });
});
