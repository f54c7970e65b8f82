import { ShapeError, fmtShape } from '../../errors.js';
import { gemm, gemmBatched } from '../../kernels/gemm.js';
import type { MatmulSpec } from '../../kernels/matmul.js';
import { allocF32 } from '../../kernels/storage.js';
import { broadcastShapes, broadcastStrides, sizeOf } from '../../kernels/shape.js';
import { currentScope, report } from '../flops.js';
import { Tensor, result } from '../tensor.js';

/**
 * Matrix product of the last two dims, numpy-style broadcasting over leading batch dims:
 * [..., M, K] · [..., K, N] → [..., M, N]. Backward uses the A·Bᵀ and Aᵀ·B kernel forms, so
 * no transpose is ever materialised.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim < 2 || b.ndim < 2) {
    throw new ShapeError('matmul', `needs tensors with at least 2 dims, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  const m = a.shape[a.ndim - 2]!;
  const k = a.shape[a.ndim - 1]!;
  const k2 = b.shape[b.ndim - 2]!;
  const n = b.shape[b.ndim - 1]!;
  if (k !== k2) {
    throw new ShapeError('matmul', `inner dims differ: ${fmtShape(a.shape)} · ${fmtShape(b.shape)} (${k} vs ${k2})`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes('matmul', aBatch, bBatch);
  } catch {
    throw new ShapeError('matmul', `batch dims of ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be broadcast together`);
  }
  const nb = sizeOf(batch);
  const aOffs = batchOffsets(aBatch, batch, m * k);
  const bOffs = batchOffsets(bBatch, batch, k * n);
  const out = allocF32(nb * m * n);
  const cOffs = Int32Array.from({ length: nb }, (_v, i) => i * m * n);
  batched(a.data, aOffs, b.data, bOffs, out, cOffs, { m, n, k, transA: false, transB: false, accumulate: false });
  const scope = currentScope();
  const flops = 2 * m * n * k * nb;
  report(scope, 'forward', 'product', flops);
  return result('matmul', out, [...batch, m, n], [a, b], (g) => {
    // A leaf operand is a weight; a produced one is an activation.
    if (a.requiresGrad) report(scope, a.node ? 'backward-input' : 'backward-weight', 'product', flops);
    if (b.requiresGrad) report(scope, b.node ? 'backward-input' : 'backward-weight', 'product', flops);
    let ga: Float32Array | null = null;
    let gb: Float32Array | null = null;
    if (a.requiresGrad) {
      ga = allocF32(a.size);
      batched(g, cOffs, b.data, bOffs, ga, aOffs, { m, n: k, k: n, transA: false, transB: true, accumulate: true });
    }
    if (b.requiresGrad) {
      gb = allocF32(b.size);
      batched(a.data, aOffs, g, cOffs, gb, bOffs, { m: k, n, k: m, transA: true, transB: false, accumulate: true });
    }
    return [ga, gb];
  });
}

/**
 * Runs one product per batch. Batches whose outputs coincide (a broadcast operand receiving
 * its gradient) accumulate into the same matrix, so they run one after another; otherwise the
 * batches are spread over the pool.
 */
function batched(a: Float32Array, aOffs: Int32Array, b: Float32Array, bOffs: Int32Array, c: Float32Array, cOffs: Int32Array, spec: MatmulSpec): void {
  if (new Set(cOffs).size === cOffs.length) {
    gemmBatched({ a, b, c, aOffs, bOffs, cOffs, spec });
    return;
  }
  for (let i = 0; i < cOffs.length; i++) gemm(a, aOffs[i]!, b, bOffs[i]!, c, cOffs[i]!, spec);
}

/** Element offset of each output batch's matrix inside an operand with batch dims `shape`. */
function batchOffsets(shape: readonly number[], batch: readonly number[], matSize: number): Int32Array {
  const nb = sizeOf(batch);
  const offs = new Int32Array(nb);
  const st = broadcastStrides(shape, batch);
  for (let i = 0; i < nb; i++) {
    let rem = i;
    let off = 0;
    for (let d = batch.length - 1; d >= 0; d--) {
      const idx = rem % batch[d]!;
      rem = Math.floor(rem / batch[d]!);
      off += idx * st[d]!;
    }
    offs[i] = off * matSize;
  }
  return offs;
}

/**
 * y = x·Wᵀ + b with W stored [out, in] (PyTorch's layout): the fused op every dense Linear
 * uses. x may have any leading dims.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null, op = 'linear'): Tensor {
  if (w.ndim !== 2) throw new ShapeError(op, `weight must be 2-D [out, in], got ${fmtShape(w.shape)}`);
  const [outF, inF] = w.shape as [number, number];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError(op, `input ${fmtShape(x.shape)} does not end in ${inF} (weight ${fmtShape(w.shape)})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(op, `bias ${fmtShape(bias.shape)} must be [${outF}] for weight ${fmtShape(w.shape)}`);
  }
  const rows = x.size / inF;
  const out = allocF32(rows * outF);
  gemm(x.data, 0, w.data, 0, out, 0, { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false });
  if (bias) addRowVector(out, rows, outF, bias.data);
  const scope = currentScope();
  const flops = 2 * rows * inF * outF;
  report(scope, 'forward', 'linear', flops);
  if (bias) report(scope, 'forward', 'elementwise', rows * outF);
  const inputs = bias ? [x, w, bias] : [x, w];
  return result(op, out, [...x.shape.slice(0, -1), outF], inputs, (g) => {
    if (x.requiresGrad) report(scope, 'backward-input', 'linear', flops);
    if (w.requiresGrad) report(scope, 'backward-weight', 'linear', flops);
    if (bias?.requiresGrad) report(scope, 'backward-weight', 'elementwise', rows * outF);
    const grads: (Float32Array | null)[] = [null, null, null];
    if (x.requiresGrad) {
      const gx = allocF32(x.size);
      gemm(g, 0, w.data, 0, gx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false });
      grads[0] = gx;
    }
    if (w.requiresGrad) {
      const gw = allocF32(w.size);
      gemm(g, 0, x.data, 0, gw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false });
      grads[1] = gw;
    }
    if (bias?.requiresGrad) grads[2] = columnSums(g, rows, outF);
    return bias ? grads : grads.slice(0, 2);
  });
}

export function addRowVector(out: Float32Array, rows: number, cols: number, v: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) out[o + j] += v[j]!;
  }
}

export function columnSums(g: Float32Array, rows: number, cols: number): Float32Array {
  const acc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) acc[j] += g[o + j]!;
  }
  return Float32Array.from(acc);
}
