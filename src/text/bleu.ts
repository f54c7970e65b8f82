/**
 * Corpus BLEU identical to sacreBLEU's default (`nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp`)
 * and its `--lowercase` variant, implemented from the definition in the Multi30k README; plus
 * chrF (sacreBLEU's default chrF2: character 6-grams, β = 2, whitespace removed).
 */
import { DataError } from '../errors.js';

/** The mteval-v13a tokenizer as sacreBLEU applies it. */
export function tokenize13a(line: string): string[] {
  let s = line.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  if (s.includes('&')) s = s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  s = ` ${s} `;
  s = s.replace(/([\{-\~\[-\` -\&\(-\+\:-\@\/])/g, ' $1 ');
  s = s.replace(/([^0-9])([\.,])/g, '$1 $2 ');
  s = s.replace(/([\.,])([^0-9])/g, ' $1 $2');
  s = s.replace(/([0-9])(-)/g, '$1 $2 ');
  return s.split(/\s+/).filter((t) => t.length > 0);
}

/** Options of `corpusBleu`: lowercasing (default off) and tokenisation (default sacreBLEU's 13a). */
export interface BleuOptions {
  lowercase?: boolean;
  /** '13a' (default) or 'none' (split on whitespace only). */
  tokenize?: '13a' | 'none';
}

/**
 * A corpus BLEU score (0–100, sacreBLEU's definition) with its n-gram matches and totals (n = 1..4), precisions (%), brevity penalty and lengths.
 */
export interface BleuResult {
  score: number;
  correct: number[];
  total: number[];
  precisions: number[];
  bp: number;
  hypLen: number;
  refLen: number;
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0001');
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

/**
 * Corpus BLEU-4 of `hyps` against one or more reference streams (each the same length as
 * `hyps`). Counts accumulate over the whole corpus; exp smoothing for zero matches.
 */
export function corpusBleu(hyps: readonly string[], refStreams: readonly (readonly string[])[], opts: BleuOptions = {}): BleuResult {
  for (const [k, r] of refStreams.entries()) {
    if (r.length !== hyps.length) throw new DataError('corpusBleu', `reference stream ${k} has ${r.length} lines but there are ${hyps.length} hypotheses`);
  }
  const prep = (s: string): string[] => {
    let t = s.trimEnd();
    if (opts.lowercase) t = t.toLowerCase();
    return opts.tokenize === 'none' ? t.split(/\s+/).filter(Boolean) : tokenize13a(t);
  };
  const correct = [0, 0, 0, 0];
  const total = [0, 0, 0, 0];
  let hypLen = 0;
  let refLen = 0;
  hyps.forEach((h, i) => {
    const ht = prep(h);
    const refs = refStreams.map((r) => prep(r[i]!));
    hypLen += ht.length;
    // Closest reference length, the shorter one on a tie.
    let best = refs[0]!.length;
    for (const r of refs) {
      const d = Math.abs(r.length - ht.length);
      const bd = Math.abs(best - ht.length);
      if (d < bd || (d === bd && r.length < best)) best = r.length;
    }
    refLen += best;
    for (let n = 1; n <= 4; n++) {
      const hc = ngramCounts(ht, n);
      const maxRef = new Map<string, number>();
      for (const r of refs) for (const [g, c] of ngramCounts(r, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      for (const [g, c] of hc) correct[n - 1]! += Math.min(c, maxRef.get(g) ?? 0);
      total[n - 1]! += Math.max(0, ht.length - n + 1);
    }
  });
  const precisions = [0, 0, 0, 0];
  let logSum = 0;
  let k = 1;
  for (let n = 0; n < 4; n++) {
    if (total[n] === 0) {
      logSum += -9999999999;
      for (let m = n; m < 4; m++) precisions[m] = 0;
      break;
    }
    if (correct[n] === 0) {
      k *= 2;
      precisions[n] = 1 / (k * total[n]!);
    } else precisions[n] = correct[n]! / total[n]!;
    logSum += Math.log(precisions[n]!);
  }
  const bp = hypLen >= refLen ? 1 : hypLen === 0 ? 0 : Math.exp(1 - refLen / hypLen);
  const score = bp === 0 || logSum < -1e9 ? 0 : 100 * bp * Math.exp(logSum / 4);
  return { score, correct, total, precisions: precisions.map((p) => 100 * p), bp, hypLen, refLen };
}

function charNgrams(s: string, n: number): Map<string, number> {
  const chars = Array.from(s);
  const m = new Map<string, number>();
  for (let i = 0; i + n <= chars.length; i++) {
    const g = chars.slice(i, i + n).join('');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** Corpus chrF (β = 2, character n-grams up to 6, whitespace ignored), 0–100. */
export function corpusChrf(hyps: readonly string[], refs: readonly string[], order = 6, beta = 2): number {
  if (refs.length !== hyps.length) throw new DataError('corpusChrf', `${refs.length} references for ${hyps.length} hypotheses`);
  const stats = new Array<number>(order * 3).fill(0);
  hyps.forEach((h, i) => {
    const hs = h.replace(/\s+/g, '');
    const rs = refs[i]!.replace(/\s+/g, '');
    for (let n = 1; n <= order; n++) {
      const hc = charNgrams(hs, n);
      const rc = charNgrams(rs, n);
      let common = 0;
      for (const [g, c] of hc) common += Math.min(c, rc.get(g) ?? 0);
      stats[3 * (n - 1)] += [...hc.values()].reduce((a, b) => a + b, 0);
      stats[3 * (n - 1) + 1] += [...rc.values()].reduce((a, b) => a + b, 0);
      stats[3 * (n - 1) + 2] += common;
    }
  });
  let p = 0;
  let r = 0;
  let eff = 0;
  for (let n = 0; n < order; n++) {
    const [hc, rc, mc] = [stats[3 * n]!, stats[3 * n + 1]!, stats[3 * n + 2]!];
    if (hc > 0 && rc > 0) {
      p += mc / hc;
      r += mc / rc;
      eff++;
    }
  }
  if (eff === 0) return 0;
  p /= eff;
  r /= eff;
  if (p + r === 0) return 0;
  const b2 = beta * beta;
  return (100 * (1 + b2) * p * r) / (b2 * p + r);
}
