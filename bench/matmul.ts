import { Tensor, linear } from '../src/index.js';
import { gemm } from '../src/kernels/gemm.js';
import { matmulNaive } from '../src/kernels/matmul.js';
import { Rng } from '../src/kernels/random.js';
import { allocF32 } from '../src/kernels/storage.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { medianMs, randData, type BenchRecord, type SuiteOptions } from './lib.js';

const SHAPES: [string, number, number, number][] = [
  ['256 square', 256, 256, 256],
  ['512 square', 512, 512, 512],
  ['1024 square', 1024, 1024, 1024],
  ['[2048x256]·[256x1024]', 2048, 1024, 256],
  ['[2048x1024]·[1024x256]', 2048, 256, 1024],
];


/** GFLOP/s of the naive i-k-j loop vs nmgrad's packed kernel on 1 and 2 threads. */
export async function matmulSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
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
    for (const threads of [1, 2]) {
      setThreads(threads);
      const ms = await medianMs(`${name} nmgrad ${threads}t`, () => gemm(a, 0, b, 0, c, 0, spec), opts);
      out.push(rec('nmgrad', threads, ms, naive));
      if (threads === 1) one = ms;
      else out.push({ suite: 'matmul', case: name, variant: 'nmgrad 2t vs 1t', threads: 2, median_ms: ms, baseline: 'nmgrad 1 thread', ratio: one / ms });
    }
  }
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
    const raw = await medianMs(`raw fwd+bwd ${threads}t`, () => {
      gemm(x.data, 0, w.data, 0, y, 0, { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false });
      gemm(seed.data, 0, w.data, 0, dx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false });
      gemm(seed.data, 0, x.data, 0, dw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false });
    }, opts);
    const auto = await medianMs(`autograd fwd+bwd ${threads}t`, () => {
      x.grad = null;
      w.grad = null;
      linear(x, w).backward(seed);
    }, opts);
    const flops = 3 * 2 * rows * inF * outF;
    out.push({ suite: 'matmul', case: 'linear 2048x256→1024 fwd+bwd', variant: 'raw kernels', threads, median_ms: raw, gflops: flops / raw / 1e6 });
    out.push({ suite: 'matmul', case: 'linear 2048x256→1024 fwd+bwd', variant: 'autograd', threads, median_ms: auto, gflops: flops / auto / 1e6, baseline: 'raw kernels', ratio: raw / auto });
  }
  return out;
}
