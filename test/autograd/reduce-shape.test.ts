import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as ng from '../../src/index.js';
import { ShapeError, Tensor } from '../../src/index.js';
import { RUNS, arbShape, expectGrad, maxAbsDiff, randTensor, unravel } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

/** A shape plus a non-empty subset of its axes (some given as negative numbers). */
const arbShapeAxes = fc
  .tuple(arbShape(1, 4, 4), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), fc.boolean())
  .map(([shape, pick, negative]) => {
    let axes = shape.map((_d, i) => i).filter((i) => pick[i]);
    if (axes.length === 0) axes = [0];
    return { shape, axes: negative ? axes.map((a) => a - shape.length) : axes };
  });

function refReduce(x: Tensor, axes: number[], init: number, f: (acc: number, v: number) => number): { shape: number[]; data: number[] } {
  const ax = axes.map((a) => (a < 0 ? a + x.ndim : a));
  const shape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Array<number>(n).fill(init);
  for (let i = 0; i < x.size; i++) {
    const idx = unravel(i, x.shape).map((v, d) => (ax.includes(d) ? 0 : v));
    const flat = idx.reduce((acc, v, d) => acc * shape[d]! + v, 0);
    data[flat] = f(data[flat]!, x.data[i]!);
  }
  return { shape, data };
}

describeEachBackend('reductions', () => {
  it('sum / mean / max match reference loops, keepdim or not, and pass gradcheck', () => {
    fc.assert(
      fc.property(arbShapeAxes, fc.boolean(), fc.nat(1000), ({ shape, axes }, keepdim, seed) => {
        const x = randTensor(shape, seed);
        const rs = refReduce(x, axes, 0, (a, v) => a + v);
        const rm = refReduce(x, axes, -Infinity, (a, v) => Math.max(a, v));
        const count = x.size / rs.data.length;
        const s = ng.sum(x, axes, keepdim);
        const m = ng.mean(x, axes, keepdim);
        const mx = ng.max(x, axes, keepdim);
        const outShape = keepdim ? rs.shape : rs.shape.filter((_d, i) => !axes.map((a) => (a < 0 ? a + x.ndim : a)).includes(i));
        expect(s.shape).toEqual(outShape);
        expect(maxAbsDiff(s.data, rs.data)).toBeLessThan(1e-5);
        expect(maxAbsDiff(m.data, rs.data.map((v) => v / count))).toBeLessThan(1e-5);
        expect(Array.from(mx.data)).toEqual(rm.data.map(Math.fround));
        expectGrad((t) => ng.sum(t, axes, keepdim), [x]);
        expectGrad((t) => ng.mean(t, axes, keepdim), [x]);
        expectGrad((t) => ng.max(t, axes, keepdim), [x]);
      }),
      { numRuns: RUNS },
    );
  });

  it('sum over all axes gives a scalar', () => {
    const x = Tensor.fromArray([[1, 2], [3, 4]]);
    expect(x.sum().item()).toBe(10);
    expect(x.sum().shape).toEqual([]);
  });

  it('an invalid axis raises a ShapeError naming the op', () => {
    expect(() => ng.sum(Tensor.zeros([2, 3]), 2)).toThrow(/sum: axis 2 is out of range/);
    expect(() => ng.max(Tensor.zeros([2, 3]), -3)).toThrow(ShapeError);
    expect(() => ng.softmax(Tensor.zeros([2, 3]), 5)).toThrow(/softmax/);
  });
});

describeEachBackend('shape ops', () => {
  it('reshape is a view with -1 inference, and its gradient flows', () => {
    fc.assert(
      fc.property(arbShape(1, 3), fc.nat(1000), (shape, seed) => {
        const x = randTensor(shape, seed);
        const y = ng.reshape(x, [-1]);
        expect(y.data).toBe(x.data);
        expect(y.shape).toEqual([x.size]);
        expectGrad((t) => ng.mul(ng.reshape(t, [x.size, 1]), ng.reshape(t, [x.size, 1])), [x]);
      }),
      { numRuns: RUNS },
    );
    expect(() => ng.reshape(Tensor.zeros([2, 3]), [4, 2])).toThrow(/reshape: cannot reshape \[2, 3\]/);
  });

  it('permute / transpose match index arithmetic and pass gradcheck', () => {
    fc.assert(
      fc.property(arbShape(2, 4), fc.nat(1000), (shape, seed) => {
        const x = randTensor(shape, seed);
        const perm = [...shape.keys()].reverse();
        const y = ng.permute(x, perm);
        for (let i = 0; i < y.size; i++) {
          const idx = unravel(i, y.shape);
          const src = new Array<number>(shape.length);
          perm.forEach((p, k) => (src[p] = idx[k]!));
          const flat = src.reduce((acc, v, d) => acc * shape[d]! + v, 0);
          expect(y.data[i]).toBe(x.data[flat]);
        }
        expectGrad((t) => ng.permute(t, perm), [x]);
        expectGrad((t) => ng.transpose(t, 0, -1), [x]);
      }),
      { numRuns: RUNS },
    );
  });

  it('slice / concat / stack round-trip and pass gradcheck', () => {
    fc.assert(
      fc.property(arbShape(1, 3, 5), fc.nat(1000), fc.nat(10), (shape, seed, r) => {
        const x = randTensor(shape, seed);
        const axis = r % shape.length;
        const len = shape[axis]!;
        const cut = r % (len + 1);
        const a = ng.slice(x, axis, 0, cut);
        const b = ng.slice(x, axis, cut);
        expect(Array.from(ng.concat([a, b], axis).data)).toEqual(Array.from(x.data));
        expectGrad((t) => ng.concat([ng.slice(t, axis, cut), ng.slice(t, axis, 0, cut)], axis), [x]);
        const y = randTensor(shape, seed + 1);
        const st = ng.stack([x, y], axis);
        expect(st.shape[axis]).toBe(2);
        expect(Array.from(ng.squeeze(ng.slice(st, axis, 1, 2), axis).data)).toEqual(Array.from(y.data));
        expectGrad((p, q) => ng.stack([p, q], -1), [x, y]);
      }),
      { numRuns: RUNS },
    );
  });

  it('broadcastTo materialises and its gradient sums back', () => {
    const x = randTensor([3, 1], 1);
    const y = ng.broadcastTo(x, [2, 3, 4]);
    expect(y.shape).toEqual([2, 3, 4]);
    expect(y.data[1 * 12 + 2 * 4 + 3]).toBe(x.data[2]);
    expectGrad((t) => ng.broadcastTo(t, [2, 3, 4]), [x]);
    expect(() => ng.broadcastTo(x, [2, 4])).toThrow(ShapeError);
  });

  it('concat of mismatched shapes raises a ShapeError with the shapes', () => {
    expect(() => ng.concat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])], 0)).toThrow(/concat: shapes \[2, 3\], \[2, 4\] differ outside axis 0/);
    expect(() => ng.slice(Tensor.zeros([2, 3]), 1, 2, 5)).toThrow(/slice: range \[2, 5\)/);
  });
});
