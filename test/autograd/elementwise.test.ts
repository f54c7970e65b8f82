import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as ng from '../../src/index.js';
import { ShapeError, Tensor } from '../../src/index.js';
import { RUNS, arbBroadcastPair, arbShape, expectGrad, randTensor, readBroadcast, unravel } from '../helpers.js';
import { describeEachBackend } from '../backends.js';

const binaries = {
  add: [ng.add, (a: number, b: number) => a + b],
  sub: [ng.sub, (a: number, b: number) => a - b],
  mul: [ng.mul, (a: number, b: number) => a * b],
  div: [ng.div, (a: number, b: number) => a / b],
} as const;

describeEachBackend('binary ops with broadcasting', () => {
  for (const [name, [op, ref]] of Object.entries(binaries)) {
    it(`${name}: forward matches a reference loop`, () => {
      fc.assert(
        fc.property(arbBroadcastPair(), fc.nat(1000), ([sa, sb], seed) => {
          const a = randTensor(sa, seed, {}, false);
          const b = randTensor(sb, seed + 1, { awayFromZero: 0.5 }, false);
          const y = op(a, b);
          for (let i = 0; i < y.size; i++) {
            const idx = unravel(i, y.shape);
            expect(y.data[i]).toBe(Math.fround(ref(readBroadcast(a, idx), readBroadcast(b, idx))));
          }
        }),
        { numRuns: RUNS },
      );
    });
    it(`${name}: gradcheck on broadcast shapes`, () => {
      fc.assert(
        fc.property(arbBroadcastPair(), fc.nat(1000), ([sa, sb], seed) => {
          const a = randTensor(sa, seed);
          const b = randTensor(sb, seed + 1, { awayFromZero: 0.5 });
          expectGrad((x, y) => op(x, y), [a, b]);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('accepts numbers as scalars', () => {
    const a = Tensor.fromArray([1, 2, 3]);
    expect(Array.from(ng.mul(a, 2).data)).toEqual([2, 4, 6]);
    expect(Array.from(a.sub(1).data)).toEqual([0, 1, 2]);
  });

  it('mismatched shapes raise a ShapeError naming the op and shapes', () => {
    const a = Tensor.zeros([2, 3]);
    const b = Tensor.zeros([4, 3]);
    expect(() => ng.add(a, b)).toThrow(ShapeError);
    expect(() => ng.add(a, b)).toThrow(/add: shapes \[2, 3\] and \[4, 3\]/);
    expect(() => ng.mul(a, Tensor.zeros([2]))).toThrow(/mul/);
  });
});

const unaries: [string, (x: Tensor) => Tensor, (v: number) => number, { awayFromZero?: number; positive?: boolean }][] = [
  ['neg', ng.neg, (v) => -v, {}],
  ['exp', ng.exp, Math.exp, {}],
  ['log', ng.log, Math.log, { positive: true }],
  ['sqrt', ng.sqrt, Math.sqrt, { positive: true }],
  ['tanh', ng.tanh, Math.tanh, {}],
  ['sigmoid', ng.sigmoid, (v) => 1 / (1 + Math.exp(-v)), {}],
  ['relu', ng.relu, (v) => Math.max(v, 0), { awayFromZero: 0.05 }],
  ['abs', ng.abs, Math.abs, { awayFromZero: 0.05 }],
  ['gelu', (x) => ng.gelu(x), (v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2)), {}],
  ['gelu tanh', (x) => ng.gelu(x, 'tanh'), (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), {}],
  ['pow 2', (x) => ng.pow(x, 2), (v) => v * v, {}],
  ['pow 3', (x) => ng.pow(x, 3), (v) => v ** 3, {}],
  ['pow 0.5', (x) => ng.pow(x, 0.5), Math.sqrt, { positive: true }],
  ['pow -1.5', (x) => ng.pow(x, -1.5), (v) => v ** -1.5, { positive: true }],
];

/** erf by its Maclaurin series (independent of the kernel's rational approximation). */
function erfRef(x: number): number {
  if (Math.abs(x) > 5) return Math.sign(x); // |1 - erf(5)| < 2e-12
  let term = x;
  let sum = x;
  for (let n = 1; n < 60; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

describeEachBackend('unary ops', () => {
  for (const [name, op, ref, opts] of unaries) {
    it(`${name}: forward matches Math and gradcheck passes`, () => {
      fc.assert(
        fc.property(arbShape(), fc.nat(1000), (shape, seed) => {
          const x = randTensor(shape, seed, opts);
          const y = op(x);
          expect(y.shape).toEqual(shape);
          for (let i = 0; i < y.size; i++) expect(y.data[i]).toBeCloseTo(ref(x.data[i]!), 5);
          expectGrad(op, [x]);
        }),
        { numRuns: RUNS },
      );
    });
  }
});
