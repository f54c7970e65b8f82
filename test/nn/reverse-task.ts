import { Adam, Rng, Transformer, clipGradNorm, labelSmoothedLoss } from '../../src/index.js';

export const PAD = 0, BOS = 1, EOS = 2;

/** A batch of random sequences (length 3..maxLen) and their reversals, padded. */
export function reverseBatch(rng: Rng, batch: number, vocab: number, maxLen: number) {
  const seqs = Array.from({ length: batch }, () => Array.from({ length: 3 + rng.int(maxLen - 2) }, () => 3 + rng.int(vocab - 3)));
  const s = Math.max(...seqs.map((q) => q.length));
  const src = new Int32Array(batch * s);
  const tgtIn = new Int32Array(batch * (s + 1));
  const tgtOut = new Int32Array(batch * (s + 1));
  seqs.forEach((q, b) => {
    const r = [...q].reverse();
    q.forEach((v, i) => (src[b * s + i] = v));
    [BOS, ...r].forEach((v, i) => (tgtIn[b * (s + 1) + i] = v));
    [...r, EOS].forEach((v, i) => (tgtOut[b * (s + 1) + i] = v));
  });
  return { seqs, src, srcShape: [batch, s] as [number, number], tgtIn, tgtOut, tgtShape: [batch, s + 1] as [number, number] };
}

export function trainReverse(steps: number, seed = 0) {
  const vocab = 12;
  const model = new Transformer({ srcVocab: vocab, tgtVocab: vocab, dModel: 32, heads: 4, ffn: 64, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 16, seed });
  const opt = new Adam(model.parameters(), 3e-3, { beta2: 0.98, eps: 1e-9 });
  const rng = new Rng(seed + 1);
  const losses: number[] = [];
  for (let step = 1; step <= steps; step++) {
    const b = reverseBatch(rng, 32, vocab, 6);
    opt.zeroGrad();
    const loss = labelSmoothedLoss(model.forward(b.src, b.srcShape, b.tgtIn, b.tgtShape, PAD), b.tgtOut, PAD, 0);
    loss.backward();
    clipGradNorm(model.parameters(), 1);
    opt.lr = 3e-3 * Math.min(1, step / 30);
    opt.step();
    losses.push(loss.item());
  }
  return { model, losses, vocab, rng };
}
