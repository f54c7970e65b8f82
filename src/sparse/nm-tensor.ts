/**
 * NMSparseTensor: a [rows, cols] weight compressed to its N:M pattern. `values` holds the kept
 * weights (rows × groups × n, groups = cols / m) and `indices` their offsets inside each group
 * (one byte each, ascending). Storage is (N/M)·(4 + 1)/4 = 1.25·N/M of the dense bytes.
 */
import { ShapeError, SparsityConfigError, fmtShape } from '../errors.js';
import { Tensor } from '../autograd/tensor.js';
import { allocF32, allocI32 } from '../kernels/storage.js';
import { nmKeepOffsets, validateNM } from './mask.js';

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

export class NMSparseTensor {
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
    for (let e = 0; e < indices.length; e++) {
      const ok = indices[e]! < m && (e % n === 0 || indices[e]! > indices[e - 1]!);
      if (!ok) throw new SparsityConfigError(name, `index ${indices[e]} at entry ${e} is not a strictly ascending offset in [0, ${m})`);
    }
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
    const count = (rows * cols * n) / m;
    const indices = new Uint8Array(count);
    if (opts.mask) {
      const mask = opts.mask;
      if (mask.size !== w.size) throw new ShapeError(name, `mask ${fmtShape(mask.shape)} does not match weight ${fmtShape(w.shape)}`);
      let q = 0;
      for (let g = 0; g < rows * (cols / m); g++) {
        let kept = 0;
        for (let j = 0; j < m; j++) {
          if (mask.data[g * m + j] !== 0) {
            if (kept < n) indices[q + kept] = j;
            kept++;
          }
        }
        if (kept !== n) {
          const r = Math.floor(g / (cols / m));
          throw new SparsityConfigError(name, `mask group ${g % (cols / m)} of row ${r} keeps ${kept} weights, not N=${n} of M=${m}`);
        }
        q += n;
      }
    } else nmKeepOffsets(w.data, rows, cols, n, m, indices);
    const values = allocF32(count);
    for (let e = 0; e < count; e++) values[e] = w.data[Math.floor(e / n) * m + indices[e]!]!;
    return new NMSparseTensor([rows, cols], n, m, values, indices, name);
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
    this.forEachEntry((e, flat) => (out.data[flat] = this.values[e]!));
    return out;
  }

  /** 0/1 keep mask of the stored pattern. */
  mask(): Tensor {
    const out = Tensor.zeros(this.shape);
    this.forEachEntry((_e, flat) => (out.data[flat] = 1));
    return out;
  }

  /** Calls fn(entry, flat dense index) for every stored entry, in storage order. */
  forEachEntry(fn: (entry: number, flat: number) => void): void {
    const n = this.n;
    const m = this.m;
    for (let e = 0; e < this.indices.length; e++) fn(e, Math.floor(e / n) * m + this.indices[e]!);
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
    if (this.csr === null) {
      const [rows, cols] = this.shape;
      const perRow = (cols / this.m) * this.n;
      const rowPtr = allocI32(rows + 1);
      for (let i = 0; i <= rows; i++) rowPtr[i] = i * perRow;
      const col = allocI32(this.nnz);
      this.forEachEntry((e, flat) => (col[e] = flat % cols));
      this.csr = { rowPtr, col };
    }
    return this.csr;
  }

  /** CSR of the transpose (columns as rows), with `values` gathered into that order. */
  transposedCsr(values: Float32Array = this.values): CsrView & { val: Float32Array } {
    const [rows, cols] = this.shape;
    const { col } = this.rowsCsr();
    const count = new Int32Array(cols + 1);
    for (let e = 0; e < col.length; e++) count[col[e]! + 1]!++;
    for (let c = 0; c < cols; c++) count[c + 1]! += count[c]!;
    const rowPtr = allocI32(cols + 1);
    rowPtr.set(count);
    const fill = Int32Array.from(count.subarray(0, cols));
    const tCol = allocI32(col.length);
    const val = allocF32(col.length);
    const perRow = rows === 0 ? 0 : col.length / rows;
    for (let e = 0; e < col.length; e++) {
      const p = fill[col[e]!]!++;
      tCol[p] = Math.floor(e / perRow);
      val[p] = values[e]!;
    }
    return { rowPtr, col: tCol, val };
  }
}
