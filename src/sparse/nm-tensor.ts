/**
 * NMSparseTensor: a [rows, cols] weight compressed to its N:M pattern. `values` holds the kept
 * weights (rows × groups × n, groups = cols / m) and `indices` their offsets inside each group
 * (one byte each, ascending). Storage is (N/M)·(4 + 1)/4 = 1.25·N/M of the dense bytes.
 */
import { ShapeError, SparsityConfigError, fmtShape } from '../errors.js';
import { Tensor } from '../autograd/tensor-core.js';
import { getBackend, type NMWeight } from '../kernels/backends.js';
import { firstInvalidOffset, gatherBy, nmForEachEntry, nmOffsetsFromMask, nmRowsCsr, transposeCsr } from '../kernels/nm-structure.js';
import { allocI32 } from '../kernels/memory/storage.js';
import { refuseNaNWeights, validateNM } from './mask.js';

/**
 * An `NMSparseTensor` as plain JSON (`toJSON` / `fromJSON`): shape, pattern, kept values and their in-group offsets.
 */
export interface NMSparseJSON {
  shape: [number, number];
  n: number;
  m: number;
  values: number[];
  indices: number[];
}

/** CSR structure of a weight (or its transpose): entries rowPtr[i]..rowPtr[i+1]. */
export interface CsrView {
  rowPtr: Int32Array;
  col: Int32Array;
}

/**
 * A [rows, cols] weight compressed to its N:M pattern (N kept of every M along cols): `values`
 * holds the kept weights (rows × cols/M × N, float32) and `indices` their ascending offsets inside
 * each group (one byte each), 1.25·N/M of the dense bytes. Build with `fromDense`; the constructor
 * throws SparsityConfigError for a bad pattern or offsets, ShapeError when the lengths do not fit.
 */
export class NMSparseTensor implements NMWeight {
  readonly shape: readonly [number, number];
  readonly n: number;
  readonly m: number;
  readonly values: Float32Array;
  readonly indices: Uint8Array;
  private valuesParam: Tensor | null = null;
  private csr: CsrView | null = null;

  constructor(shape: readonly [number, number], n: number, m: number, values: Float32Array, indices: Uint8Array, name = 'NMSparseTensor') {
    validateNM(name, n, m, shape[1]);
    const expected = (shape[0] * shape[1] * n) / m;
    if (values.length !== expected || indices.length !== expected) {
      throw new ShapeError(name, `shape ${fmtShape(shape)} at ${n}:${m} needs ${expected} values and indices, got ${values.length} and ${indices.length}`);
    }
    const bad = firstInvalidOffset(indices, n, m);
    if (bad >= 0) throw new SparsityConfigError(name, `index ${indices[bad]} at entry ${bad} is not a strictly ascending offset in [0, ${m})`);
    this.shape = [shape[0], shape[1]];
    this.n = n;
    this.m = m;
    this.values = values;
    this.indices = indices;
  }

  /**
   * Compresses a dense [rows, cols] weight: keeps the N largest |w| per group, or the positions
   * of `mask` (0/1, exactly N ones per group) when given.
   */
  static fromDense(w: Tensor, n: number, m: number, opts: { mask?: Tensor; name?: string } = {}): NMSparseTensor {
    const name = opts.name ?? 'NMSparseTensor.fromDense';
    if (w.ndim !== 2) throw new ShapeError(name, `expects a 2-D [out, in] weight, got ${fmtShape(w.shape)}`);
    const [rows, cols] = w.shape as [number, number];
    validateNM(name, n, m, cols);
    refuseNaNWeights(name, w);
    const count = (rows * cols * n) / m;
    const indices = new Uint8Array(count);
    if (opts.mask) {
      const mask = opts.mask;
      if (mask.size !== w.size) throw new ShapeError(name, `mask ${fmtShape(mask.shape)} does not match weight ${fmtShape(w.shape)}`);
      const bad = nmOffsetsFromMask(mask.data, rows * (cols / m), n, m, indices);
      if (bad !== null) {
        const r = Math.floor(bad.group / (cols / m));
        throw new SparsityConfigError(name, `mask group ${bad.group % (cols / m)} of row ${r} keeps ${bad.kept} weights, not N=${n} of M=${m}`);
      }
    } else getBackend().nmKeepOffsets(w.data, rows, cols, n, m, indices);
    const values = getBackend().alloc(count);
    const sp = new NMSparseTensor([rows, cols], n, m, values, indices, name);
    getBackend().nmGather(w.data, sp, values);
    return sp;
  }

  static fromJSON(j: NMSparseJSON): NMSparseTensor {
    return new NMSparseTensor(j.shape, j.n, j.m, Float32Array.from(j.values), Uint8Array.from(j.indices), 'NMSparseTensor.fromJSON');
  }

  toJSON(): NMSparseJSON {
    return { shape: [this.shape[0], this.shape[1]], n: this.n, m: this.m, values: Array.from(this.values), indices: Array.from(this.indices) };
  }

  /** The dense [rows, cols] weight with zeros at pruned positions. */
  toDense(): Tensor {
    const [rows, cols] = this.shape;
    const out = Tensor.zeros([rows, cols]);
    getBackend().nmScatter(this.values, this, out.data);
    return out;
  }

  /** 0/1 keep mask of the stored pattern. */
  mask(): Tensor {
    const out = Tensor.zeros(this.shape);
    const d = out.data;
    nmForEachEntry(this.n, this.m, this.indices, (_, flat) => {
      d[flat] = 1;
    });
    return out;
  }

  /** Calls fn(entry, flat dense index) for every stored entry, in storage order. */
  forEachEntry(fn: (entry: number, flat: number) => void): void {
    nmForEachEntry(this.n, this.m, this.indices, fn);
  }

  get nnz(): number {
    return this.values.length;
  }

  get density(): number {
    return this.n / this.m;
  }

  /** Bytes held by values + indices. */
  get byteLength(): number {
    return this.values.byteLength + this.indices.byteLength;
  }

  get denseByteLength(): number {
    return this.shape[0] * this.shape[1] * 4;
  }

  /** byteLength / denseByteLength. */
  get compressionRatio(): number {
    return this.byteLength / this.denseByteLength;
  }

  /**
   * The values as a [nnz] Tensor sharing storage, so autograd can deliver the kept-position
   * weight gradient (compressed layout) to it. Call with requiresGrad to train them.
   */
  valuesTensor(requiresGrad = false): Tensor {
    if (this.valuesParam === null) this.valuesParam = new Tensor(this.values, [this.values.length], requiresGrad);
    else if (requiresGrad) this.valuesParam.requiresGrad = true;
    return this.valuesParam;
  }

  /** Row-wise CSR (built once; the pattern is immutable). */
  rowsCsr(): CsrView {
    this.csr ??= nmRowsCsr(this.shape, this.n, this.m, this.indices, allocI32);
    return this.csr;
  }

  /** CSR of the transpose (columns as rows), with `values` gathered into that order. */
  transposedCsr(values: Float32Array = this.values): CsrView & { val: Float32Array } {
    const t = transposeCsr(this.shape[0], this.shape[1], this.rowsCsr(), allocI32);
    const val = getBackend().alloc(t.source.length);
    gatherBy(values, t.source, val);
    return { rowPtr: t.rowPtr, col: t.col, val };
  }
}
