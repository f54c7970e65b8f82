/**
 * The `wasm` backend: dense products (gemm, gemmBatched) on the WebAssembly SIMD GEMM, the
 * N:M products (forward, dX, kept-position dW) on the wasm SIMD N:M kernels, and the
 * exp-bound row kernels (softmax / log-softmax, their backward, cross-entropy backward) on
 * wasm SIMD with a polynomial exp (rows-module.ts), the streaming elementwise ops
 * (same-shape add / sub / mul / div, relu and its backward, addInto, mulInto, permutes and
 * masked fills of rank ≤ 4, layer norm and its backward: map.ts,
 * bitwise equal to js), all from modules
 * nmgrad emits at run time (docs/wasm.md); every other kernel falls through to `js`.
 * Registered only where the engine validates a SIMD module, and then the default backend.
 * The same worker pool drives it: each thread instantiates its own copy of the modules.
 * Which calls run on wasm, and which split over the pool, is decided by placement.ts.
 */
import { registerBackend, setBackendDetail, withFallback, type Backend } from '../backend.js';
import { hasRelaxedSimd, hasSimd } from './features.js';
import { wasmGemm, wasmGemmBatched, wasmGemmBias } from './gemm-dispatch.js';
import { wasmNmForward, wasmNmInputGrad, wasmNmKeptWeightGrad } from './nm-dispatch.js';
import { wasmCrossEntropyBackward, wasmCrossEntropyLoss, wasmCrossEntropyWithGrad, wasmLogSoftmaxBackwardRows, wasmSoftmaxBackwardRows, wasmSoftmaxRows } from './rows-dispatch.js';
import { MAP_MAX_RANK, permuteDims, threadMap, wasmKeepMaskRange, wasmMapStreamRange, type MapStreamKind } from './map.js';
import { dispatchRows } from '../threads/pool.js';
import { WASM_TASKS } from './tasks.js';
import { MAP_BINARY_OPS, type MapBinaryOp } from './map-module.js';
import { sameShape } from '../shape.js';
import { arenaMemory, inArena } from '../memory/arena.js';
import { allocF32, allocF32Uninit } from '../memory/storage.js';
import { jsBackend, layerNormBackwardSplit } from '../js/backend.js';
import { MAP_MIN, MASK_ALIGN, MASK_MIN, STREAM_ALIGN, STREAM_COST, WASM_LAYER_NORM_BACKWARD_COSTS } from './placement.js';

const isMapOp = (op: string): op is MapBinaryOp => (MAP_BINARY_OPS as readonly string[]).includes(op);

function stream(kind: MapStreamKind, x: Float32Array, y: Float32Array | null, out: Float32Array, scalar?: number): void {
  const args = { kind, x, y, out, scalar };
  if (inArena(x) && inArena(out) && (y === null || inArena(y))) dispatchRows(WASM_TASKS, 'wasmMapStreamRange', args, out.length, STREAM_ALIGN, STREAM_COST * out.length);
  else wasmMapStreamRange(args, 0, out.length);
}

export const wasmBackend: Backend = withFallback({
  name: 'wasm',
  // FFN shape [2048×256]·[1024×256]ᵀ, 1 thread, fwd + dX + kept dW against dense: 4:8 1.37×, 5:8 0.89×.
  nmCompressedMaxDensity: 1 / 2,
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
  crossEntropyLoss: wasmCrossEntropyLoss,
  crossEntropyWithGrad: wasmCrossEntropyWithGrad,
  columnSums(g, rows, cols) {
    if (!inArena(g) || cols < 8) return jsBackend.columnSums(g, rows, cols);
    const out = allocF32(cols);
    dispatchRows(WASM_TASKS, 'wasmColumnSumsColRange', { g, rows, cols, out }, cols, 16, STREAM_COST * rows * cols);
    return out;
  },
  adamUpdate(w, g, m, v, p) {
    // Split at 1024-element boundaries (multiples of 4: the kernel's vectors never straddle chunks).
    if (w.length >= MAP_MIN && inArena(w) && inArena(g) && inArena(m) && inArena(v)) dispatchRows(WASM_TASKS, 'wasmAdamRange', { w, g, m, v, p }, w.length, 1024, 4 * STREAM_COST * w.length);
    else jsBackend.adamUpdate(w, g, m, v, p);
  },
  binary(op, a, aShape, b, bShape, outShape, out) {
    if (out.length >= MAP_MIN && isMapOp(op) && sameShape(aShape, bShape) && sameShape(aShape, outShape)) stream(op, a, b, out);
    // A scalar operand (x·c, x + c; c·x, c + x as they commute): splatted into the kernel.
    else if (out.length >= MAP_MIN && isMapOp(op) && b.length === 1 && sameShape(aShape, outShape)) stream(op, a, null, out, b[0]!);
    else if (out.length >= MAP_MIN && (op === 'add' || op === 'mul') && a.length === 1 && sameShape(bShape, outShape)) stream(op, b, null, out, a[0]!);
    else jsBackend.binary(op, a, aShape, b, bShape, outShape, out);
  },
  binaryBackward(op, g, a, aShape, b, bShape, outShape, needA, needB) {
    // x·c with a constant one-element c (attention's 1/√d): the gradient of x is g·c, one
    // streaming pass with c splatted, instead of expanding c to g's size first (the same bits).
    if (op === 'mul' && needA && !needB && b.length === 1 && g.length >= MAP_MIN && sameShape(aShape, outShape)) {
      const ga = allocF32Uninit(g.length);
      stream('mul', g, null, ga, b[0]!);
      return [ga, null];
    }
    return jsBackend.binaryBackward(op, g, a, aShape, b, bShape, outShape, needA, needB);
  },
  addInto(dst, src) {
    if (dst.length >= MAP_MIN && src.length === dst.length) stream('add', dst, src, dst);
    else jsBackend.addInto(dst, src);
  },
  mulInto(a, b, out) {
    if (out.length >= MAP_MIN && a.length === out.length && b.length === out.length) stream('mul', a, b, out);
    else jsBackend.mulInto(a, b, out);
  },
  unary(op, x, out, param) {
    if (op === 'relu' && out.length >= MAP_MIN && x.length === out.length) stream('relu', x, null, out);
    else jsBackend.unary(op, x, out, param);
  },
  permute(src, shape, perm, out) {
    if (out.length >= MAP_MIN && shape.length <= MAP_MAX_RANK && src.length === out.length) {
      // In the arena: split by the output's first dim (each output element is one copy).
      const { d, s: st } = permuteDims(shape, perm);
      if (inArena(src) && inArena(out) && d[0]! > 1) dispatchRows(WASM_TASKS, 'wasmPermuteRowRange', { src, out, dims: d, byteStrides: st }, d[0]!, 1, STREAM_COST * out.length);
      else threadMap().permute(src, shape, perm, out);
    }
    else jsBackend.permute(src, shape, perm, out);
  },
  layerNormRows(x, rows, cols, gamma, beta, eps, out, meanOut, rstdOut) {
    if (gamma !== null && beta !== null && rows * cols >= MAP_MIN) {
      if (inArena(x) && inArena(out)) dispatchRows(WASM_TASKS, 'wasmLayerNormRowRange', { x, cols, gamma, beta, eps, out, meanOut, rstdOut }, rows, 1, 4 * STREAM_COST * rows * cols);
      else threadMap().layerNorm(x, rows, cols, gamma, beta, eps, out, meanOut, rstdOut);
    }
    else jsBackend.layerNormRows(x, rows, cols, gamma, beta, eps, out, meanOut, rstdOut);
  },
  layerNormBackwardRows(x, dy, rows, cols, gamma, mean, rstd, need) {
    if (gamma !== null && rows * cols >= MAP_MIN) {
      if (!inArena(x) || !inArena(dy)) return threadMap().layerNormBackward(x, dy, rows, cols, gamma, mean, rstd, need);
      // dx rows on wasm and dγ, dβ columns (js, float64 in row order), both split over the pool.
      return layerNormBackwardSplit(WASM_TASKS, 'wasmLayerNormBackwardRange', WASM_LAYER_NORM_BACKWARD_COSTS, x, dy, rows, cols, gamma, mean, rstd, need);
    }
    return jsBackend.layerNormBackwardRows(x, dy, rows, cols, gamma, mean, rstd, need);
  },
  maskedFill(x, shape, mask, maskShape, value, out) {
    if (out.length >= MAP_MIN && shape.length <= MAP_MAX_RANK && maskShape.length <= shape.length) {
      // In the arena: split by the first dim (attention scores [B, H, Lq, Lk]: by batch).
      if (inArena(x) && inArena(out) && shape[0]! > 1) dispatchRows(WASM_TASKS, 'wasmMaskedFillRowRange', { x, shape: [...shape], mask, maskShape: [...maskShape], value, out }, shape[0]!, 1, STREAM_COST * out.length);
      else threadMap().maskedFill(x, shape, mask, maskShape, value, out);
    }
    else jsBackend.maskedFill(x, shape, mask, maskShape, value, out);
  },
  dropoutMask(rng, p, scale, keep) {
    const n = keep.length;
    if (n < MASK_MIN) {
      jsBackend.dropoutMask(rng, p, scale, keep);
      return;
    }
    // Split in whole kernel blocks; the generator's first four words are the state (JSON-clean).
    const args = { state: rng.getState().slice(0, 4), p, scale, keep };
    if (inArena(keep)) dispatchRows(WASM_TASKS, 'wasmDropoutMaskRange', args, n, MASK_ALIGN, STREAM_COST * n);
    else wasmKeepMaskRange(args.state, 0, p, scale, keep);
    rng.advance(n);
  },
  unaryBackward(op, x, y, g, gx, param) {
    if (op === 'relu' && gx.length >= MAP_MIN && x.length === gx.length && g.length === gx.length) stream('reluBackward', x, g, gx);
    else jsBackend.unaryBackward(op, x, y, g, gx, param);
  },
}, jsBackend);

if (hasSimd() && arenaMemory() !== null) {
  registerBackend(wasmBackend);
  setBackendDetail('wasm', () => `WebAssembly SIMD dense and N:M products, softmax / cross-entropy rows and streaming elementwise ops (add, sub, mul, div, relu, permute, masked fill, layer norm), dense products with ${hasRelaxedSimd() ? 'f32x4.relaxed_madd' : 'f32x4 mul + add'}, N:M with mul + add; other kernels js`);
}
