import { expect, it } from 'vitest';
import * as ng from '../../src/index.js';
import { AutogradError, Rng, ShapeError, Tensor, gradcheck, noGrad } from '../../src/index.js';
import { result } from '../../src/autograd/tensor.js';
import { randTensor } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

describeEachBackend('Tensor creation and access', () => {
  it('zeros / ones / full / arange / fromArray / item / toArray', () => {
    expect(Array.from(Tensor.zeros([2, 2]).data)).toEqual([0, 0, 0, 0]);
    expect(Array.from(Tensor.ones([3]).data)).toEqual([1, 1, 1]);
    expect(Array.from(Tensor.full([2], 7).data)).toEqual([7, 7]);
    expect(Array.from(Tensor.arange(5).data)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(Tensor.arange(1, 2, 0.25).data)).toEqual([1, 1.25, 1.5, 1.75]);
    const t = Tensor.fromArray([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(Tensor.fromArray([1, 2, 3, 4], [2, 2]).toArray()).toEqual([[1, 2], [3, 4]]);
    expect(Tensor.scalar(3).item()).toBe(3);
    expect(Tensor.scalar(3).toArray()).toBe(3);
  });

  it('fromArray validates length and nesting', () => {
    expect(() => Tensor.fromArray([1, 2, 3], [2, 2])).toThrow(ShapeError);
    expect(() => Tensor.fromArray([1, 2, 3], [2, 2])).toThrow(/fromArray: got 3 values for shape \[2, 2\]/);
    expect(() => Tensor.fromArray([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => Tensor.zeros([2, -1])).toThrow(/invalid shape/);
    expect(() => Tensor.zeros([2, 2]).item()).toThrow(/item/);
  });

  it('randn / uniform are reproducible from the seed and have the right moments', () => {
    const a = Tensor.randn([10000], new Rng(5));
    const b = Tensor.randn([10000], new Rng(5));
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    const m = a.mean().item();
    const v = a.sub(m).pow(2).mean().item();
    expect(Math.abs(m)).toBeLessThan(0.05);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
    const u = Tensor.uniform([10000], new Rng(6), -1, 3);
    expect(Math.min(...u.data)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...u.data)).toBeLessThan(3);
    expect(Math.abs(u.mean().item() - 1)).toBeLessThan(0.05);
  });

  it('Rng state round-trips', () => {
    const r = new Rng(11);
    r.normal();
    const s = r.getState();
    const x = [r.normal(), r.uniform(), r.nextU32()];
    const r2 = new Rng(0);
    r2.setState(s);
    expect([r2.normal(), r2.uniform(), r2.nextU32()]).toEqual(x);
  });
});

describeEachBackend('backward', () => {
  it('accumulates through shared subexpressions (d/dx of x·x + x = 2x + 1)', () => {
    const x = Tensor.fromArray([1, -2, 3], [3], true);
    const y = x.mul(x).add(x).sum();
    y.backward();
    expect(Array.from(x.grad!.data)).toEqual([3, -3, 7]);
  });

  it('accumulates across backward calls until zeroGrad', () => {
    const x = Tensor.fromArray([2], [1], true);
    x.mul(3).sum().backward();
    x.mul(3).sum().backward();
    expect(x.grad!.data[0]).toBe(6);
    x.zeroGrad();
    expect(x.grad).toBeNull();
  });

  it('needs a seed for non-scalars, accepts one, and checks its shape', () => {
    const x = Tensor.fromArray([1, 2], [2], true);
    expect(() => x.mul(2).backward()).toThrow(AutogradError);
    expect(() => x.mul(2).backward()).toThrow(/backward: a non-scalar output of shape \[2\] needs an explicit seed/);
    expect(() => x.mul(2).backward(Tensor.ones([3]))).toThrow(/seed gradient shape \[3\]/);
    x.mul(2).backward(Tensor.fromArray([1, 10]));
    expect(Array.from(x.grad!.data)).toEqual([2, 20]);
  });

  it('releases the graph: a second backward through it is an error', () => {
    const x = Tensor.fromArray([1], [1], true);
    const y = x.exp().sum();
    y.backward();
    expect(() => y.backward()).toThrow(/already released/);
  });

  it('checks every gradient against its input shape', () => {
    const x = Tensor.fromArray([1, 2, 3], [3], true);
    const bad = result('brokenOp', new Float32Array([6]), [], [x], () => [new Float32Array(2)]);
    expect(() => bad.backward()).toThrow(/backward of brokenOp: gradient for input 0 has 2 elements but the input has shape \[3\]/);
  });

  it('noGrad records no tape; detach cuts the graph', () => {
    const x = Tensor.fromArray([1, 2], [2], true);
    const y = noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    const z = x.mul(2).detach().mul(x).sum();
    z.backward();
    expect(Array.from(x.grad!.data)).toEqual([2, 4]);
  });

  it('a deep chain does not overflow the stack', () => {
    const x = Tensor.fromArray([1], [1], true);
    let y = x;
    for (let i = 0; i < 20000; i++) y = y.mul(1);
    y.sum().backward();
    expect(x.grad!.data[0]).toBe(1);
  });
});

describeEachBackend('gradcheck itself', () => {
  it('rejects a wrong gradient (so passing checks mean something)', () => {
    // exp with the derivative of x² — plausible-looking but wrong.
    const wrongExp = (x: Tensor): Tensor =>
      result('wrongExp', Float32Array.from(x.data, Math.exp), x.shape, [x], (g) => [Float32Array.from(g, (v, i) => v * 2 * x.data[i]!)]);
    expect(gradcheck(wrongExp, [randTensor([4, 3], 1)]).ok).toBe(false);
    // An off-by-a-factor gradient is caught too.
    const halfGrad = (x: Tensor): Tensor => result('half', Float32Array.from(x.data, (v) => v * v), x.shape, [x], (g) => [Float32Array.from(g, (v, i) => v * x.data[i]!)]);
    expect(gradcheck(halfGrad, [randTensor([5], 2)]).ok).toBe(false);
    expect(gradcheck((x) => ng.pow(x, 2), [randTensor([5], 2)]).ok).toBe(true);
  });
});
