import { backendByName } from '../src/kernels/backend.js';
import '../src/kernels/wasm/backend.js';
import { Rng } from '../src/kernels/random.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { hasSimd } from '../src/kernels/wasm/features.js';
import { asInSweep, medianMs, randData, type BenchRecord, type SuiteOptions } from './lib.js';

/**
 * Streaming elementwise ops at Transformer activation sizes (tiny: 1500 tokens × 64, small:
 * × 512 FFN hidden; the permute as [n / 1600, 25 tokens, 4 heads, 16] → heads first): the wasm backend's SIMD kernels (one thread, operands copied in and out)
 * against the js backend at 1 and 2 threads. `baseline` = js at 1 thread.
 */
export async function elementwiseSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  if (!hasSimd()) return out;
  const js = backendByName('js');
  const wasm = backendByName('wasm');
  const rng = new Rng(3);
  for (const n of [96_000, 768_000]) {
    const a = randData(n, rng);
    const b = randData(n, rng);
    const o = randData(n, rng);
    const [g64, b64] = [randData(64, rng), randData(64, rng)];
    const [mean, rstd] = [new Float32Array(n / 64), new Float32Array(n / 64)];
    js.layerNormRows(a, n / 64, 64, g64, b64, 1e-5, o, mean, rstd);
    const mask = Float32Array.from({ length: (n / 1600) * 16 }, (_, i) => (i % 16 > 12 ? 1 : 0));
    const cases: [string, (be: typeof js) => void][] = [
      ['mul', (be) => be.binary('mul', a, [n], b, [n], [n], o)],
      ['addInto', (be) => be.addInto(o, b)],
      ['relu', (be) => be.unary('relu', a, o, 0)],
      ['relu backward', (be) => be.unaryBackward('relu', a, a, b, o, 0)],
      // attention's head split: [batch, len, heads, d] → [batch, heads, len, d]
      ['head-split permute', (be) => be.permute(a, [n / 1600, 25, 4, 16], [0, 2, 1, 3], o)],
      // attention scores [batch, heads, 25, 16 keys] under a [batch, 1, 1, keys] padding mask
      ['layer norm (rows of 64)', (be) => be.layerNormRows(a, n / 64, 64, g64, b64, 1e-5, o, mean, rstd)],
      // dx is allocated per run: released as the backward sweep would (bench/lib.ts asInSweep)
      ['layer norm backward (rows of 64)', (be) => asInSweep(() => be.layerNormBackwardRows(a, b, n / 64, 64, g64, mean, rstd, { dx: true, dGamma: true, dBeta: true }).dx)()],
      ['masked fill', (be) => be.maskedFill(a, [n / 1600, 4, 25, 16], mask, [n / 1600, 1, 1, 16], -1e9, o)],
    ];
    for (const [name, run] of cases) {
      const variants: [string, typeof js, number][] = [['js', js, 1], ['js', js, 2], ['wasm', wasm, 1]];
      let base = 0;
      for (const [v, be, threads] of variants) {
        setThreads(threads);
        const ms = await medianMs(`elementwise ${name} ${n} ${v} ${threads}t`, () => run(be), opts, 20);
        if (v === 'js' && threads === 1) base = ms;
        out.push({ suite: 'elementwise', case: `${name} ${n}`, variant: v, threads, median_ms: ms, baseline: 'js 1 thread', ratio: base / ms });
      }
    }
  }
  out.push(...(await stepRowCases(opts, rng, js, wasm)));
  out.push(...(await lossSweepCases(opts, rng, wasm)));
  setThreads(2);
  return out;
}

/**
 * The row kernels and updates of a `small` training step at its sizes: the loss over 1500 tokens
 * × a 3000-word vocabulary (log-softmax, loss, backward), attention's softmax over 60·4·25 rows
 * of 25 keys, Adam over 384K parameters, and the gradient of x·c for attention's one-element
 * scale c, each wasm against js, at 1 thread.
 */
async function stepRowCases(opts: SuiteOptions, rng: Rng, js: ReturnType<typeof backendByName>, wasm: ReturnType<typeof backendByName>): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const [rows, vocab] = [1500, 3000];
  const logits = randData(rows * vocab, rng);
  const logp = randData(rows * vocab, rng);
  const gx = randData(rows * vocab, rng);
  const targets = Int32Array.from({ length: rows }, (_, r) => (r * 37) % vocab);
  wasm.softmaxRows(logits, rows, vocab, logp, true);
  const [aRows, keys] = [60 * 4 * 25, 25];
  const scores = randData(aRows * keys, rng);
  const probs = randData(aRows * keys, rng);
  const n = 384_000;
  const [w, g, m, v] = [randData(n, rng), randData(n, rng), randData(n, rng), randData(n, rng)];
  for (let i = 0; i < n; i++) v[i] = Math.abs(v[i]!);
  const p = { lr: 1e-4, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0, decoupled: false, bc1: 0.5, bc2: 0.3 };
  const x = randData(60 * 25 * 128, rng);
  const gy = randData(60 * 25 * 128, rng);
  const scale = Float32Array.of(1 / Math.sqrt(32));
  const cases: [string, (be: typeof js) => void][] = [
    [`log-softmax [${rows}x${vocab}]`, (be) => be.softmaxRows(logits, rows, vocab, logp, true)],
    [`cross-entropy loss [${rows}x${vocab}]`, (be) => void be.crossEntropyLoss(logp, targets, rows, vocab, 0, 0.1)],
    [`cross-entropy backward [${rows}x${vocab}]`, (be) => be.crossEntropyBackward(logp, targets, rows, vocab, 0, 0.1, 1 / rows, gx)],
    [`softmax [${aRows}x${keys}]`, (be) => be.softmaxRows(scores, aRows, keys, probs, false)],
    [`Adam ${n}`, (be) => be.adamUpdate(w, g, m, v, p)],
    ['x·c backward [60,25,128]', (be) => asInSweep(() => be.binaryBackward('mul', gy, x, [60, 25, 128], scale, [], [60, 25, 128], true, false)[0])()],
  ];
  setThreads(1);
  for (const [name, run] of cases) {
    const jsMs = await medianMs(`elementwise ${name} js 1t`, () => run(js), opts, 20);
    const wasmMs = await medianMs(`elementwise ${name} wasm 1t`, () => run(wasm), opts, 20);
    out.push({ suite: 'elementwise', case: name, variant: 'js', threads: 1, median_ms: jsMs });
    out.push({ suite: 'elementwise', case: name, variant: 'wasm', threads: 1, median_ms: wasmMs, baseline: 'js 1 thread', ratio: jsMs / wasmMs });
  }
  return out;
}

/**
 * The training loss and its gradient over the vocabulary, `small` [1500×3000] and `base`
 * [2500×5362]: crossEntropyWithGrad's one sweep against the three calls it replaces
 * (log-softmax, loss, backward), wasm, 1 and 2 threads; ratio = three calls / one sweep.
 */
async function lossSweepCases(opts: SuiteOptions, rng: Rng, wasm: ReturnType<typeof backendByName>): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  for (const [rows, vocab] of [[1500, 3000], [2500, 5362]] as const) {
    const logits = randData(rows * vocab, rng);
    const buf = randData(rows * vocab, rng);
    const targets = Int32Array.from({ length: rows }, (_, r) => (r % 11 === 0 ? 0 : 1 + ((r * 37) % (vocab - 1))));
    const name = `loss + gradient [${rows}x${vocab}]`;
    for (const threads of [1, 2]) {
      setThreads(threads);
      const threeMs = await medianMs(`elementwise ${name} three calls ${threads}t`, () => {
        wasm.softmaxRows(logits, rows, vocab, buf, true);
        wasm.crossEntropyLoss(buf, targets, rows, vocab, 0, 0.1);
        wasm.crossEntropyBackward(buf, targets, rows, vocab, 0, 0.1, 1 / rows, buf);
      }, opts, 10);
      const sweepMs = await medianMs(`elementwise ${name} one sweep ${threads}t`, () => void wasm.crossEntropyWithGrad(logits, targets, rows, vocab, 0, 0.1, 1 / rows, buf), opts, 10);
      out.push({ suite: 'elementwise', case: name, variant: 'wasm three calls', threads, median_ms: threeMs });
      out.push({ suite: 'elementwise', case: name, variant: 'wasm one sweep', threads, median_ms: sweepMs, baseline: 'wasm three calls', ratio: threeMs / sweepMs });
    }
  }
  setThreads(1);
  return out;
}
