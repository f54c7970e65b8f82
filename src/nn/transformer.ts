import { ShapeError } from '../errors.js';
import { Tensor, noGrad } from '../autograd/tensor.js';
import { add, mul } from '../autograd/ops/elementwise.js';
import { linear } from '../autograd/ops/matmul.js';
import { slice } from '../autograd/ops/shape.js';
import { argmax } from '../autograd/ops/reduce.js';
import { equalsMaskFill } from '../kernels/fill.js';
import { Rng } from '../kernels/random.js';
import { MultiHeadAttention, type KVCache } from './attention.js';
import { Dropout, Embedding, FeedForward, LayerNorm, Linear, sinusoidalPositions } from './layers.js';
import { Module, ModuleList } from './module.js';

/**
 * The shape of a `Transformer`: vocabularies, width `dModel`, `heads`, FFN width `ffn` and layer
 * counts; defaults dropout 0.1, maxLen 256, separate embeddings, tied output, pre-norm, ReLU, seed 0.
 * `dModel` must be a multiple of `heads` (else ShapeError).
 */
export interface TransformerConfig {
  srcVocab: number;
  tgtVocab: number;
  dModel: number;
  heads: number;
  ffn: number;
  encoderLayers: number;
  decoderLayers: number;
  dropout?: number;
  maxLen?: number;
  /** One embedding table for source and target (needs srcVocab == tgtVocab). */
  shareEmbeddings?: boolean;
  /** Output projection = target embedding transposed. */
  tieOutput?: boolean;
  /** Pre-norm (default) or post-norm residual blocks. */
  norm?: 'pre' | 'post';
  activation?: 'relu' | 'gelu';
  seed?: number;
}

/**
 * One encoder block: self-attention and a feed-forward block (`ffn.fc1`, `ffn.fc2`), each with a residual and a LayerNorm (pre- or post-norm).
 */
export class TransformerEncoderLayer extends Module {
  selfAttn: MultiHeadAttention;
  ffn: FeedForward;
  norm1: LayerNorm;
  norm2: LayerNorm;
  drop: Dropout;
  constructor(dModel: number, heads: number, hidden: number, readonly norm: 'pre' | 'post', dropout: number, rng: Rng, activation: 'relu' | 'gelu' = 'relu') {
    super();
    this.selfAttn = this.module('selfAttn', new MultiHeadAttention(dModel, heads, { dropout, rng }));
    this.ffn = this.module('ffn', new FeedForward(dModel, hidden, { dropout, rng, activation }));
    this.norm1 = this.module('norm1', new LayerNorm(dModel));
    this.norm2 = this.module('norm2', new LayerNorm(dModel));
    this.drop = this.module('drop', new Dropout(dropout, new Rng(rng.nextU32())));
  }

  forward(x: Tensor, padMask: Tensor | null): Tensor {
    const attn = (h: Tensor): Tensor => this.drop.forward(this.selfAttn.forward(h, null, { keyPaddingMask: padMask }));
    const ff = (h: Tensor): Tensor => this.drop.forward(this.ffn.forward(h));
    if (this.norm === 'pre') {
      x = add(x, attn(this.norm1.forward(x)));
      return add(x, ff(this.norm2.forward(x)));
    }
    x = this.norm1.forward(add(x, attn(x)));
    return this.norm2.forward(add(x, ff(x)));
  }
}

/**
 * Incremental-decoding state of one decoder block: the self-attention and cross-attention key/value caches.
 */
export interface DecoderLayerCache {
  self: KVCache;
  cross: KVCache;
}

/**
 * One decoder block: causal self-attention, cross-attention over the encoder output and a feed-forward block, each with a residual and a LayerNorm.
 */
export class TransformerDecoderLayer extends Module {
  selfAttn: MultiHeadAttention;
  crossAttn: MultiHeadAttention;
  ffn: FeedForward;
  norm1: LayerNorm;
  norm2: LayerNorm;
  norm3: LayerNorm;
  drop: Dropout;
  constructor(dModel: number, heads: number, hidden: number, readonly norm: 'pre' | 'post', dropout: number, rng: Rng, activation: 'relu' | 'gelu' = 'relu') {
    super();
    this.selfAttn = this.module('selfAttn', new MultiHeadAttention(dModel, heads, { dropout, rng }));
    this.crossAttn = this.module('crossAttn', new MultiHeadAttention(dModel, heads, { dropout, rng }));
    this.ffn = this.module('ffn', new FeedForward(dModel, hidden, { dropout, rng, activation }));
    this.norm1 = this.module('norm1', new LayerNorm(dModel));
    this.norm2 = this.module('norm2', new LayerNorm(dModel));
    this.norm3 = this.module('norm3', new LayerNorm(dModel));
    this.drop = this.module('drop', new Dropout(dropout, new Rng(rng.nextU32())));
  }

  forward(x: Tensor, memory: Tensor, srcPad: Tensor | null, cache?: DecoderLayerCache): Tensor {
    const selfA = (h: Tensor): Tensor => this.drop.forward(this.selfAttn.forward(h, null, { causal: true, cache: cache?.self }));
    const crossA = (h: Tensor): Tensor => this.drop.forward(this.crossAttn.forward(h, memory, { keyPaddingMask: srcPad, cache: cache?.cross }));
    const ff = (h: Tensor): Tensor => this.drop.forward(this.ffn.forward(h));
    if (this.norm === 'pre') {
      x = add(x, selfA(this.norm1.forward(x)));
      x = add(x, crossA(this.norm2.forward(x)));
      return add(x, ff(this.norm3.forward(x)));
    }
    x = this.norm1.forward(add(x, selfA(x)));
    x = this.norm2.forward(add(x, crossA(x)));
    return this.norm3.forward(add(x, ff(x)));
  }
}

/** [B, S] 0/1 tensor with 1 at padding positions. */
export function paddingMask(ids: ArrayLike<number>, shape: readonly [number, number], padId: number): Tensor {
  const m = Tensor.zeros(shape);
  equalsMaskFill(ids, padId, m.data);
  return m;
}

/** Encoder-decoder Transformer (Vaswani et al.), pre-norm by default. */
export class Transformer extends Module {
  readonly config: Required<TransformerConfig>;
  srcEmbed: Embedding;
  tgtEmbed: Embedding;
  encoder: ModuleList<TransformerEncoderLayer>;
  decoder: ModuleList<TransformerDecoderLayer>;
  encoderNorm: LayerNorm | null;
  decoderNorm: LayerNorm | null;
  output: Linear | null;
  drop: Dropout;
  private readonly positions: Tensor;

  constructor(cfg: TransformerConfig) {
    super();
    this.config = { dropout: 0.1, maxLen: 256, shareEmbeddings: false, tieOutput: true, norm: 'pre', activation: 'relu', seed: 0, ...cfg };
    const c = this.config;
    if (c.shareEmbeddings && c.srcVocab !== c.tgtVocab) {
      throw new ShapeError('Transformer', `shareEmbeddings needs equal vocabularies, got ${c.srcVocab} and ${c.tgtVocab}`);
    }
    const rng = new Rng(c.seed);
    const std = Math.pow(c.dModel, -0.5);
    this.srcEmbed = this.module('srcEmbed', new Embedding(c.srcVocab, c.dModel, rng, std));
    this.tgtEmbed = c.shareEmbeddings ? this.srcEmbed : this.module('tgtEmbed', new Embedding(c.tgtVocab, c.dModel, rng, std));
    this.encoder = this.module('encoder', new ModuleList<TransformerEncoderLayer>());
    this.decoder = this.module('decoder', new ModuleList<TransformerDecoderLayer>());
    for (let i = 0; i < c.encoderLayers; i++) this.encoder.push(new TransformerEncoderLayer(c.dModel, c.heads, c.ffn, c.norm, c.dropout, rng, c.activation));
    for (let i = 0; i < c.decoderLayers; i++) this.decoder.push(new TransformerDecoderLayer(c.dModel, c.heads, c.ffn, c.norm, c.dropout, rng, c.activation));
    this.encoderNorm = c.norm === 'pre' ? this.module('encoderNorm', new LayerNorm(c.dModel)) : null;
    this.decoderNorm = c.norm === 'pre' ? this.module('decoderNorm', new LayerNorm(c.dModel)) : null;
    this.output = c.tieOutput ? null : this.module('output', new Linear(c.dModel, c.tgtVocab, { rng, bias: false, init: 'xavier' }));
    this.drop = this.module('drop', new Dropout(c.dropout, new Rng(rng.nextU32())));
    this.positions = sinusoidalPositions(c.maxLen, c.dModel);
    this.nameModules();
  }

  private embed(e: Embedding, ids: ArrayLike<number>, shape: readonly [number, number], start: number): Tensor {
    const [, t] = shape;
    if (start + t > this.config.maxLen) throw new ShapeError('Transformer', `sequence of ${start + t} positions exceeds maxLen ${this.config.maxLen}`);
    const x = mul(e.forward(ids, shape), Math.sqrt(this.config.dModel));
    return this.drop.forward(add(x, slice(this.positions, 0, start, start + t)));
  }

  /** Source ids [B, S] → memory [B, S, D]. */
  encode(src: ArrayLike<number>, shape: readonly [number, number], srcPad: Tensor | null): Tensor {
    let x = this.embed(this.srcEmbed, src, shape, 0);
    for (const l of this.encoder.items) x = l.forward(x, srcPad);
    return this.encoderNorm ? this.encoderNorm.forward(x) : x;
  }

  /** Target ids [B, T] (shifted right) → logits [B, T, V]. With a cache, positions continue from it. */
  decode(tgt: ArrayLike<number>, shape: readonly [number, number], memory: Tensor, srcPad: Tensor | null, cache?: DecoderLayerCache[], start = 0): Tensor {
    let x = this.embed(this.tgtEmbed, tgt, shape, start);
    this.decoder.items.forEach((l, i) => (x = l.forward(x, memory, srcPad, cache?.[i])));
    if (this.decoderNorm) x = this.decoderNorm.forward(x);
    return this.output ? this.output.forward(x) : linear(x, this.tgtEmbed.weight);
  }

  forward(src: ArrayLike<number>, srcShape: readonly [number, number], tgt: ArrayLike<number>, tgtShape: readonly [number, number], padId: number): Tensor {
    const srcPad = paddingMask(src, srcShape, padId);
    return this.decode(tgt, tgtShape, this.encode(src, srcShape, srcPad), srcPad);
  }

  newCache(): DecoderLayerCache[] {
    return this.decoder.items.map(() => ({ self: { k: null, v: null }, cross: { k: null, v: null, fixed: true } }));
  }

  /**
   * Greedy decoding with the key/value cache: one new position per step. Returns token ids per
   * sentence, without bos and stopping at (excluding) eos.
   */
  greedy(src: ArrayLike<number>, srcShape: readonly [number, number], opts: { bos: number; eos: number; pad: number; maxLen: number }): number[][] {
    return noGrad(() => {
      const wasTraining = this.training;
      this.eval();
      const [b] = srcShape;
      const srcPad = paddingMask(src, srcShape, opts.pad);
      const memory = this.encode(src, srcShape, srcPad);
      const cache = this.newCache();
      const out: number[][] = Array.from({ length: b }, () => []);
      const done = new Array<boolean>(b).fill(false);
      let tokens = new Array<number>(b).fill(opts.bos);
      const limit = Math.min(opts.maxLen, this.config.maxLen);
      for (let step = 0; step < limit; step++) {
        const logits = this.decode(tokens, [b, 1], memory, srcPad, cache, step);
        const next = argmax(logits, -1);
        tokens = Array.from(next);
        for (let i = 0; i < b; i++) {
          if (done[i]) continue;
          if (next[i] === opts.eos) done[i] = true;
          else out[i]!.push(next[i]!);
        }
        if (done.every(Boolean)) break;
      }
      this.train(wasTraining);
      return out;
    });
  }
}
