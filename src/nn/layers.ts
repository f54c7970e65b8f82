import { ShapeError, ValueError } from '../errors.js';
import { Tensor } from '../autograd/tensor.js';
import { gelu, relu } from '../autograd/ops/elementwise.js';
import { linear } from '../autograd/ops/matmul.js';
import { dropout, embedding, layerNorm } from '../autograd/ops/nn.js';
import { sinusoidalFill } from '../kernels/fill.js';
import { Rng } from '../kernels/random.js';
import { withScope } from '../autograd/flops.js';
import { Module } from './module.js';

/** Options of `Linear`: bias (default true), the generator for the initial weights, and the init rule. */
export interface LinearOptions {
  bias?: boolean;
  rng?: Rng;
  /** 'default': U(±1/√in) like PyTorch; 'xavier': U(±√(6/(in+out))). */
  init?: 'default' | 'xavier';
}

/** y = x·Wᵀ + b, W stored [out, in]. */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    if (!(inFeatures > 0 && outFeatures > 0)) throw new ShapeError('Linear', `features must be positive, got in=${inFeatures}, out=${outFeatures}`);
    const rng = opts.rng ?? new Rng(0);
    const bound = opts.init === 'xavier' ? Math.sqrt(6 / (inFeatures + outFeatures)) : 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', Tensor.uniform([outFeatures, inFeatures], rng, -bound, bound));
    this.bias = opts.bias === false ? null : this.param('bias', Tensor.uniform([outFeatures], rng, -1 / Math.sqrt(inFeatures), 1 / Math.sqrt(inFeatures)));
    if (opts.init === 'xavier' && this.bias) this.bias.data.fill(0);
  }

  forward(x: Tensor): Tensor {
    return withScope({ layer: this.path }, () => linear(x, this.weight, this.bias, this.path || 'linear'));
  }
}

/** Token embedding table [vocab, dim], N(0, std²). */
export class Embedding extends Module {
  weight: Tensor;
  constructor(readonly vocab: number, readonly dim: number, rng: Rng = new Rng(0), std = 1) {
    super();
    this.weight = this.param('weight', Tensor.randn([vocab, dim], rng, std));
  }

  forward(ids: ArrayLike<number>, shape: readonly number[]): Tensor {
    return embedding(this.weight, ids, shape);
  }
}

/** Layer normalisation over the last dim (`dim` features) with a learned scale and shift; eps 1e-5. */
export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5) {
    super();
    this.weight = this.param('weight', Tensor.ones([dim]));
    this.bias = this.param('bias', Tensor.zeros([dim]));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Inverted dropout, active only in training mode; draws from its own seeded generator. */
export class Dropout extends Module {
  constructor(readonly p: number, readonly rng: Rng = new Rng(0)) {
    super();
    if (!(p >= 0 && p < 1)) throw new ValueError('Dropout', `p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.rng, this.training);
  }
}

/** Anything with a Linear-like forward: dense Linear or a sparse replacement. */
export interface LinearLike extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  forward(x: Tensor): Tensor;
}

/** Position-wise feed-forward block: fc2(dropout(act(fc1(x)))). */
export class FeedForward extends Module {
  fc1: LinearLike;
  fc2: LinearLike;
  drop: Dropout;
  constructor(readonly dModel: number, readonly hidden: number, opts: { activation?: 'relu' | 'gelu'; dropout?: number; rng?: Rng } = {}) {
    super();
    const rng = opts.rng ?? new Rng(0);
    this.activation = opts.activation ?? 'relu';
    this.fc1 = this.module('fc1', new Linear(dModel, hidden, { rng, init: 'xavier' }));
    this.fc2 = this.module('fc2', new Linear(hidden, dModel, { rng, init: 'xavier' }));
    this.drop = this.module('drop', new Dropout(opts.dropout ?? 0, new Rng(rng.nextU32())));
  }
  readonly activation: 'relu' | 'gelu';

  forward(x: Tensor): Tensor {
    const h = this.fc1.forward(x);
    return this.fc2.forward(this.drop.forward(this.activation === 'gelu' ? gelu(h) : relu(h)));
  }
}

/** Sinusoidal position encodings [maxLen, dim] (Vaswani et al.). */
export function sinusoidalPositions(maxLen: number, dim: number): Tensor {
  if (dim % 2 !== 0) throw new ShapeError('sinusoidalPositions', `dim must be even, got ${dim}`);
  const t = Tensor.zeros([maxLen, dim]);
  sinusoidalFill(maxLen, dim, t.data);
  return t;
}
