import { Tensor, linear } from '../src/index.js';
import type { BatchedGemmArgs } from '../src/kernels/backend.js';
import { backendByName, getBackend, listBackends } from '../src/kernels/backends.js';
import { matmulNaive } from '../src/kernels/js/gemm.js';
import { Rng } from '../src/kernels/random.js';
import { allocF32 } from '../src/kernels/memory/storage.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { medianMs, randData, type BenchRecord, type SuiteOptions } from './lib.js';

const SHAPES: [string, number, number, number][] = [
  ['256 square', 256, 256, 256],
  ['512 square', 512, 512, 512],
  ['1024 square', 1024, 1024, 1024],
  ['[2048x256]·[256x1024]', 2048, 1024, 256],
  ['[2048x1024]·[1024x256]', 2048, 256, 1024],
];


const threadsLabel = (t: number): string => `${t} thread${t > 1 ? 's' : ''}`;

/**
 * GFLOP/s of the naive i-k-j loop vs each backend's dense product on 1 and 2 threads; the
 * wasm rows' baseline is the js backend at the same thread count.
 */
export async function matmulSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const js = backendByName('js');
  const wasm = listBackends().includes('wasm') ? backendByName('wasm') : null;
  const rng = new Rng(1);
  for (const [name, m, n, k] of SHAPES) {
    const a = randData(m * k, rng);
    const b = randData(k * n, rng);
    const c = allocF32(m * n);
    const flops = 2 * m * n * k;
    const spec = { m, n, k, transA: false, transB: false, accumulate: false };
    const rec = (variant: string, threads: number, ms: number, base?: number): BenchRecord => ({
      suite: 'matmul', case: name, variant, threads, median_ms: ms, gflops: flops / ms / 1e6,
      ...(base !== undefined ? { baseline: 'naive', ratio: base / ms } : {}),
    });
    const naive = await medianMs(`${name} naive`, () => matmulNaive(a, b, spec), opts, 2);
    out.push(rec('naive i-k-j', 1, naive));
    let one = 0;
    let wasmOne = 0;
    for (const threads of [1, 2]) {
      setThreads(threads);
      const ms = await medianMs(`${name} js ${threads}t`, () => js.gemm(a, 0, b, 0, c, 0, spec), opts);
      out.push(rec('js', threads, ms, naive));
      const wms = wasm ? await medianMs(`${name} wasm ${threads}t`, () => wasm.gemm(a, 0, b, 0, c, 0, spec), opts) : 0;
      if (wasm) out.push({ ...rec('wasm', threads, wms), baseline: `js ${threadsLabel(threads)}`, ratio: ms / wms });
      if (threads === 1) [one, wasmOne] = [ms, wms];
      else {
        out.push({ suite: 'matmul', case: name, variant: 'js 2t vs 1t', threads: 2, median_ms: ms, baseline: 'js 1 thread', ratio: one / ms });
        if (wasm) out.push({ suite: 'matmul', case: name, variant: 'wasm 2t vs 1t', threads: 2, median_ms: wms, baseline: 'wasm 1 thread', ratio: wasmOne / wms });
      }
    }
  }
  if (wasm) out.push(...(await attentionHeads(opts, rng)));
  // Autograd overhead: linear forward + both backward products vs the three raw kernel calls.
  const [rows, inF, outF] = [2048, 256, 1024];
  const x = new Tensor(randData(rows * inF, rng), [rows, inF], true);
  const w = new Tensor(randData(outF * inF, rng), [outF, inF], true);
  const seed = new Tensor(randData(rows * outF, rng), [rows, outF]);
  for (const threads of [1, 2]) {
    setThreads(threads);
    const y = allocF32(rows * outF);
    const dx = allocF32(rows * inF);
    const dw = allocF32(outF * inF);
    const backend = getBackend(); // the one linear() runs on
    const raw = await medianMs(`raw fwd+bwd ${threads}t`, () => {
      backend.gemm(x.data, 0, w.data, 0, y, 0, { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false });
      backend.gemm(seed.data, 0, w.data, 0, dx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false });
      backend.gemm(seed.data, 0, x.data, 0, dw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false });
    }, opts);
    const auto = await medianMs(`autograd fwd+bwd ${threads}t`, () => {
      x.grad = null;
      w.grad = null;
      linear(x, w).backward(seed);
    }, opts);
    const flops = 3 * 2 * rows * inF * outF;
    const lin = `linear 2048x256→1024 fwd+bwd (${backend.name})`;
    out.push({ suite: 'matmul', case: lin, variant: 'raw kernels', threads, median_ms: raw, gflops: flops / raw / 1e6 });
    out.push({ suite: 'matmul', case: lin, variant: 'autograd', threads, median_ms: auto, gflops: flops / auto / 1e6, baseline: 'raw kernels', ratio: raw / auto });
  }
  return out;
}

/**
 * The attention-head products of the `small` translation preset: d_model 128 over 4 heads
 * (head dim 32), ~30-token sentences, ~50 sentences per batch → 200 heads of Q·Kᵀ and P·V.
 */
async function attentionHeads(opts: SuiteOptions, rng: Rng): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const [heads, t, d] = [200, 30, 32];
  const cases: [string, { m: number; n: number; k: number; transB: boolean }][] = [
    [`${heads}× heads Q·Kᵀ [${t}x${d}]·[${t}x${d}]ᵀ`, { m: t, n: t, k: d, transB: true }],
    [`${heads}× heads P·V [${t}x${t}]·[${t}x${d}]`, { m: t, n: d, k: t, transB: false }],
  ];
  for (const [name, { m, n, k, transB }] of cases) {
    const offs = (stride: number): Int32Array => Int32Array.from({ length: heads }, (_, i) => i * stride);
    const args: BatchedGemmArgs = {
      a: randData(heads * m * k, rng), b: randData(heads * k * n, rng), c: allocF32(heads * m * n),
      aOffs: offs(m * k), bOffs: offs(k * n), cOffs: offs(m * n), spec: { m, n, k, transA: false, transB, accumulate: false },
    };
    const flops = 2 * m * n * k * heads;
    for (const threads of [1, 2]) {
      setThreads(threads);
      const jsMs = await medianMs(`${name} js ${threads}t`, () => backendByName('js').gemmBatched(args), opts);
      const wasmMs = await medianMs(`${name} wasm ${threads}t`, () => backendByName('wasm').gemmBatched(args), opts);
      out.push({ suite: 'matmul', case: name, variant: 'js', threads, median_ms: jsMs, gflops: flops / jsMs / 1e6 });
      out.push({ suite: 'matmul', case: name, variant: 'wasm', threads, median_ms: wasmMs, gflops: flops / wasmMs / 1e6, baseline: `js ${threadsLabel(threads)}`, ratio: jsMs / wasmMs });
    }
  }
  return out;
}
