/**
 * Shape arithmetic shared by the ops above the seam and by every backend: sizes, strides,
 * broadcasting, axis normalisation, row odometers, nested-array conversion. No loop over tensor
 * data lives here (the js movement kernels are in js/movement.ts).
 */
import { ShapeError, fmtShape } from '../errors.js';

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** numpy broadcasting of any number of shapes; `op` names the caller in the error. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const ndim = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(ndim).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = ndim - s.length + i;
      const d = s[i]!;
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        throw new ShapeError(op, `shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together (dim ${o}: ${out[o]} vs ${d})`);
      }
    }
  }
  return out;
}

/** Strides of `shape` read as `outShape` under broadcasting (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = stridesOf(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const off = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : strides[i]!;
  return out;
}

/** Normalises a possibly negative axis, or throws a ShapeError naming the op. */
export function normAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= ndim) {
    throw new ShapeError(op, `axis ${axis} is out of range for a tensor with ${ndim} dims`);
  }
  return a;
}

/**
 * Starts an odometer over all but the last dim of `shape` at outer row `row`: fills `idx` with
 * the row's digits and returns Σ idx[d]·strides[d] for each strides array given.
 */
export function odometerAt(row: number, shape: readonly number[], idx: number[], ...strides: (readonly number[])[]): number[] {
  const bases = strides.map(() => 0);
  for (let d = shape.length - 2; d >= 0; d--) {
    const n = shape[d]!;
    const i = row % n;
    row = (row - i) / n;
    idx[d] = i;
    for (let k = 0; k < strides.length; k++) bases[k]! += i * strides[k]![d]!;
  }
  return bases;
}

/** Rows (products of all but the last dim) of a shape; 0 when the last dim is 0, 1 for 0-d. */
export function outerRows(shape: readonly number[]): number {
  const nd = shape.length;
  if (nd === 0) return 1;
  const inner = shape[nd - 1]!;
  return inner === 0 ? 0 : sizeOf(shape) / inner;
}

export type Nested = number | Nested[];

/** Nested JS arrays of a row-major buffer (a number for a 0-d shape). */
export function toNested(data: Float32Array, shape: readonly number[]): Nested {
  const build = (dim: number, off: number): Nested => {
    if (dim === shape.length) return data[off]!;
    const n = shape[dim]!;
    const step = sizeOf(shape.slice(dim + 1));
    const out: Nested[] = [];
    for (let i = 0; i < n; i++) out.push(build(dim + 1, off + i * step));
    return out;
  };
  return build(0, 0);
}

/** Copies JS values into `out`; returns the index of the first non-number, or −1. */
export function copyNumbers(values: readonly unknown[], out: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number') return i;
    out[i] = v;
  }
  return -1;
}
