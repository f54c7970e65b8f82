/** Decoding (greedy and beam search with the KV cache) and scoring of a trained model. */
import { Tensor, Transformer, logSoftmax, noGrad, paddingMask, type DecoderLayerCache, type KVCache } from '../../src/index.js';
import { concat, slice } from '../../src/autograd/ops/shape.js';
import { corpusBleu, corpusChrf } from '../../src/text/bleu.js';
import { BOS, EOS, PAD, type BpeTokenizer } from '../../src/text/bpe.js';

export interface DecodeOptions {
  beam?: number;
  /** Length penalty exponent α for beam scores: score / len^α. */
  lengthPenalty?: number;
  maxLen?: number;
  batchSize?: number;
}

function pad(rows: number[][]): { ids: Int32Array; shape: [number, number] } {
  const len = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * len).fill(PAD);
  rows.forEach((r, i) => ids.set(r, i * len));
  return { ids, shape: [rows.length, len] };
}

/** Translates sentences; returns detokenised, cased strings. */
export function translateAll(model: Transformer, tok: BpeTokenizer, sentences: string[], opts: DecodeOptions = {}): string[] {
  const out: string[] = new Array(sentences.length);
  const batchSize = opts.batchSize ?? 64;
  const maxCap = Math.min(opts.maxLen ?? 200, model.config.maxLen);
  const encoded = sentences.map((s) => tok.encode(s).slice(0, model.config.maxLen));
  for (let b = 0; b < sentences.length; b += batchSize) {
    const rows = encoded.slice(b, b + batchSize);
    const maxLen = Math.min(maxCap, Math.max(...rows.map((r) => r.length)) * 2 + 10);
    let ids: number[][];
    if ((opts.beam ?? 1) > 1) ids = rows.map((r) => beamSearch(model, r, opts.beam!, opts.lengthPenalty ?? 1, maxLen));
    else {
      const { ids: src, shape } = pad(rows);
      ids = model.greedy(src, shape, { bos: BOS, eos: EOS, pad: PAD, maxLen });
    }
    ids.forEach((r, i) => (out[b + i] = tok.decode(r)));
  }
  return out;
}

function selectCache(cache: DecoderLayerCache[], rows: number[]): DecoderLayerCache[] {
  const pick = (c: KVCache): KVCache => {
    if (!c.k || !c.v) return { ...c };
    const take = (t: Tensor): Tensor => concat(rows.map((r) => slice(t, 0, r, r + 1)), 0);
    return { k: take(c.k), v: take(c.v), fixed: c.fixed };
  };
  return cache.map((l) => ({ self: pick(l.self), cross: pick(l.cross) }));
}

/** Beam search for one sentence, KV-cached; scores are length-normalised log-probabilities. */
export function beamSearch(model: Transformer, src: number[], beam: number, alpha: number, maxLen: number): number[] {
  return noGrad(() => {
    model.eval();
    const srcIds = Int32Array.from(src.length ? src : [PAD]);
    const shape: [number, number] = [1, srcIds.length];
    const srcPad = paddingMask(srcIds, shape, PAD);
    const memory = model.encode(srcIds, shape, srcPad);
    let hyps: { tokens: number[]; score: number }[] = [{ tokens: [], score: 0 }];
    let cache = model.newCache();
    const done: { tokens: number[]; score: number }[] = [];
    let mem = memory;
    let memPad = srcPad;
    for (let step = 0; step < maxLen && hyps.length > 0; step++) {
      const last = hyps.map((h) => (h.tokens.length ? h.tokens[h.tokens.length - 1]! : BOS));
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
      const next: { tokens: number[]; score: number }[] = [];
      const rows: number[] = [];
      for (const c of cands) {
        const tokens = [...hyps[c.from]!.tokens, c.tok];
        if (c.tok === EOS) done.push({ tokens: tokens.slice(0, -1), score: c.score / Math.pow(tokens.length, alpha) });
        else {
          next.push({ tokens, score: c.score });
          rows.push(c.from);
        }
        if (next.length === beam) break;
      }
      if (done.length >= beam) break;
      cache = selectCache(cache, rows);
      hyps = next;
    }
    for (const h of hyps) done.push({ tokens: h.tokens, score: h.score / Math.pow(Math.max(1, h.tokens.length), alpha) });
    done.sort((a, b) => b.score - a.score);
    return done[0]?.tokens ?? [];
  });
}

export interface Scores {
  bleu: number;
  bleuLowercase: number;
  chrf: number;
}

export function score(hyps: string[], refs: string[]): Scores {
  return { bleu: corpusBleu(hyps, [refs]).score, bleuLowercase: corpusBleu(hyps, [refs], { lowercase: true }).score, chrf: corpusChrf(hyps, refs) };
}
