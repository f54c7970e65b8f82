/**
 * NMLinear: an inference Linear whose weight is only its compressed N:M form (values + in-group
 * offsets), as loaded from an exported model. It runs the same sparse kernel as a SparseLinear
 * in a hard phase, so outputs match the trained layer bit for bit.
 */
import { ShapeError, fmtShape } from '../errors.js';
import { withScope } from '../autograd/flops.js';
import type { Tensor } from '../autograd/tensor.js';
import { sparseLinear } from '../sparse/linear-op.js';
import type { NMSparseTensor } from '../sparse/nm-tensor.js';
import type { LinearLike } from './layers.js';
import { Module } from './module.js';

/**
 * An inference-only Linear [out, in] whose weight is an `NMSparseTensor` (values + in-group offsets),
 * as `loadCompressed` builds it; forward matches a SparseLinear in its hard phase bit for bit.
 * Throws ShapeError when the bias does not have `out` entries.
 */
export class NMLinear extends Module implements LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;
  bias: Tensor | null;

  constructor(readonly weight: NMSparseTensor, bias: Tensor | null, readonly layerName = 'NMLinear') {
    super();
    [this.outFeatures, this.inFeatures] = weight.shape;
    if (bias && (bias.ndim !== 1 || bias.shape[0] !== this.outFeatures)) {
      throw new ShapeError(layerName, `bias ${fmtShape(bias.shape)} must be [${this.outFeatures}] for weight ${fmtShape(weight.shape)}`);
    }
    this.bias = bias ? this.param('bias', bias) : null;
  }

  forward(x: Tensor): Tensor {
    const name = this.path || this.layerName;
    return withScope({ layer: name, sparse: true }, () => sparseLinear(x, this.weight, this.bias, name));
  }
}
