/** The differentiable sparse Linear op: y = x·Wᵀ + b with W an NMSparseTensor. */
import { ShapeError, fmtShape } from '../errors.js';
import { recordLinear } from '../autograd/linear-record.js';
import type { Tensor } from '../autograd/tensor-core.js';
import { getBackend } from '../kernels/backends.js';
import type { NMSparseTensor } from './nm-tensor.js';

/**
 * y = x·Wᵀ (+ b), W compressed [out, in]. Forward and input gradient run the sparse kernels;
 * the weight gradient is computed only at kept positions and delivered, in compressed layout,
 * to `weight.valuesTensor()`. FLOPs count at the density N/M (forward, dX and kept dW).
 */
export function sparseLinear(x: Tensor, weight: NMSparseTensor, bias?: Tensor | null, op = 'sparseLinear'): Tensor {
  return sparseLinearValues(x, weight, weight.valuesTensor(), bias, op);
}

/**
 * `sparseLinear` with the kept values supplied as their own [nnz] tensor (in `weight`'s storage
 * order), so callers can differentiate through values that `weight` does not own.
 */
export function sparseLinearValues(x: Tensor, weight: NMSparseTensor, values: Tensor, bias?: Tensor | null, op = 'sparseLinear'): Tensor {
  const [outF, inF] = weight.shape;
  if (values.size !== weight.nnz) throw new ShapeError(op, `values ${fmtShape(values.shape)} must hold the ${weight.nnz} kept weights`);
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError(op, `input ${fmtShape(x.shape)} does not end in ${inF} (sparse weight ${fmtShape(weight.shape)} at ${weight.n}:${weight.m})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(op, `bias ${fmtShape(bias.shape)} must be [${outF}] for weight ${fmtShape(weight.shape)}`);
  }
  const rows = x.size / inF;
  const w = { shape: weight.shape, n: weight.n, m: weight.m, indices: weight.indices, values: values.data };
  const y = getBackend().allocUninit(rows * outF);
  getBackend().nmForward(x.data, rows, w, bias ? bias.data : null, y);
  return recordLinear(op, x, values, bias ?? null, outF, inF, y, { density: weight.n / weight.m, denseWeightGrad: false, sparse: true }, {
    input: (g) => getBackend().nmInputGrad(g, rows, w),
    weight: (g) => getBackend().nmKeptWeightGrad(g, x.data, rows, w),
  });
}
