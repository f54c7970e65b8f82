/**
 * The `wasm` backend: dense products (gemm, gemmBatched) on the WebAssembly SIMD GEMM, the
 * N:M products (forward, dX, kept-position dW) on the wasm SIMD N:M kernels, and the
 * exp-bound row kernels (softmax / log-softmax, their backward, cross-entropy backward) on
 * wasm SIMD with a polynomial exp (wasm/rows-module.ts), all from modules
 * nmgrad emits at run time (wasm/, docs/wasm.md); every other kernel falls through to `js`.
 * Registered only where the engine validates a SIMD module, and then the default backend.
 * The same worker pool drives it: each thread instantiates its own copy of the modules.
 */
import { registerBackend, setBackendDetail, withFallback, type Backend } from './backend.js';
import { jsBackend } from './js-backend.js';
import { hasRelaxedSimd, hasSimd } from './wasm/features.js';
import { wasmGemm, wasmGemmBatched, wasmGemmBias } from './wasm/gemm-task.js';
import { wasmNmForward, wasmNmInputGrad, wasmNmKeptWeightGrad } from './wasm/nm-task.js';
import { wasmCrossEntropyBackward, wasmLogSoftmaxBackwardRows, wasmSoftmaxBackwardRows, wasmSoftmaxRows } from './wasm/rows-task.js';

export const wasmBackend: Backend = withFallback({
  name: 'wasm',
  gemm: wasmGemm,
  gemmBatched: wasmGemmBatched,
  gemmBias: wasmGemmBias,
  nmForward: wasmNmForward,
  nmInputGrad: wasmNmInputGrad,
  nmKeptWeightGrad: wasmNmKeptWeightGrad,
  softmaxRows: wasmSoftmaxRows,
  softmaxBackwardRows: wasmSoftmaxBackwardRows,
  logSoftmaxBackwardRows: wasmLogSoftmaxBackwardRows,
  crossEntropyBackward: wasmCrossEntropyBackward,
}, jsBackend);

if (hasSimd()) {
  registerBackend(wasmBackend);
  setBackendDetail('wasm', () => `WebAssembly SIMD dense and N:M products and softmax / cross-entropy rows, with ${hasRelaxedSimd() ? 'f32x4.relaxed_madd' : 'f32x4 mul + add'}; other kernels js`);
}
