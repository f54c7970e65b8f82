/**
 * Decoding a trained encoder-decoder Transformer: greedy and beam search (length-normalised
 * scores), both on the decoder's key/value cache, and `translate` from text to text through any
 * tokenizer with `encode` / `decode`.
 */
import { ShapeError } from '../errors.js';
import { Tensor, noGrad } from '../autograd/tensor.js';
import { logSoftmax } from '../autograd/ops/nn.js';
import { concat, slice } from '../autograd/ops/shape.js';
import type { KVCache } from '../nn/attention.js';
import { paddingMask, type DecoderLayerCache, type Transformer } from '../nn/transformer.js';
import { BOS, EOS, PAD } from '../text/bpe.js';

/** Special token ids; the defaults are those of nmgrad's BPE tokenizer. */
export interface SpecialIds {
  bos?: number;
  eos?: number;
  pad?: number;
}

export interface BeamOptions extends SpecialIds {
  /** Beam width (default 4). */
  beam?: number;
  /** Length penalty exponent α: a finished hypothesis scores logP / len^α (default 1). */
  lengthPenalty?: number;
  /** Most generated tokens (default the model's maxLen). */
  maxLen?: number;
}

export interface DecodeOptions extends SpecialIds {
  /** 1 (default) = greedy; more = beam search per sentence. */
  beam?: number;
  lengthPenalty?: number;
  /** Cap on generated tokens; each sentence gets at most min(cap, 2·source + 10). */
  maxLen?: number;
  /** Sentences per greedy batch (default 64). */
  batchSize?: number;
  /** Told about each source longer than the model's maxLen (`index` in `sentences`), which is cut to it. */
  onTruncate?: (index: number, tokens: number, kept: number) => void;
}

/** Anything that turns text into ids and back (nmgrad's `BpeTokenizer` from `nmgrad/text`). */
export interface TextCodec {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

function pad(rows: number[][], padId: number): { ids: Int32Array; shape: [number, number] } {
  const len = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * len).fill(padId);
  rows.forEach((r, i) => ids.set(r, i * len));
  return { ids, shape: [rows.length, len] };
}

/** Greedy decoding of a batch of source id rows (padded here); ids without bos, up to (excluding) eos. */
export function greedyDecode(model: Transformer, sources: number[][], opts: SpecialIds & { maxLen?: number } = {}): number[][] {
  const p = opts.pad ?? PAD;
  const { ids, shape } = pad(sources, p);
  return model.greedy(ids, shape, { bos: opts.bos ?? BOS, eos: opts.eos ?? EOS, pad: p, maxLen: opts.maxLen ?? model.config.maxLen });
}

/** Keeps the cache rows `rows` (in that order, repeats allowed): the beams that survive a step. */
export function reorderCache(cache: DecoderLayerCache[], rows: number[]): DecoderLayerCache[] {
  const pick = (c: KVCache): KVCache => {
    if (!c.k || !c.v) return { ...c };
    const take = (t: Tensor): Tensor => concat(rows.map((r) => slice(t, 0, r, r + 1)), 0);
    return { k: take(c.k), v: take(c.v), fixed: c.fixed };
  };
  return cache.map((l) => ({ self: pick(l.self), cross: pick(l.cross) }));
}

interface Hyp {
  tokens: number[];
  score: number;
}

/**
 * Beam search for one source sentence on the KV cache. Each step expands every live beam by its
 * `beam` best tokens and keeps the `beam` best continuations; a hypothesis ending in eos is set
 * aside with score logP / len^α (len counts the eos). Stops when `beam` hypotheses have finished
 * or after maxLen steps; returns the best one's ids (without bos / eos).
 */
export function beamSearch(model: Transformer, src: readonly number[], opts: BeamOptions = {}): number[] {
  const beam = opts.beam ?? 4;
  const alpha = opts.lengthPenalty ?? 1;
  const maxLen = opts.maxLen ?? model.config.maxLen;
  const [bos, eos, padId] = [opts.bos ?? BOS, opts.eos ?? EOS, opts.pad ?? PAD];
  if (!(Number.isInteger(beam) && beam >= 1)) throw new ShapeError('beamSearch', `beam must be a positive integer, got ${beam}`);
  if (!Number.isFinite(alpha)) throw new ShapeError('beamSearch', `lengthPenalty must be a finite number, got ${alpha}`);
  return noGrad(() => {
    const wasTraining = model.training;
    model.eval();
    const srcIds = Int32Array.from(src.length ? src : [padId]);
    const shape: [number, number] = [1, srcIds.length];
    const srcPad = paddingMask(srcIds, shape, padId);
    const memory = model.encode(srcIds, shape, srcPad);
    let hyps: Hyp[] = [{ tokens: [], score: 0 }];
    let cache = model.newCache();
    const done: Hyp[] = [];
    let mem = memory;
    let memPad = srcPad;
    for (let step = 0; step < maxLen && hyps.length > 0; step++) {
      const last = hyps.map((h) => (h.tokens.length ? h.tokens[h.tokens.length - 1]! : bos));
      if (mem.shape[0] !== hyps.length) {
        mem = concat(hyps.map(() => memory), 0);
        memPad = concat(hyps.map(() => srcPad), 0);
      }
      const logits = model.decode(last, [hyps.length, 1], mem, memPad, cache, step);
      const logp = logSoftmax(logits, -1).data;
      const V = logits.shape[2]!;
      const cands: { from: number; tok: number; score: number }[] = [];
      hyps.forEach((h, i) => {
        const row = logp.subarray(i * V, (i + 1) * V);
        const top = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]!).slice(0, beam);
        for (const t of top) cands.push({ from: i, tok: t, score: h.score + row[t]! });
      });
      cands.sort((a, b) => b.score - a.score);
      const next: Hyp[] = [];
      const rows: number[] = [];
      for (const c of cands) {
        const tokens = [...hyps[c.from]!.tokens, c.tok];
        if (c.tok === eos) done.push({ tokens: tokens.slice(0, -1), score: c.score / Math.pow(tokens.length, alpha) });
        else {
          next.push({ tokens, score: c.score });
          rows.push(c.from);
        }
        if (next.length === beam) break;
      }
      if (done.length >= beam) break;
      cache = reorderCache(cache, rows);
      hyps = next;
    }
    for (const h of hyps) done.push({ tokens: h.tokens, score: h.score / Math.pow(Math.max(1, h.tokens.length), alpha) });
    done.sort((a, b) => b.score - a.score);
    model.train(wasTraining);
    return done[0]?.tokens ?? [];
  });
}

/**
 * Translates sentences with `model` and `tokenizer`: greedy in batches, or beam search per
 * sentence when `beam` > 1. Sources longer than the model's maxLen are truncated (`onTruncate` hears of each).
 */
export function translate(model: Transformer, tokenizer: TextCodec, sentences: readonly string[], opts: DecodeOptions = {}): string[] {
  const beam = opts.beam ?? 1;
  if (!(Number.isInteger(beam) && beam >= 1)) throw new ShapeError('translate', `beam must be a positive integer, got ${beam}`);
  const out: string[] = new Array(sentences.length);
  const batchSize = opts.batchSize ?? 64;
  const maxCap = Math.min(opts.maxLen ?? 200, model.config.maxLen);
  const limit = model.config.maxLen;
  const encoded = sentences.map((s, i) => {
    const ids = tokenizer.encode(s);
    if (ids.length <= limit) return ids;
    opts.onTruncate?.(i, ids.length, limit);
    return ids.slice(0, limit);
  });
  for (let b = 0; b < sentences.length; b += batchSize) {
    const rows = encoded.slice(b, b + batchSize);
    const maxLen = Math.min(maxCap, Math.max(...rows.map((r) => r.length)) * 2 + 10);
    const ids = beam > 1
      ? rows.map((r) => beamSearch(model, r, { ...opts, beam, maxLen }))
      : greedyDecode(model, rows, { ...opts, maxLen });
    ids.forEach((r, i) => (out[b + i] = tokenizer.decode(r)));
  }
  return out;
}
