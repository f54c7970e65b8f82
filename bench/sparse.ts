import { Tensor } from '../src/index.js';
import { backendByName, listBackends } from '../src/kernels/backends.js';
import { Rng } from '../src/kernels/random.js';
import { allocF32 } from '../src/kernels/memory/storage.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { NMSparseTensor } from '../src/sparse/nm-tensor.js';
import { asInSweep, medianMs, randData, type BenchRecord, type SuiteOptions } from './lib.js';

/** [rows × in]·[out × in]ᵀ: FFN shapes of a d_model 256 / ffn 1024 Transformer and 1024 square. */
const SHAPES: [string, number, number, number][] = [
  ['[2048x256]·[1024x256]ᵀ', 2048, 256, 1024],
  ['[2048x1024]·[256x1024]ᵀ', 2048, 1024, 256],
  ['1024 square', 1024, 1024, 1024],
];
const PATTERNS: [number, number][] = [[2, 4], [1, 4], [1, 8], [1, 16]];
/**
 * Denser patterns, on the first shape only: where the compressed kernels stop paying. A hard
 * N:M phase above `Backend.nmCompressedMaxDensity` runs the dense product of W ⊙ E instead
 * (sparse structure decay starts at 7:8).
 */
const DENSE_PATTERNS: [number, number][] = [[4, 8], [5, 8], [3, 4], [7, 8]];

type Kind = 'forward' | 'dX' | 'dW';
const KINDS: readonly Kind[] = ['forward', 'dX', 'dW'];

/**
 * Each backend's N:M kernels (as sparseLinear runs them: transposes and value gathers included,
 * the pattern's layout cached) against the same backend's dense kernel for the same product,
 * at the same threads: js rows are named `dense …` / `2:4 …`, wasm rows `wasm dense …` /
 * `wasm 2:4 …`. Plus compressed vs dense bytes.
 */
/** Every case yields after each run, as a training loop does between steps (bench/lib.ts). */
const EACH = { yield: true };

export async function sparseSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const rng = new Rng(2);
  const backends = listBackends().filter((b) => b === 'js' || b === 'wasm');
  for (const [shapeIndex, [name, rows, inF, outF]] of SHAPES.entries()) {
    const x = randData(rows * inF, rng);
    const dy = randData(rows * outF, rng);
    const wDense = new Tensor(randData(outF * inF, rng), [outF, inF]);
    const patterns = (shapeIndex === 0 ? [...PATTERNS, ...DENSE_PATTERNS] : PATTERNS).map(([n, m]) => NMSparseTensor.fromDense(wDense, n, m));
    const y = allocF32(rows * outF);
    const dx = allocF32(rows * inF);
    const dw = allocF32(outF * inF);
    const flops = 2 * rows * inF * outF;
    for (const threads of [1, 2]) {
      setThreads(threads);
      for (const backendName of backends) {
        const b = backendByName(backendName);
        const prefix = backendName === 'js' ? '' : `${backendName} `;
        const label = (what: string): string => `${name} ${prefix}${what} ${threads}t`;
        const dense: Record<Kind, number> = {
          forward: await medianMs(label('dense fwd'), () => b.gemm(x, 0, wDense.data, 0, y, 0, { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false }), opts, 5, EACH),
          dX: await medianMs(label('dense dX'), () => b.gemm(dy, 0, wDense.data, 0, dx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false }), opts, 5, EACH),
          dW: await medianMs(label('dense dW'), () => b.gemm(dy, 0, x, 0, dw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false }), opts, 5, EACH),
        };
        for (const kind of KINDS) out.push({ suite: 'sparse', case: name, variant: `${prefix}dense ${kind}`, threads, median_ms: dense[kind], gflops: flops / dense[kind] / 1e6 });
        for (const sp of patterns) {
          const { n, m } = sp;
          const sparse: Record<Kind, number> = {
            forward: await medianMs(label(`${n}:${m} fwd`), () => b.nmForward(x, rows, sp, null, y), opts, 5, EACH),
            dX: await medianMs(label(`${n}:${m} dX`), asInSweep(() => b.nmInputGrad(dy, rows, sp)), opts, 5, EACH),
            dW: await medianMs(label(`${n}:${m} kept dW`), asInSweep(() => b.nmKeptWeightGrad(dy, x, rows, sp)), opts, 5, EACH),
          };
          for (const kind of KINDS) {
            out.push({
              suite: 'sparse', case: name, variant: `${prefix}${n}:${m} ${kind === 'dW' ? 'kept dW' : kind}`, threads, median_ms: sparse[kind],
              gflops: (flops * n) / m / sparse[kind] / 1e6, baseline: `${prefix}dense ${kind}`, ratio: dense[kind] / sparse[kind],
            });
          }
        }
      }
    }
    for (const sp of patterns) {
      out.push({ suite: 'sparse', case: name, variant: `${sp.n}:${sp.m} bytes`, threads: 0, median_ms: 0, bytes: sp.byteLength, dense_bytes: sp.denseByteLength, baseline: 'dense bytes', ratio: sp.denseByteLength / sp.byteLength, bytes_fraction: sp.compressionRatio });
    }
  }
  return out;
}
