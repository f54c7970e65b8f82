import { ShapeError, fmtShape } from '../errors.js';
import { Tensor } from '../autograd/tensor.js';
import { mul } from '../autograd/ops/elementwise.js';
import { matmul } from '../autograd/ops/matmul.js';
import { maskedFill, softmax } from '../autograd/ops/nn.js';
import { concat, permute, reshape } from '../autograd/ops/shape.js';
import { causalMaskFill } from '../kernels/fill.js';
import { Rng } from '../kernels/random.js';
import { Dropout, Linear, type LinearLike } from './layers.js';
import { withScope } from '../autograd/flops.js';
import { Module } from './module.js';

/** Keys/values of earlier positions, [B, H, T, Dh]; `fixed` = computed once (cross attention). */
export interface KVCache {
  k: Tensor | null;
  v: Tensor | null;
  fixed?: boolean;
}

/** Options of one `MultiHeadAttention` call: key padding, causal masking and the decoding cache. */
export interface AttentionOptions {
  /** [B, Tk] with 1 at padded key positions (never attended). */
  keyPaddingMask?: Tensor | null;
  /** Query i may attend key j only if j ≤ i + (cached positions). */
  causal?: boolean;
  /** Incremental decoding state, updated in place. */
  cache?: KVCache;
}

const MASKED = -1e9;

/** Multi-head scaled dot-product attention with q/k/v/out projections. */
export class MultiHeadAttention extends Module {
  qProj: LinearLike;
  kProj: LinearLike;
  vProj: LinearLike;
  outProj: LinearLike;
  drop: Dropout;
  readonly headDim: number;

  constructor(readonly dModel: number, readonly heads: number, opts: { dropout?: number; rng?: Rng } = {}) {
    super();
    if (dModel % heads !== 0) throw new ShapeError('MultiHeadAttention', `d_model ${dModel} is not divisible by heads ${heads}`);
    const rng = opts.rng ?? new Rng(0);
    this.headDim = dModel / heads;
    this.qProj = this.module('qProj', new Linear(dModel, dModel, { rng, init: 'xavier' }));
    this.kProj = this.module('kProj', new Linear(dModel, dModel, { rng, init: 'xavier' }));
    this.vProj = this.module('vProj', new Linear(dModel, dModel, { rng, init: 'xavier' }));
    this.outProj = this.module('outProj', new Linear(dModel, dModel, { rng, init: 'xavier' }));
    this.drop = this.module('drop', new Dropout(opts.dropout ?? 0, new Rng(rng.nextU32())));
  }

  private split(x: Tensor): Tensor {
    const [b, t] = x.shape as [number, number, number];
    return permute(reshape(x, [b, t, this.heads, this.headDim]), [0, 2, 1, 3]);
  }

  /** query [B, Tq, D]; keyValue [B, Tk, D] (defaults to query: self attention). */
  forward(query: Tensor, keyValue: Tensor | null = null, opts: AttentionOptions = {}): Tensor {
    return withScope({ layer: this.path, attention: true }, () => this.attend(query, keyValue, opts));
  }

  private attend(query: Tensor, keyValue: Tensor | null, opts: AttentionOptions): Tensor {
    if (query.ndim !== 3 || query.shape[2] !== this.dModel) {
      throw new ShapeError('MultiHeadAttention', `query must be [batch, time, ${this.dModel}], got ${fmtShape(query.shape)}`);
    }
    const [b, tq] = query.shape as [number, number, number];
    const q = this.split(mul(this.qProj.forward(query), 1 / Math.sqrt(this.headDim)));
    const cache = opts.cache;
    let k: Tensor;
    let v: Tensor;
    let past = 0;
    if (cache?.fixed && cache.k && cache.v) {
      k = cache.k;
      v = cache.v;
    } else {
      const src = keyValue ?? query;
      k = this.split(this.kProj.forward(src));
      v = this.split(this.vProj.forward(src));
      if (cache) {
        if (cache.k && cache.v && !cache.fixed) {
          past = cache.k.shape[2]!;
          k = concat([cache.k, k], 2);
          v = concat([cache.v, v], 2);
        }
        cache.k = k;
        cache.v = v;
      }
    }
    const tk = k.shape[2]!;
    let scores = matmul(q, k, { transB: true }); // [B, H, Tq, Tk], no materialised Kᵀ
    if (opts.keyPaddingMask) {
      const m = opts.keyPaddingMask;
      if (m.size !== b * tk) throw new ShapeError('MultiHeadAttention', `key padding mask ${fmtShape(m.shape)} must be [${b}, ${tk}]`);
      scores = maskedFill(scores, reshape(m, [b, 1, 1, tk]), MASKED);
    }
    if (opts.causal) scores = maskedFill(scores, causalMask(tq, tk, past), MASKED);
    const attn = this.drop.forward(softmax(scores, -1));
    const ctx = permute(matmul(attn, v), [0, 2, 1, 3]); // [B, Tq, H, Dh]
    return this.outProj.forward(reshape(ctx, [b, tq, this.dModel]));
  }
}

/** [1, 1, Tq, Tk] with 1 where key j lies in the future of query i (j > i + past). */
export function causalMask(tq: number, tk: number, past = 0): Tensor {
  const m = Tensor.zeros([1, 1, tq, tk]);
  causalMaskFill(tq, tk, past, m.data);
  return m;
}
