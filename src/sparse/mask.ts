/**
 * N:M and unstructured magnitude masks. N:M = N kept (non-zero) weights in every group of M
 * consecutive weights along the input axis of a [out, in] weight. Within a group the N largest
 * |w| are kept, ties going to the lower index, so masks are deterministic.
 */
import { ShapeError, SparsityConfigError, fmtShape } from '../errors.js';
import { Tensor } from '../autograd/tensor.js';

/** Throws a SparsityConfigError naming `where` unless (n, m) is a valid pattern for `inFeatures`. */
export function validateNM(where: string, n: number, m: number, inFeatures?: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(m)) throw new SparsityConfigError(where, `N and M must be integers, got ${n}:${m}`);
  if (n < 1) throw new SparsityConfigError(where, `N must be at least 1 (N:M counts the kept weights), got ${n}:${m}`);
  if (n > m) throw new SparsityConfigError(where, `N must not exceed M (N kept out of every M), got ${n}:${m}`);
  if (m > 256) throw new SparsityConfigError(where, `M must be at most 256 (offsets are stored in one byte), got ${n}:${m}`);
  if (inFeatures !== undefined && inFeatures % m !== 0) {
    throw new SparsityConfigError(where, `the input dim ${inFeatures} is not a multiple of M=${m} (groups of ${m} run along the input axis; no silent padding)`);
  }
}

function as2d(where: string, w: Tensor): [number, number] {
  if (w.ndim !== 2) throw new ShapeError(where, `expects a 2-D [out, in] weight, got ${fmtShape(w.shape)}`);
  return w.shape as [number, number];
}

/** Ranks by |w| descending, then index ascending. NaN ranks lowest. */
function magnitude(v: number): number {
  const a = Math.abs(v);
  return a === a ? a : -1;
}

/**
 * Offsets (ascending) of the N kept weights of each group, written to `out` (rows × groups × n).
 * Selection keeps a sorted top-N list per group: O(M·N), no pattern enumeration.
 */
export function nmKeepOffsets(data: Float32Array, rows: number, cols: number, n: number, m: number, out: Uint8Array): void {
  const groups = cols / m;
  const topIdx = new Int32Array(n);
  const topMag = new Float64Array(n);
  let q = 0;
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const base = r * cols + g * m;
      let size = 0;
      for (let j = 0; j < m; j++) {
        const mag = magnitude(data[base + j]!);
        // Strictly greater: an equal magnitude at a higher index never displaces a lower one.
        if (size === n && mag <= topMag[n - 1]!) continue;
        let pos = size < n ? size++ : n - 1;
        while (pos > 0 && topMag[pos - 1]! < mag) {
          topMag[pos] = topMag[pos - 1]!;
          topIdx[pos] = topIdx[pos - 1]!;
          pos--;
        }
        topMag[pos] = mag;
        topIdx[pos] = j;
      }
      const kept = Array.from(topIdx.subarray(0, n)).sort((a, b) => a - b);
      for (let t = 0; t < n; t++) out[q++] = kept[t]!;
    }
  }
}

/** 0/1 keep mask (same shape as `w`) of the N:M pattern with the largest magnitudes. */
export function nmMask(w: Tensor, n: number, m: number, name = 'nmMask'): Tensor {
  const [rows, cols] = as2d(name, w);
  validateNM(name, n, m, cols);
  const offs = new Uint8Array(rows * (cols / m) * n);
  nmKeepOffsets(w.data, rows, cols, n, m, offs);
  const mask = Tensor.zeros(w.shape);
  const groups = cols / m;
  let q = 0;
  for (let r = 0; r < rows; r++) for (let g = 0; g < groups; g++) for (let t = 0; t < n; t++) mask.data[r * cols + g * m + offs[q++]!] = 1;
  return mask;
}

/**
 * 0/1 mask keeping the round((1 − sparsity)·size) largest |w| of the whole tensor (ties to the
 * lower flat index).
 */
export function unstructuredMask(w: Tensor, sparsity: number, name = 'unstructuredMask'): Tensor {
  if (!(sparsity >= 0 && sparsity < 1)) throw new SparsityConfigError(name, `sparsity must be in [0, 1), got ${sparsity}`);
  const keep = Math.round((1 - sparsity) * w.size);
  const order = Array.from({ length: w.size }, (_v, i) => i);
  order.sort((a, b) => magnitude(w.data[b]!) - magnitude(w.data[a]!) || a - b);
  const mask = Tensor.zeros(w.shape);
  for (let i = 0; i < keep; i++) mask.data[order[i]!] = 1;
  return mask;
}
