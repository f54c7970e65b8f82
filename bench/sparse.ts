import { Tensor } from '../src/index.js';
import { getBackend } from '../src/kernels/backends.js';
import { gemm } from '../src/kernels/gemm.js';
import { Rng } from '../src/kernels/random.js';
import { allocF32 } from '../src/kernels/storage.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { wasmGemm } from '../src/kernels/wasm/gemm-task.js';
import { wasmNmForward, wasmNmInputGrad, wasmNmKeptWeightGrad } from '../src/kernels/wasm/nm-task.js';
import { NMSparseTensor } from '../src/sparse/nm-tensor.js';
import { medianMs, randData, type BenchRecord, type SuiteOptions } from './lib.js';

/** [rows × in]·[out × in]ᵀ: FFN shapes of a d_model 256 / ffn 1024 Transformer and 1024 square. */
const SHAPES: [string, number, number, number][] = [
  ['[2048x256]·[1024x256]ᵀ', 2048, 256, 1024],
  ['[2048x1024]·[256x1024]ᵀ', 2048, 1024, 256],
  ['1024 square', 1024, 1024, 1024],
];
const PATTERNS: [number, number][] = [[2, 4], [1, 4], [1, 8], [1, 16]];


type Kind = 'forward' | 'dX' | 'dW';
const KINDS: readonly Kind[] = ['forward', 'dX', 'dW'];

/**
 * Each js-backend sparse kernel (as sparseLinear runs it: transposes and value gathers
 * included, the pattern's layout cached by the backend) against nmgrad's dense kernel for the
 * same product, plus compressed vs dense bytes; then the wasm N:M kernels against the wasm
 * dense kernel at the same threads (rows `wasm …`).
 */
export async function sparseSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const rng = new Rng(2);
  for (const [name, rows, inF, outF] of SHAPES) {
    const x = randData(rows * inF, rng);
    const dy = randData(rows * outF, rng);
    const wDense = new Tensor(randData(outF * inF, rng), [outF, inF]);
    const y = allocF32(rows * outF);
    const dx = allocF32(rows * inF);
    const dw = allocF32(outF * inF);
    const flops = 2 * rows * inF * outF;
    for (const threads of [1, 2]) {
      setThreads(threads);
      const dense = {
        forward: await medianMs(`${name} dense fwd ${threads}t`, () => gemm(x, 0, wDense.data, 0, y, 0, { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false }), opts),
        dX: await medianMs(`${name} dense dX ${threads}t`, () => gemm(dy, 0, wDense.data, 0, dx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false }), opts),
        dW: await medianMs(`${name} dense dW ${threads}t`, () => gemm(dy, 0, x, 0, dw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false }), opts),
      };
      for (const kind of KINDS) {
        out.push({ suite: 'sparse', case: name, variant: `dense ${kind}`, threads, median_ms: dense[kind], gflops: flops / dense[kind] / 1e6 });
      }
      for (const [n, m] of PATTERNS) {
        const sp = NMSparseTensor.fromDense(wDense, n, m);
        const js = getBackend();
        const sparse = {
          forward: await medianMs(`${name} ${n}:${m} fwd ${threads}t`, () => js.nmForward(x, rows, sp, null, y), opts),
          dX: await medianMs(`${name} ${n}:${m} dX ${threads}t`, () => js.nmInputGrad(dy, rows, sp), opts),
          dW: await medianMs(`${name} ${n}:${m} kept dW ${threads}t`, () => js.nmKeptWeightGrad(dy, x, rows, sp), opts),
        };
        for (const kind of KINDS) {
          out.push({
            suite: 'sparse', case: name, variant: `${n}:${m} ${kind === 'dW' ? 'kept dW' : kind}`, threads, median_ms: sparse[kind],
            gflops: (flops * n) / m / sparse[kind] / 1e6, baseline: `dense ${kind}`, ratio: dense[kind] / sparse[kind],
          });
        }
        if (threads === 1) {
          out.push({ suite: 'sparse', case: name, variant: `${n}:${m} bytes`, threads: 0, median_ms: 0, bytes: sp.byteLength, dense_bytes: sp.denseByteLength, baseline: 'dense bytes', ratio: sp.denseByteLength / sp.byteLength, bytes_fraction: sp.compressionRatio });
        }
      }
      out.push(...(await wasmRows(name, { rows, inF, outF, x, dy, wDense, y, dx, dw }, threads, opts)));
    }
  }
  return out;
}

interface Operands {
  rows: number;
  inF: number;
  outF: number;
  x: Float32Array;
  dy: Float32Array;
  wDense: Tensor;
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
}

/** The wasm N:M kernels (value gathers and transposes included) against the wasm dense kernel at the same threads. */
async function wasmRows(name: string, o: Operands, threads: number, opts: SuiteOptions): Promise<BenchRecord[]> {
  const { rows, inF, outF, x, dy, wDense, y, dx, dw } = o;
  const out: BenchRecord[] = [];
  const flops = 2 * rows * inF * outF;
  const dense: Record<Kind, number> = {
    forward: await medianMs(`${name} wasm dense fwd ${threads}t`, () => wasmGemm(x, 0, wDense.data, 0, y, 0, { m: rows, n: outF, k: inF, transA: false, transB: true, accumulate: false }), opts),
    dX: await medianMs(`${name} wasm dense dX ${threads}t`, () => wasmGemm(dy, 0, wDense.data, 0, dx, 0, { m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false }), opts),
    dW: await medianMs(`${name} wasm dense dW ${threads}t`, () => wasmGemm(dy, 0, x, 0, dw, 0, { m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false }), opts),
  };
  for (const kind of KINDS) out.push({ suite: 'sparse', case: name, variant: `wasm dense ${kind}`, threads, median_ms: dense[kind], gflops: flops / dense[kind] / 1e6 });
  for (const [n, m] of PATTERNS) {
    const sp = NMSparseTensor.fromDense(wDense, n, m);
    const sparse: Record<Kind, number> = {
      forward: await medianMs(`${name} wasm ${n}:${m} fwd ${threads}t`, () => wasmNmForward(x, rows, sp, null, y), opts),
      dX: await medianMs(`${name} wasm ${n}:${m} dX ${threads}t`, () => wasmNmInputGrad(dy, rows, sp), opts),
      dW: await medianMs(`${name} wasm ${n}:${m} kept dW ${threads}t`, () => wasmNmKeptWeightGrad(dy, x, rows, sp), opts),
    };
    for (const kind of KINDS) {
      out.push({
        suite: 'sparse', case: name, variant: `wasm ${n}:${m} ${kind === 'dW' ? 'kept dW' : kind}`, threads, median_ms: sparse[kind],
        gflops: (flops * n) / m / sparse[kind] / 1e6, baseline: `wasm dense ${kind}`, ratio: dense[kind] / sparse[kind],
      });
    }
  }
  return out;
}
