import { ShapeError, fmtShape } from '../../errors.js';
import { getBackend } from '../../kernels/backends.js';
import { broadcastShapes, broadcastStrides, sizeOf } from '../../kernels/shape.js';
import { currentScope, report } from '../flops.js';
import { recordLinear } from '../linear-record.js';
import { Tensor, result } from '../tensor-core.js';

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Multiply by the transpose of b's last two dims: b is [..., N, K] (attention's Q·Kᵀ). */
  transB?: boolean;
}

/**
 * Matrix product of the last two dims, numpy-style broadcasting over leading batch dims:
 * [..., M, K] · [..., K, N] → [..., M, N] (with `transB`, b is [..., N, K]). Backward uses the
 * kernel's transposed forms, so no transpose is ever materialised.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.ndim < 2 || b.ndim < 2) {
    throw new ShapeError('matmul', `needs tensors with at least 2 dims, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  const transB = opts.transB ?? false;
  const m = a.shape[a.ndim - 2]!;
  const k = a.shape[a.ndim - 1]!;
  const k2 = b.shape[b.ndim - (transB ? 1 : 2)]!;
  const n = b.shape[b.ndim - (transB ? 2 : 1)]!;
  if (k !== k2) {
    throw new ShapeError('matmul', `inner dims differ: ${fmtShape(a.shape)} · ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''} (${k} vs ${k2})`);
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
  const out = getBackend().allocUninit(nb * m * n);
  const cOffs = Int32Array.from({ length: nb }, (_v, i) => i * m * n);
  getBackend().gemmBatched({ a: a.data, aOffs, b: b.data, bOffs, c: out, cOffs, spec: { m, n, k, transA: false, transB, accumulate: false } });
  const scope = currentScope();
  const flops = 2 * m * n * k * nb;
  report(scope, 'forward', 'product', flops);
  return result('matmul', out, [...batch, m, n], [a, b], (g) => {
    // A declared parameter (Parameter(), Module.param) is a weight; anything else an input.
    if (a.requiresGrad) report(scope, a.isParameter ? 'backward-weight' : 'backward-input', 'product', flops);
    if (b.requiresGrad) report(scope, b.isParameter ? 'backward-weight' : 'backward-input', 'product', flops);
    let ga: Float32Array | null = null;
    let gb: Float32Array | null = null;
    // An operand broadcast over the batch gets the sum of its batches' products (accumulated
    // into zeros); one that is not gets each batch's product written once (no zero-fill first).
    if (a.requiresGrad) {
      const own = aBatch.length === batch.length && sizeOf(aBatch) === nb;
      ga = own ? getBackend().allocUninit(a.size) : getBackend().alloc(a.size);
      // dA = G·op(B)ᵀ: op(B)ᵀ is B itself when transB.
      getBackend().gemmBatched({ a: g, aOffs: cOffs, b: b.data, bOffs, c: ga, cOffs: aOffs, spec: { m, n: k, k: n, transA: false, transB: !transB, accumulate: !own } });
    }
    if (b.requiresGrad) {
      const own = bBatch.length === batch.length && sizeOf(bBatch) === nb;
      gb = own ? getBackend().allocUninit(b.size) : getBackend().alloc(b.size);
      // dB = Aᵀ·G [K, N], or with transB dB = Gᵀ·A [N, K]: the same Xᵀ·Y form, operands swapped.
      const [x, xOffs, y, yOffs] = transB ? [g, cOffs, a.data, aOffs] : [a.data, aOffs, g, cOffs];
      getBackend().gemmBatched({ a: x, aOffs: xOffs, b: y, bOffs: yOffs, c: gb, cOffs: bOffs, spec: { m: transB ? n : k, n: transB ? k : n, k: m, transA: true, transB: false, accumulate: !own } });
    }
    return [ga, gb];
  });
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
  const backend = getBackend();
  const out = backend.allocUninit(rows * outF);
  const spec = { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false };
  if (bias) backend.gemmBias(x.data, w.data, out, spec, bias.data);
  else backend.gemm(x.data, 0, w.data, 0, out, 0, spec);
  return recordLinear(op, x, w, bias ?? null, outF, inF, out, { density: 1, denseWeightGrad: true }, {
    input: (g) => {
      const gx = getBackend().allocUninit(x.size);
      getBackend().gemm(g, 0, w.data, 0, gx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false });
      return gx;
    },
    weight: (g) => {
      const gw = getBackend().allocUninit(w.size);
      getBackend().gemm(g, 0, x.data, 0, gw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false });
      return gw;
    },
  });
}
