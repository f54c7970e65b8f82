/** The differentiable sparse Linear op: y = x·Wᵀ + b with W an NMSparseTensor. */
import { ShapeError, fmtShape } from '../errors.js';
import { Tensor, result } from '../autograd/tensor.js';
import { columnSums } from '../autograd/ops/matmul.js';
import { allocF32 } from '../kernels/storage.js';
import { keptWeightGrad, sparseGather, sparseInputGrad } from './kernels.js';
import type { NMSparseTensor } from './nm-tensor.js';

/**
 * y = x·Wᵀ (+ b), W compressed [out, in]. Forward and input gradient run the sparse kernels;
 * the weight gradient is computed only at kept positions and delivered, in compressed layout,
 * to `weight.valuesTensor()`.
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
  const csr = weight.rowsCsr();
  const y = allocF32(rows * outF);
  sparseGather({ x: x.data, inDim: inF, rowPtr: csr.rowPtr, col: csr.col, val: values.data, y, bias: bias ? bias.data : null }, rows);
  const inputs = bias ? [x, values, bias] : [x, values];
  return result(op, y, [...x.shape.slice(0, -1), outF], inputs, (g) => {
    const grads: (Float32Array | null)[] = [null, null, null];
    if (x.requiresGrad) {
      grads[0] = sparseInputGrad(g, rows, outF, inF, weight.transposedCsr(values.data));
    }
    if (values.requiresGrad) grads[1] = keptWeightGrad(g, x.data, rows, inF, outF, csr);
    if (bias?.requiresGrad) grads[2] = columnSums(g, rows, outF);
    return bias ? grads : grads.slice(0, 2);
  });
}
