/**
 * Joint byte-pair encoding with lossless pre-tokenisation.
 *
 * Text is split into pieces that keep their leading space (`" dog"`, `"."`, `"  "`), so
 * concatenating the pieces gives the input back exactly; BPE then merges characters inside
 * each piece. A character outside the learned alphabet falls back to its UTF-8 bytes
 * (`<0xNN>` tokens; lone surrogates use the same 3-byte form), so `decode(encode(s)) === s` for
 * every JS string, spacing, punctuation and casing included.
 */
import { DataError } from '../errors.js';

/** The special tokens, ids 0–3 of every vocabulary: padding, begin and end of sentence, unknown. */
export const SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>'] as const;
/** Id of the padding token. */
export const PAD = 0;
/** Id of the begin-of-sentence token. */
export const BOS = 1;
/** Id of the end-of-sentence token. */
export const EOS = 2;
/** Id of the unknown token (never produced by `encode`: unseen characters fall back to bytes). */
export const UNK = 3;
const BYTE_BASE = SPECIALS.length;
const FIRST_FREE = BYTE_BASE + 256;

const PIECE = / ?[\p{L}\p{M}]+| ?\p{N}+| ?[^\s\p{L}\p{M}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Splits text into pieces whose concatenation is the text. */
export function pretokenize(text: string): string[] {
  return text.match(PIECE) ?? [];
}

/** Code point → UTF-8 bytes (surrogate code points encoded like any other, WTF-8). */
function cpBytes(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
}

/**
 * UTF-8 bytes → text, WHATWG style: each maximal invalid subsequence becomes one U+FFFD, so an
 * undertrained model's arbitrary byte tokens always decode. Surrogate code points (ED A0..BF xx)
 * are accepted as lone surrogates, because `encode` writes lone surrogates that way (WTF-8).
 */
function decodeBytes(bytes: number[]): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i++;
      continue;
    }
    const len = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 0) {
      out += '\ufffd';
      i++;
      continue;
    }
    // The allowed range of the second byte rules out overlong forms and code points > U+10FFFF.
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xf4 ? 0x8f : 0xbf;
    let cp = b & (0xff >> (len + 1));
    let k = 1;
    for (; k < len; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) break;
      cp = (cp << 6) | (c & 63);
    }
    out += k === len ? String.fromCodePoint(cp) : '\ufffd';
    i += k;
  }
  return out;
}

/** Code points of a string, lone surrogates included as their own values. */
function codePoints(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out.push(s.slice(i, i + 2));
        i++;
        continue;
      }
    }
    out.push(s[i]!);
  }
  return out;
}

/** A saved tokenizer (`toJSON` / `BpeTokenizer.fromJSON`): its alphabet and merges in order. */
export interface BpeJSON {
  format: 'nmgrad-bpe-v1';
  alphabet: string[];
  merges: [string, string][];
}

/**
 * A joint byte-pair-encoding tokenizer: `BpeTokenizer.train(texts, merges)` learns it, `encode` /
 * `decode` map text to ids and back losslessly (`decode(encode(s)) === s`), ids 0–3 are `SPECIALS`.
 * `decode` and `fromJSON` throw DataError for an id outside the vocabulary or a foreign format.
 */
export class BpeTokenizer {
  readonly vocab: string[];
  private readonly ids = new Map<string, number>();
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();

  constructor(readonly alphabet: string[], readonly merges: [string, string][]) {
    this.vocab = [...SPECIALS, ...Array.from({ length: 256 }, (_v, b) => `<0x${b.toString(16).padStart(2, '0').toUpperCase()}>`)];
    for (const ch of alphabet) this.vocab.push(ch);
    merges.forEach(([a, b], r) => {
      this.ranks.set(`${a}\u0000${b}`, r);
      this.vocab.push(a + b);
    });
    this.vocab.forEach((t, i) => {
      if (!this.ids.has(t) || i >= FIRST_FREE) this.ids.set(t, i);
    });
  }

  get size(): number {
    return this.vocab.length;
  }

  /**
   * Learns `numMerges` merges from the texts (joint over every language passed). Ties in pair
   * frequency go to the lexicographically smaller pair, so training is deterministic.
   */
  static train(texts: Iterable<string>, numMerges: number, opts: { minFrequency?: number } = {}): BpeTokenizer {
    const wordFreq = new Map<string, number>();
    for (const t of texts) for (const p of pretokenize(t)) wordFreq.set(p, (wordFreq.get(p) ?? 0) + 1);
    const alphabetSet = new Set<string>();
    const words: string[][] = [];
    const freqs: number[] = [];
    for (const [w, f] of wordFreq) {
      const cps = codePoints(w);
      cps.forEach((c) => alphabetSet.add(c));
      words.push(cps);
      freqs.push(f);
    }
    const alphabet = [...alphabetSet].sort();
    const pairCount = new Map<string, number>();
    const where = new Map<string, Set<number>>();
    const key = (a: string, b: string): string => `${a}\u0000${b}`;
    const addPairs = (wi: number, sign: number): void => {
      const w = words[wi]!;
      for (let i = 0; i + 1 < w.length; i++) {
        const k = key(w[i]!, w[i + 1]!);
        pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freqs[wi]!);
        if (sign > 0) {
          let s = where.get(k);
          if (!s) where.set(k, (s = new Set()));
          s.add(wi);
        }
      }
    };
    words.forEach((_w, i) => addPairs(i, 1));
    const heap = new PairHeap();
    for (const [k, c] of pairCount) heap.push(c, k);
    const merges: [string, string][] = [];
    const minFreq = opts.minFrequency ?? 2;
    while (merges.length < numMerges) {
      const top = heap.pop();
      if (!top) break;
      const [count, k] = top;
      const current = pairCount.get(k) ?? 0;
      if (current !== count) {
        if (current > 0) heap.push(current, k);
        continue;
      }
      if (count < minFreq) break;
      const [a, b] = k.split('\u0000') as [string, string];
      merges.push([a, b]);
      const merged = a + b;
      const touched = [...(where.get(k) ?? [])];
      where.delete(k);
      const changed = new Set<string>();
      for (const wi of touched) {
        const w = words[wi]!;
        addPairsTracked(wi, -1);
        const out: string[] = [];
        for (let i = 0; i < w.length; i++) {
          if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
            out.push(merged);
            i++;
          } else out.push(w[i]!);
        }
        words[wi] = out;
        addPairsTracked(wi, 1);
      }
      pairCount.delete(k);
      for (const c of changed) {
        const v = pairCount.get(c) ?? 0;
        if (v > 0) heap.push(v, c);
      }
      function addPairsTracked(wi: number, sign: number): void {
        const w = words[wi]!;
        for (let i = 0; i + 1 < w.length; i++) changed.add(key(w[i]!, w[i + 1]!));
        addPairs(wi, sign);
      }
    }
    return new BpeTokenizer(alphabet, merges);
  }

  private encodePiece(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    let syms = codePoints(piece);
    while (syms.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = this.ranks.get(`${syms[i]}\u0000${syms[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = this.merges[bestRank]!;
      const next: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(syms[i]!);
      }
      syms = next;
    }
    const out: number[] = [];
    for (const s of syms) {
      const id = this.ids.get(s);
      if (id !== undefined && id >= FIRST_FREE) out.push(id);
      else for (const cp of codePoints(s)) for (const byte of cpBytes(cp.codePointAt(0)!)) out.push(BYTE_BASE + byte);
    }
    if (this.cache.size < 200_000) this.cache.set(piece, out);
    return out;
  }

  /** Token ids of `text` (no bos/eos). */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const p of pretokenize(text)) for (const id of this.encodePiece(p)) out.push(id);
    return out;
  }

  /** Text of token ids; special tokens are dropped, byte tokens reassembled. */
  decode(ids: readonly number[]): string {
    let out = '';
    let bytes: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab.length) throw new DataError('BpeTokenizer.decode', `token id ${id} is outside the vocabulary of ${this.vocab.length}`);
      if (id >= BYTE_BASE && id < FIRST_FREE) {
        bytes.push(id - BYTE_BASE);
        continue;
      }
      if (bytes.length) {
        out += decodeBytes(bytes);
        bytes = [];
      }
      if (id >= FIRST_FREE) out += this.vocab[id];
    }
    if (bytes.length) out += decodeBytes(bytes);
    return out;
  }

  toJSON(): BpeJSON {
    return { format: 'nmgrad-bpe-v1', alphabet: this.alphabet, merges: this.merges };
  }

  static fromJSON(j: BpeJSON, where = 'tokenizer'): BpeTokenizer {
    if (!j || j.format !== 'nmgrad-bpe-v1' || !Array.isArray(j.alphabet) || !Array.isArray(j.merges)) {
      throw new DataError(where, 'not an nmgrad BPE tokenizer (format nmgrad-bpe-v1)');
    }
    const badSymbol = j.alphabet.findIndex((a) => typeof a !== 'string' || a === '');
    if (badSymbol >= 0) throw new DataError(where, `alphabet[${badSymbol}] must be a non-empty string, got ${JSON.stringify(j.alphabet[badSymbol])}`);
    // A merge is a pair of non-empty strings: a number would become a token like "12", and a
    // bare string "ab" would destructure into the pair ("a", "b") without a word.
    const badMerge = j.merges.findIndex((m) => !Array.isArray(m) || m.length !== 2 || m.some((t) => typeof t !== 'string' || t === ''));
    if (badMerge >= 0) throw new DataError(where, `merges[${badMerge}] must be a pair of non-empty strings, got ${JSON.stringify(j.merges[badMerge])}`);
    return new BpeTokenizer(j.alphabet, j.merges);
  }

  /** `fromJSON` of JSON text (a tokenizer file, or the metadata of an exported model); text that is not JSON is a DataError. */
  static parse(text: string, where = 'tokenizer'): BpeTokenizer {
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new DataError(where, `not valid JSON (${(e as Error).message})`);
    }
    return BpeTokenizer.fromJSON(j as BpeJSON, where);
  }
}

/** Max-heap of (count, pair), ties to the smaller pair string. */
class PairHeap {
  private readonly items: [number, string][] = [];
  private better(a: [number, string], b: [number, string]): boolean {
    return a[0] > b[0] || (a[0] === b[0] && a[1] < b[1]);
  }
  push(count: number, k: string): void {
    const h = this.items;
    h.push([count, k]);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): [number, string] | undefined {
    const h = this.items;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.better(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.better(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
