/**
 * Decoding a trained encoder-decoder Transformer: greedy and beam search (length-normalised
 * scores), both on the decoder's key/value cache, and `translate` from text to text through any
 * tokenizer with `encode` / `decode`.
 */
import { ShapeError } from '../errors.js';
import { Tensor, noGrad } from '../autograd/tensor.js';
import { embedding, logSoftmax } from '../autograd/ops/nn.js';
import { concat, reshape, slice } from '../autograd/ops/shape.js';
import type { KVCache } from '../nn/attention.js';
import { paddingMask, type DecoderLayerCache, type Transformer } from '../nn/transformer.js';
import { BOS, EOS, PAD } from '../text/bpe.js';

/** Special token ids; the defaults are those of nmgrad's BPE tokenizer. */
export interface SpecialIds {
  bos?: number;
  eos?: number;
  pad?: number;
}

/** Options of `beamSearch` (one sentence). */
export interface BeamOptions extends SpecialIds {
  /** Beam width (default 4). */
  beam?: number;
  /** Length penalty exponent α: a finished hypothesis scores logP / len^α (default 1). */
  lengthPenalty?: number;
  /** Most generated tokens (default the model's maxLen). */
  maxLen?: number;
}

/** Options of `translate`: greedy or beam decoding of a list of sentences, in batches. */
export interface DecodeOptions extends SpecialIds {
  /** 1 (default) = greedy; more = beam search. */
  beam?: number;
  lengthPenalty?: number;
  /** Cap on generated tokens; each sentence gets at most min(cap, 2·source + 10). */
  maxLen?: number;
  /** Sentences per batch, greedy or beam (default 64). */
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
 * The `k` best indices of `row`, best first; equal values keep index order (exactly the first
 * `k` of a stable sort by descending value). O(length · k) instead of sorting the vocabulary.
 */
function topK(row: Float32Array, k: number): number[] {
  const idx: number[] = [];
  const val: number[] = [];
  for (let t = 0; t < row.length; t++) {
    const v = row[t]!;
    if (idx.length === k && !(v > val[k - 1]!)) continue;
    // After every kept value that is >= v: an earlier index wins a tie.
    let at = idx.length;
    while (at > 0 && !(val[at - 1]! >= v)) at--;
    idx.splice(at, 0, t);
    val.splice(at, 0, v);
    if (idx.length > k) {
      idx.pop();
      val.pop();
    }
  }
  return idx;
}

/** Rows `rows` of a tensor (first axis), in that order: one gather over rows flattened to [n, rest]. */
function takeRows(t: Tensor, rows: readonly number[]): Tensor {
  const [n, ...rest] = t.shape;
  const width = rest.reduce((a, b) => a * b, 1);
  return reshape(embedding(reshape(t, [n!, width]), rows, [rows.length]), [rows.length, ...rest]);
}

/**
 * `reorderCache` as one gather per cached tensor. With `crossAsIs` the cross-attention entries
 * are kept as they are: the caller knows every new row reads the same source as the old row in
 * its place.
 */
function gatherCache(cache: DecoderLayerCache[], rows: readonly number[], crossAsIs: boolean): DecoderLayerCache[] {
  const pick = (c: KVCache): KVCache => (c.k && c.v ? { k: takeRows(c.k, rows), v: takeRows(c.v, rows), fixed: c.fixed } : { ...c });
  return cache.map((l) => ({ self: pick(l.self), cross: crossAsIs ? l.cross : pick(l.cross) }));
}

function checkBeamOptions(op: string, beam: number, alpha: number): void {
  if (!(Number.isInteger(beam) && beam >= 1)) throw new ShapeError(op, `beam must be a positive integer, got ${beam}`);
  if (!Number.isFinite(alpha)) throw new ShapeError(op, `lengthPenalty must be a finite number, got ${alpha}`);
}

/** One sentence's search state. */
interface Search {
  hyps: Hyp[];
  done: Hyp[];
  maxLen: number;
  live: boolean;
}

/**
 * Beam search over sentences of one source length together: every decoder call runs all live
 * beams of all sentences ([Σ beams, 1] rows), and a sentence's rows leave the batch as soon as
 * its search ends. Per sentence the steps are those of `beamSearch` (same candidates, same
 * tie order, same stopping rule), and equal source lengths mean no padding, so each row sees
 * exactly the products of the one-sentence search.
 */
function beamChunk(model: Transformer, sources: readonly (readonly number[])[], maxLens: readonly number[], beam: number, alpha: number, ids: Required<SpecialIds>): number[][] {
  const n = sources.length;
  const len = sources[0]!.length;
  const srcIds = new Int32Array(n * len);
  sources.forEach((s, i) => srcIds.set(s, i * len));
  const shape: [number, number] = [n, len];
  const srcPad = paddingMask(srcIds, shape, ids.pad);
  const memory = model.encode(srcIds, shape, srcPad);
  const searches: Search[] = maxLens.map((m) => ({ hyps: [{ tokens: [], score: 0 }], done: [], maxLen: m, live: m > 0 }));
  // Row r of the decoder batch is hypothesis rowHyp[r] of sentence rowSentence[r]; a sentence's rows are contiguous.
  let rowSentence: number[] = [];
  for (let i = 0; i < n; i++) if (searches[i]!.live) rowSentence.push(i);
  let cache = model.newCache();
  const all = rowSentence.length === n;
  const mem = all ? memory : takeRows(memory, rowSentence);
  let pad = all ? srcPad : takeRows(srcPad, rowSentence);
  for (let step = 0; rowSentence.length > 0; step++) {
    const rows = rowSentence.length;
    const last = new Array<number>(rows);
    for (let r = 0, i = 0; r < rows; i++) {
      const s = searches[i]!;
      if (!s.live) continue;
      for (const h of s.hyps) last[r++] = h.tokens.length ? h.tokens[h.tokens.length - 1]! : ids.bos;
    }
    // The cross-attention keys and values are cached at step 0 (one row per sentence) and gathered since, so
    // `mem` is only read then.
    const logits = model.decode(last, [rows, 1], mem, pad, cache, step);
    const logp = logSoftmax(logits, -1).data;
    const V = logits.shape[2]!;
    const keep: number[] = [];
    const keepSentence: number[] = [];
    let r0 = 0;
    for (let i = 0; i < n; i++) {
      const s = searches[i]!;
      if (!s.live) continue;
      const cands: { from: number; tok: number; score: number }[] = [];
      s.hyps.forEach((h, j) => {
        const row = logp.subarray((r0 + j) * V, (r0 + j + 1) * V);
        for (const t of topK(row, beam)) cands.push({ from: j, tok: t, score: h.score + row[t]! });
      });
      cands.sort((a, b) => b.score - a.score);
      const next: Hyp[] = [];
      const from: number[] = [];
      for (const c of cands) {
        const tokens = [...s.hyps[c.from]!.tokens, c.tok];
        if (c.tok === ids.eos) s.done.push({ tokens: tokens.slice(0, -1), score: c.score / Math.pow(tokens.length, alpha) });
        else {
          next.push({ tokens, score: c.score });
          from.push(r0 + c.from);
        }
        if (next.length === beam) break;
      }
      r0 += s.hyps.length;
      // Enough finished hypotheses: the search ends on the beams it had before this step.
      if (s.done.length >= beam) {
        s.live = false;
        continue;
      }
      s.hyps = next;
      if (step + 1 >= s.maxLen || next.length === 0) {
        s.live = false;
        continue;
      }
      for (const f of from) {
        keep.push(f);
        keepSentence.push(i);
      }
    }
    if (keep.length === 0) break;
    // A row's cross-attention keys/values and source mask depend on its sentence only: while
    // every row keeps the sentence of the row in its place (no search ended, none lost beams),
    // they are already right and only the self-attention cache is gathered.
    const sameSentences = keepSentence.length === rowSentence.length && keepSentence.every((s, r) => s === rowSentence[r]);
    cache = gatherCache(cache, keep, sameSentences);
    if (!sameSentences) pad = takeRows(pad, keep);
    rowSentence = keepSentence;
  }
  return searches.map((s) => {
    for (const h of s.hyps) s.done.push({ tokens: h.tokens, score: h.score / Math.pow(Math.max(1, h.tokens.length), alpha) });
    s.done.sort((a, b) => b.score - a.score);
    return s.done[0]?.tokens ?? [];
  });
}

/** Options of `beamSearchBatch` (many sentences, one decoder batch per chunk). */
export interface BatchBeamOptions extends Omit<BeamOptions, 'maxLen'> {
  /** Most generated tokens: one cap for all, or one per sentence (default the model's maxLen). */
  maxLen?: number | readonly number[];
  /** Sentences per decoder batch (default 64); the batch holds up to batchSize × beam rows. */
  batchSize?: number;
}

/**
 * Beam search for many sentences at once, with the outputs of `beamSearch` on each. Sentences
 * are grouped by source length (no padding, so no row's arithmetic changes) into batches of
 * `batchSize`; within a batch each decoder call advances all live beams of all its sentences.
 */
export function beamSearchBatch(model: Transformer, sources: readonly (readonly number[])[], opts: BatchBeamOptions = {}): number[][] {
  const beam = opts.beam ?? 4;
  const alpha = opts.lengthPenalty ?? 1;
  const batchSize = opts.batchSize ?? 64;
  checkBeamOptions('beamSearch', beam, alpha);
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new ShapeError('beamSearch', `batchSize must be a positive integer, got ${batchSize}`);
  const caps = opts.maxLen;
  if (Array.isArray(caps) && caps.length !== sources.length) throw new ShapeError('beamSearch', `maxLen has ${caps.length} entries for ${sources.length} sentences`);
  const maxLenOf = (i: number): number => (typeof caps === 'number' ? caps : Array.isArray(caps) ? (caps as readonly number[])[i]! : model.config.maxLen);
  const ids = { bos: opts.bos ?? BOS, eos: opts.eos ?? EOS, pad: opts.pad ?? PAD };
  const rows = sources.map((s) => (s.length ? s : [ids.pad]));
  const groups = new Map<number, number[]>();
  rows.forEach((r, i) => {
    const g = groups.get(r.length);
    if (g) g.push(i);
    else groups.set(r.length, [i]);
  });
  const out: number[][] = new Array(sources.length);
  noGrad(() => {
    const wasTraining = model.training;
    model.eval();
    try {
      for (const members of groups.values()) {
        for (let b = 0; b < members.length; b += batchSize) {
          const chunk = members.slice(b, b + batchSize);
          const res = beamChunk(model, chunk.map((i) => rows[i]!), chunk.map(maxLenOf), beam, alpha, ids);
          chunk.forEach((i, j) => (out[i] = res[j]!));
        }
      }
    } finally {
      model.train(wasTraining);
    }
  });
  return out;
}

/**
 * Beam search for one source sentence on the KV cache. Each step expands every live beam by its
 * `beam` best tokens and keeps the `beam` best continuations; a hypothesis ending in eos is set
 * aside with score logP / len^α (len counts the eos). Stops when `beam` hypotheses have finished
 * or after maxLen steps; returns the best one's ids (without bos / eos). `beamSearchBatch` runs
 * the same search for many sentences at once.
 */
export function beamSearch(model: Transformer, src: readonly number[], opts: BeamOptions = {}): number[] {
  return beamSearchBatch(model, [src], { ...opts, batchSize: 1 })[0]!;
}

/**
 * Translates sentences with `model` and `tokenizer`: greedy in batches, or batched beam search
 * (`beamSearchBatch`) when `beam` > 1, each sentence with at most min(cap, 2·source + 10) tokens whatever its batch. Sources longer than the model's maxLen are truncated (`onTruncate` hears of each); an empty one (an empty or blank line) gives an empty string.
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
  // An empty source (an empty or blank line) translates to an empty line; it is not decoded.
  const live = encoded.flatMap((r, i) => (r.length > 0 ? [i] : []));
  for (let i = 0; i < sentences.length; i++) if (encoded[i]!.length === 0) out[i] = '';
  // Each sentence's own cap, whatever else is in its batch: a translation never depends on its neighbours.
  const caps = live.map((i) => Math.min(maxCap, encoded[i]!.length * 2 + 10));
  const rows = live.map((i) => encoded[i]!);
  if (beam > 1) {
    if (rows.length) beamSearchBatch(model, rows, { ...opts, beam, maxLen: caps, batchSize }).forEach((r, j) => (out[live[j]!] = tokenizer.decode(r)));
    return out;
  }
  for (let b = 0; b < rows.length; b += batchSize) {
    // The batch runs to its longest cap; a row's first tokens do not depend on how long it runs,
    // so cutting each at its own cap gives what it would alone.
    const maxLen = Math.max(...caps.slice(b, b + batchSize));
    greedyDecode(model, rows.slice(b, b + batchSize), { ...opts, maxLen }).forEach((r, j) => (out[live[b + j]!] = tokenizer.decode(r.slice(0, caps[b + j]))));
  }
  return out;
}
