import { AllocationError, AutogradError, DataError, ShapeError, ValueError, fmtShape } from '../errors.js';
import { getBackend, type Backend } from '../kernels/backends.js';
import { fillArange, fillNormal, fillUniform, type Rng } from '../kernels/random.js';
import { copyNumbers, sizeOf } from '../kernels/shape.js';
import { openOwnerScope, releaseOwned } from '../kernels/memory/storage.js';

/**
 * A tape node: the op that produced a tensor, its inputs, and the vector–Jacobian product
 * that maps the output gradient to one gradient per input (null where none is needed).
 */
export interface TapeNode {
  op: string;
  inputs: Tensor[];
  backward: (grad: Float32Array) => (Float32Array | null)[];
}

/** A number or nested arrays of numbers, as `Tensor.fromArray` takes and `toArray()` returns. */
export type NestedArray = number | NestedArray[];

let gradEnabled = true;

/** Runs `fn` without recording a tape (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Whether ops record a tape now: false inside `noGrad`. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

function checkShape(op: string, shape: readonly number[]): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(op, `invalid shape ${fmtShape(shape)}: dims must be non-negative integers`);
  }
  return [...shape];
}

/** Storage for a new tensor; a shape too large for memory is an AllocationError naming it, not a bare RangeError. */
function allocFor(op: string, shape: readonly number[]): Float32Array {
  const n = sizeOf(checkShape(op, shape));
  try {
    return getBackend().alloc(n);
  } catch (e) {
    if (!(e instanceof RangeError || e instanceof AllocationError)) throw e;
    const reason = e instanceof AllocationError ? e.message.slice(e.where.length + 2) : e.message;
    throw new AllocationError(`Tensor.${op}`, `cannot allocate a tensor of shape ${fmtShape(shape)} (${n} float32 values, ${((n * 4) / 2 ** 30).toFixed(2)} GiB): ${reason}`);
  }
}

/** A contiguous row-major float32 tensor with an optional autograd tape node. */
export class Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf after `backward()`. */
  grad: Tensor | null = null;
  /** The op that produced this tensor; null for leaves and after the graph is released. */
  node: TapeNode | null = null;
  /** Set once backward has consumed (and released) the graph through this tensor. */
  released = false;
  /** Optional label used in error messages and checkpoints. */
  name: string | undefined;
  /** Declared trainable parameter (set by `Parameter()`): its gradients count as weight gradients. */
  isParameter = false;

  constructor(data: Float32Array, shape: readonly number[], requiresGrad = false) {
    const s = checkShape('Tensor', shape);
    if (data.length !== sizeOf(s)) {
      throw new ShapeError('Tensor', `data of length ${data.length} does not fit shape ${fmtShape(s)} (needs ${sizeOf(s)})`);
    }
    this.data = data;
    this.shape = s;
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError('item', `needs a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return this.data[0]!;
  }

  /** Nested JS arrays (a number for a 0-d tensor). */
  toArray(): NestedArray {
    return getBackend().toNested(this.data, this.shape) as NestedArray;
  }

  /** A new leaf sharing no graph with this tensor (data is shared). */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, false);
  }

  zeroGrad(): void {
    this.grad = null;
  }

  /**
   * Reverse-mode sweep from this tensor. A non-scalar needs an explicit seed gradient.
   * Gradients accumulate into the `.grad` of leaves that require them; the graph is
   * released afterwards.
   */
  backward(seed?: Tensor): void {
    if (this.released) throw new AutogradError('backward', 'the graph through this tensor was already released by an earlier backward()');
    if (!this.requiresGrad) throw new AutogradError('backward', `tensor of shape ${fmtShape(this.shape)} does not require grad (no input of its graph has requiresGrad)`);
    let seedData: Float32Array;
    if (seed === undefined) {
      if (this.size !== 1) {
        throw new AutogradError('backward', `a non-scalar output of shape ${fmtShape(this.shape)} needs an explicit seed gradient: backward(seed)`);
      }
      seedData = new Float32Array([1]);
    } else {
      if (seed.size !== this.size) throw new ShapeError('backward', `seed gradient shape ${fmtShape(seed.shape)} does not match output shape ${fmtShape(this.shape)}`);
      seedData = getBackend().copy(seed.data);
    }
    runBackward(this, seedData);
  }

  toString(): string {
    return `Tensor(shape=${fmtShape(this.shape)}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- creation -------------------------------------------------------------------------

  static zeros(shape: readonly number[], requiresGrad = false): Tensor {
    return new Tensor(allocFor('zeros', shape), shape, requiresGrad);
  }

  static ones(shape: readonly number[], requiresGrad = false): Tensor {
    return Tensor.full(shape, 1, requiresGrad);
  }

  static full(shape: readonly number[], value: number, requiresGrad = false): Tensor {
    const data = allocFor('full', shape);
    data.fill(value);
    return new Tensor(data, shape, requiresGrad);
  }

  static scalar(value: number, requiresGrad = false): Tensor {
    return new Tensor(new Float32Array([value]), [], requiresGrad);
  }

  /** [start, end) by step, like numpy.arange. */
  static arange(start: number, end?: number, step = 1): Tensor {
    if (end === undefined) {
      end = start;
      start = 0;
    }
    if (step === 0 || !Number.isFinite(step)) throw new ValueError('arange', `step must be a finite non-zero number, got ${step}`);
    const n = Math.max(0, Math.ceil((end - start) / step));
    const data = getBackend().alloc(n);
    fillArange(data, start, step);
    return new Tensor(data, [n]);
  }

  /**
   * From a flat array plus shape, or from nested arrays (shape inferred). Validates that the
   * length matches and the nesting is rectangular.
   */
  static fromArray(values: NestedArray | ArrayLike<number>, shape?: readonly number[], requiresGrad = false): Tensor {
    if (shape !== undefined) {
      const s = checkShape('fromArray', shape);
      const flat = typeof values === 'number' ? [values] : Array.isArray(values) ? (values as NestedArray[]).flat(Infinity as 1) : Array.from(values as ArrayLike<number>);
      if (flat.length !== sizeOf(s)) {
        throw new ShapeError('fromArray', `got ${flat.length} values for shape ${fmtShape(s)} (needs ${sizeOf(s)})`);
      }
      const data = getBackend().alloc(flat.length);
      const bad = copyNumbers(flat, data);
      if (bad >= 0) throw new DataError('fromArray', `value at flat index ${bad} is not a number (${String(flat[bad])})`);
      return new Tensor(data, s, requiresGrad);
    }
    if (typeof values === 'number') return Tensor.scalar(values, requiresGrad);
    if (!Array.isArray(values)) return Tensor.fromArray(Array.from(values as ArrayLike<number>), [(values as ArrayLike<number>).length], requiresGrad);
    const inferred: number[] = [];
    let level: NestedArray = values;
    while (Array.isArray(level)) {
      inferred.push(level.length);
      level = level[0] as NestedArray;
      if (level === undefined) break;
    }
    const flat: number[] = [];
    const walk = (v: NestedArray, depth: number, path: string): void => {
      if (depth === inferred.length) {
        if (typeof v !== 'number') throw new ShapeError('fromArray', `ragged nesting at ${path}: expected a number`);
        flat.push(v);
        return;
      }
      if (!Array.isArray(v) || v.length !== inferred[depth]) {
        throw new ShapeError('fromArray', `ragged nesting at ${path}: expected an array of length ${inferred[depth]}, inferred shape ${fmtShape(inferred)}`);
      }
      v.forEach((x, i) => walk(x, depth + 1, `${path}[${i}]`));
    };
    walk(values, 0, 'values');
    return Tensor.fromArray(flat, inferred, requiresGrad);
  }

  /** Standard normal × std + mean, from an explicit seeded generator. */
  static randn(shape: readonly number[], rng: Rng, std = 1, mean = 0, requiresGrad = false): Tensor {
    const t = Tensor.zeros(shape, requiresGrad);
    fillNormal(t.data, rng, std, mean);
    return t;
  }

  /** Uniform in [low, high), from an explicit seeded generator. */
  static uniform(shape: readonly number[], rng: Rng, low = 0, high = 1, requiresGrad = false): Tensor {
    const t = Tensor.zeros(shape, requiresGrad);
    fillUniform(t.data, rng, low, high);
    return t;
  }
}

/**
 * Wraps an op's output; records a tape node when grad is enabled and an input needs grad.
 * `backward` returns one gradient per input, in the input's shape (checked in the sweep).
 */
export function result(op: string, data: Float32Array, shape: readonly number[], inputs: Tensor[], backward: TapeNode['backward']): Tensor {
  const out = new Tensor(data, shape);
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

function runBackward(root: Tensor, seed: Float32Array): void {
  // Iterative post-order DFS gives a topological order without recursion limits.
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i]!;
      if (next.requiresGrad && !visited.has(next)) {
        if (next.released) throw new AutogradError('backward', `a tensor produced by ${t.node!.op} depends on a graph already released by an earlier backward()`);
        visited.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const backend = getBackend();
  const grads = new Map<Tensor, Float32Array>();
  grads.set(root, seed);
  // Gradient buffers made during the sweep belong to it: one that has been consumed (summed
  // into another, or read by its node's backward and not passed on) goes straight back to the
  // arena, so the sweep reuses its own memory instead of waiting for a collection.
  const closeScope = openOwnerScope();
  const consumed = (buf: Float32Array): void => {
    if (buf !== seed) releaseOwned(buf);
  };
  try {
    sweep(order, grads, seed, backend, consumed);
  } finally {
    closeScope();
  }
  for (const t of order) {
    if (t.node !== null) {
      t.node = null;
      t.released = true;
    }
  }
}

function sweep(order: Tensor[], grads: Map<Tensor, Float32Array>, seed: Float32Array, backend: Backend, consumed: (buf: Float32Array) => void): void {
  for (let idx = order.length - 1; idx >= 0; idx--) {
    const t = order[idx]!;
    const g = grads.get(t);
    if (t.node === null) {
      if (g !== undefined && accumulateLeaf(t, g, backend)) consumed(g);
      continue;
    }
    const node = t.node;
    grads.delete(t);
    if (g === undefined) continue;
    // A node's backward runs once: release it now, so that a sweep that fails part-way
    // cannot run a backward again over buffers it consumed.
    t.node = null;
    t.released = true;
    const inputGrads = node.backward(g);
    // g belonged to t alone (t's entry is gone, a non-leaf keeps no .grad), so the first input it
    // passes through to unchanged (reshape, add, ...) takes it over without a copy; any further
    // input that receives it, and anything receiving the caller's seed, gets its own copy, as
    // gradients are later summed in place.
    let gTaken = false;
    node.inputs.forEach((inp, k) => {
      const ig = inputGrads[k];
      if (!inp.requiresGrad || ig === null || ig === undefined) return;
      if (ig.length !== inp.size) {
        throw new ShapeError(`backward of ${node.op}`, `gradient for input ${k} has ${ig.length} elements but the input has shape ${fmtShape(inp.shape)}`);
      }
      const prev = grads.get(inp);
      if (prev === undefined) {
        const own = ig === seed || (ig === g && gTaken);
        if (ig === g) gTaken = true;
        grads.set(inp, own ? backend.copy(ig) : ig);
      } else {
        const sum = prev === ig ? backend.copy(prev) : prev;
        backend.addInto(sum, ig);
        grads.set(inp, sum);
        // Summed in: dead, unless it is g or also goes to another input of this node.
        if (ig !== g && inputGrads.indexOf(ig) === k && inputGrads.lastIndexOf(ig) === k) consumed(ig);
      }
    });
    if (!gTaken) consumed(g);
  }
}

/**
 * Adds g into a leaf's .grad. Every buffer in runBackward's map belongs to its tensor alone
 * (pass-throughs and the seed are copied where shared, and sums are made in place), so a leaf
 * without a gradient takes g over instead of copying it. True when g was summed in (it is dead).
 */
function accumulateLeaf(t: Tensor, g: Float32Array, backend: Backend): boolean {
  if (t.grad === null) {
    t.grad = new Tensor(g, t.shape);
    return false;
  }
  backend.addInto(t.grad.data, g);
  return true;
}
