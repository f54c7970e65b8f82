// nmgrad/text: the BPE tokenizer and sacreBLEU-compatible BLEU and chrF (re-exports only).
export { BpeTokenizer, SPECIALS, PAD, BOS, EOS, UNK, pretokenize, type BpeJSON } from './bpe.js';
export { corpusBleu, corpusChrf, tokenize13a, type BleuOptions, type BleuResult } from './bleu.js';
