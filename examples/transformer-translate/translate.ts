/** Decoding and scoring of a trained model, on nmgrad's decoding API and its BLEU / chrF. */
import { translate, type DecodeOptions, type Transformer } from 'nmgrad';
import { corpusBleu, corpusChrf, type BpeTokenizer } from 'nmgrad/text';

export type { DecodeOptions };

/** Translates sentences; returns detokenised, cased strings (greedy, or beam search with `beam` > 1). */
export function translateAll(model: Transformer, tok: BpeTokenizer, sentences: string[], opts: DecodeOptions = {}): string[] {
  return translate(model, tok, sentences, opts);
}

export interface Scores {
  bleu: number;
  bleuLowercase: number;
  chrf: number;
}

export function score(hyps: string[], refs: string[]): Scores {
  return { bleu: corpusBleu(hyps, [refs]).score, bleuLowercase: corpusBleu(hyps, [refs], { lowercase: true }).score, chrf: corpusChrf(hyps, refs) };
}
