/**
 * Length-bucketed batches under a token budget, with padding and a seeded order: the same
 * seed always gives the same batches in the same order.
 */
import { DataError } from '../errors.js';
import type { Rng } from '../kernels/random.js';
import { BOS, EOS, PAD } from '../text/bpe.js';

/** One training pair as token ids, without BOS / EOS (the batcher adds them). */
export interface Example {
  src: number[];
  tgt: number[];
}

/** A padded batch of examples, flat row-major id arrays with their shapes, ready for `Tensor` inputs. */
export interface Batch {
  size: number;
  /** Source ids [size, srcLen], PAD-padded. */
  src: Int32Array;
  srcShape: [number, number];
  /** Decoder input: BOS + target [size, tgtLen]. */
  tgtIn: Int32Array;
  /** Decoder output: target + EOS [size, tgtLen]. */
  tgtOut: Int32Array;
  tgtShape: [number, number];
  /** Non-padding target tokens. */
  tokens: number;
  /** Indices of the examples in the input list. */
  index: number[];
}

/** Pads a list of examples into one batch. */
export function collate(examples: Example[], index: number[]): Batch {
  const size = index.length;
  const srcLen = Math.max(1, ...index.map((i) => examples[i]!.src.length));
  const tgtLen = Math.max(...index.map((i) => examples[i]!.tgt.length)) + 1;
  const src = new Int32Array(size * srcLen).fill(PAD);
  const tgtIn = new Int32Array(size * tgtLen).fill(PAD);
  const tgtOut = new Int32Array(size * tgtLen).fill(PAD);
  let tokens = 0;
  index.forEach((ex, b) => {
    const e = examples[ex]!;
    src.set(e.src, b * srcLen);
    tgtIn[b * tgtLen] = BOS;
    tgtIn.set(e.tgt, b * tgtLen + 1);
    tgtOut.set(e.tgt, b * tgtLen);
    tgtOut[b * tgtLen + e.tgt.length] = EOS;
    tokens += e.tgt.length + 1;
  });
  return { size, src, srcShape: [size, srcLen], tgtIn, tgtOut, tgtShape: [size, tgtLen], tokens, index };
}

/**
 * Groups examples of similar length so that each batch's padded size (rows × longest side)
 * stays within `maxTokens`. Lengths are bucketed after a seeded shuffle (so equal lengths mix
 * differently per seed), and the batch order is shuffled with the same generator.
 */
export function makeBatches(examples: Example[], maxTokens: number, rng: Rng | null): Batch[] {
  if (!(maxTokens > 0)) throw new DataError('makeBatches', `maxTokens must be positive, got ${maxTokens}`);
  const order = examples.map((_e, i) => i);
  if (rng) rng.shuffle(order);
  const len = (i: number): number => Math.max(examples[i]!.src.length, examples[i]!.tgt.length + 1);
  order.sort((a, b) => len(a) - len(b));
  const batches: Batch[] = [];
  let cur: number[] = [];
  let longest = 0;
  for (const i of order) {
    const l = len(i);
    if (l > maxTokens) throw new DataError('makeBatches', `example ${i} has ${l} tokens, more than the batch budget ${maxTokens}`);
    if (cur.length > 0 && (cur.length + 1) * Math.max(longest, l) > maxTokens) {
      batches.push(collate(examples, cur));
      cur = [];
      longest = 0;
    }
    cur.push(i);
    longest = Math.max(longest, l);
  }
  if (cur.length) batches.push(collate(examples, cur));
  if (rng) rng.shuffle(batches);
  return batches;
}
