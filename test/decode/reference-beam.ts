/**
 * The beam search the translation example shipped before decoding moved into the library,
 * verbatim (special ids inlined): the oracle that pins the library's beam search to the same
 * outputs.
 */
import { Tensor, Transformer, concat, logSoftmax, noGrad, paddingMask, slice, type DecoderLayerCache, type KVCache } from '../../src/index.js';

const PAD = 0;
const BOS = 1;
const EOS = 2;

function selectCache(cache: DecoderLayerCache[], rows: number[]): DecoderLayerCache[] {
  const pick = (c: KVCache): KVCache => {
    if (!c.k || !c.v) return { ...c };
    const take = (t: Tensor): Tensor => concat(rows.map((r) => slice(t, 0, r, r + 1)), 0);
    return { k: take(c.k), v: take(c.v), fixed: c.fixed };
  };
  return cache.map((l) => ({ self: pick(l.self), cross: pick(l.cross) }));
}

export function referenceBeamSearch(model: Transformer, src: number[], beam: number, alpha: number, maxLen: number): number[] {
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
