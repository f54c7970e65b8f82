/**
 * N:M and unstructured magnitude masks. N:M = N kept (non-zero) weights in every group of M
 * consecutive weights along the input axis of a [out, in] weight. Within a group the N largest
 * |w| are kept, ties going to the lower index, so masks are deterministic.
 */
import { DataError, ShapeError, SparsityConfigError, fmtShape } from '../errors.js';
import { Tensor } from '../autograd/tensor-core.js';
import { getBackend } from '../kernels/backends.js';

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

/**
 * A NaN weight has no magnitude, so any mask chosen around it is arbitrary (and the NaN would
 * survive into the compressed values): refuse it, naming the position.
 */
export function refuseNaNWeights(where: string, w: Tensor): void {
  const d = w.data;
  for (let i = 0; i < d.length; i++) {
    if (d[i] !== d[i]) {
      const cols = w.shape[w.ndim - 1] ?? 1;
      throw new DataError(where, `weight ${fmtShape(w.shape)} holds NaN at [${Math.floor(i / cols)}, ${i % cols}]; no magnitude mask can be chosen`);
    }
  }
}

function as2d(where: string, w: Tensor): [number, number] {
  if (w.ndim !== 2) throw new ShapeError(where, `expects a 2-D [out, in] weight, got ${fmtShape(w.shape)}`);
  return w.shape as [number, number];
}

/** 0/1 keep mask (same shape as `w`) of the N:M pattern with the largest magnitudes. */
export function nmMask(w: Tensor, n: number, m: number, name = 'nmMask'): Tensor {
  const [rows, cols] = as2d(name, w);
  validateNM(name, n, m, cols);
  refuseNaNWeights(name, w);
  const indices = new Uint8Array(rows * (cols / m) * n);
  const backend = getBackend();
  backend.nmKeepOffsets(w.data, rows, cols, n, m, indices);
  const mask = Tensor.zeros(w.shape);
  backend.nmScatter(new Float32Array(indices.length).fill(1), { shape: [rows, cols], n, m, indices, values: new Float32Array(0) }, mask.data);
  return mask;
}

/**
 * 0/1 mask keeping the round((1 − sparsity)·size) largest |w| of the whole tensor (ties to the
 * lower flat index).
 */
export function unstructuredMask(w: Tensor, sparsity: number, name = 'unstructuredMask'): Tensor {
  if (!(sparsity >= 0 && sparsity < 1)) throw new SparsityConfigError(name, `sparsity must be in [0, 1), got ${sparsity}`);
  refuseNaNWeights(name, w);
  const mask = Tensor.zeros(w.shape);
  getBackend().topMagnitudeMask(w.data, Math.round((1 - sparsity) * w.size), mask.data);
  return mask;
}
