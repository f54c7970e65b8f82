import { describe, expect, it } from 'vitest';
import {
  AllocationError, DataError, NMSparseTensor, Recipe, Rng, SparsityConfigError, Tensor, ValueError, nmMask, unstructuredMask,
} from '../src/index.js';

/** Values that used to be accepted silently (or to fail with a bare engine error) and are now typed errors naming the value. */
describe('bad values are refused by name', () => {
  it('Rng seeds that `>>> 0` would alter: NaN, fractions, negatives, ≥ 2^32', () => {
    for (const seed of [NaN, 1.5, -1, 2 ** 32, Infinity]) {
      expect(() => new Rng(seed), String(seed)).toThrow(ValueError);
      expect(() => new Rng(seed), String(seed)).toThrow(new RegExp(`got ${String(seed).replace('.', '\\.')}$`));
    }
    // The valid range still gives distinct streams at both ends.
    const draw = (r: Rng): number[] => Array.from({ length: 4 }, () => r.nextU32());
    expect(draw(new Rng(0))).not.toEqual(draw(new Rng(1)));
    expect(draw(new Rng(2 ** 32 - 1))).not.toEqual(draw(new Rng(0)));
  });

  it('srste with a negative or non-finite lambda', () => {
    expect(() => Recipe.parse('srste:1:8,lambda=-5', { steps: 100 })).toThrow(/lambda \(the SR-STE decay λ_W\) must be a finite number ≥ 0, got -5/);
    expect(() => new Recipe({ kind: 'srste', steps: 100, lambda: NaN })).toThrow(SparsityConfigError);
    expect(Recipe.parse('srste:1:8,lambda=0', { steps: 100 }).config.lambda).toBe(0);
  });

  it('pmd exponential decay with threshold 0 (α would be NaN) or ≥ 1; a valid threshold keeps α in [0, 1]', () => {
    expect(() => Recipe.parse('pmd:1:8,decay=exponential,threshold=0', { steps: 100 })).toThrow(/threshold must be in \(0, 1\), got 0/);
    expect(() => Recipe.parse('pmd:1:8,decay=exponential,threshold=1', { steps: 100 })).toThrow(/threshold must be in \(0, 1\), got 1/);
    expect(() => new Recipe({ kind: 'pmd', steps: 100, decay: 'linear', beta: Infinity })).toThrow(/beta must be a finite number > 0, got Infinity/);
    const r = Recipe.parse('pmd:1:8,decay=exponential,threshold=0.01,dense=10,finetune=10', { steps: 100 });
    for (let t = 0; t < 100; t++) {
      const a = r.at(t).alpha;
      expect(a >= 0 && a <= 1, `α(${t}) = ${a}`).toBe(true);
    }
    expect(r.at(10).alpha).toBe(1); // exp(−β·0) at the start of the window
  });

  it('ssd with N = M (nothing to decay to)', () => {
    expect(() => Recipe.parse('ssd:8:8', { steps: 100 })).toThrow(/N:M = 8:8 keeps every weight .* so 'ssd' would prune nothing/);
    // The constructor (no parsing) still names the stepwise frames.
    expect(() => new Recipe({ kind: 'ssd', n: 8, m: 8, steps: 100 })).toThrow(/stepwise SSD needs N < M .* got 8:8/);
    // The frames of a valid target still end at the target.
    expect(Recipe.parse('ssd:1:8', { steps: 100 }).frames.at(-1)).toEqual([1, 8]);
  });

  it('NaN weights into nmMask, unstructuredMask and NMSparseTensor.fromDense', () => {
    const w = Tensor.fromArray([0.5, -2, NaN, 1, 3, 0.1, 0.2, 0.3], [2, 4]);
    expect(() => nmMask(w, 2, 4, 'enc.fc1')).toThrow(DataError);
    expect(() => nmMask(w, 2, 4, 'enc.fc1')).toThrow(/enc\.fc1: weight \[2, 4\] holds NaN at \[0, 2\]/);
    expect(() => unstructuredMask(w, 0.5)).toThrow(/holds NaN at \[0, 2\]/);
    expect(() => NMSparseTensor.fromDense(w, 2, 4)).toThrow(/NMSparseTensor\.fromDense: weight \[2, 4\] holds NaN at \[0, 2\]/);
    const mask = Tensor.fromArray([1, 1, 0, 0, 1, 0, 0, 1], [2, 4]);
    expect(() => NMSparseTensor.fromDense(w, 2, 4, { mask })).toThrow(/holds NaN/);
    // Finite weights (±Inf has a magnitude) still compress, matching the dense mask.
    const ok = Tensor.fromArray([0.5, -2, Infinity, 1, 3, 0.1, 0.2, 0.3], [2, 4]);
    expect(Array.from(NMSparseTensor.fromDense(ok, 2, 4).toDense().data)).toEqual(Array.from(ok.data).map((v, i) => v * nmMask(ok, 2, 4).data[i]!));
  });

  it('an allocation beyond memory is an AllocationError with the shape, not a bare RangeError', () => {
    for (const shape of [[100_000, 100_000, 1000], [1e9, 1e9]]) {
      let err: unknown;
      try {
        Tensor.zeros(shape);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AllocationError);
      expect((err as Error).message).toContain(`shape [${shape.join(', ')}]`);
    }
    expect(() => Tensor.full([4e4, 4e4, 4e4], 1)).toThrow(/cannot allocate a tensor of shape \[40000, 40000, 40000\]/);
  });
});
