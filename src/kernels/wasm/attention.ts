/**
 * Fused attention on wasm SIMD (the contract of ../js/attention.ts, AttentionSpec in
 * ../backend.ts), over heads [h0, h1) of batch·heads. q, k, v, keep, probs and the outputs must
 * lie in the arena (the dispatch checks that on the calling thread, so every thread of a split
 * takes the same kernel); the mask codes are copied to this thread's scratch when they do not.
 *
 * Forward per head: Q·Kᵀ (keys staged transposed) into probs, masked and scaled (rows padded to a
 * multiple of 4 keys with −∞), the row kernels' softmax (./rows.ts) normalises the chunk's rows
 * in place, and `combine(Keep)` writes P⊙keep·V into out's columns of the head. Backward per
 * head: dPd = dOut·Vᵀ into scratch, `dsoft(Keep)` turns it into scale·dS there, and
 * three `combine` passes write dv, dq and dk. Not bitwise equal to js (f32 sums, polynomial
 * exp); tests bound the difference.
 */
import { attentionKeyStride, type AttentionSpec } from '../backend.js';
import type { AttentionBackwardArgs, AttentionForwardArgs } from '../js/fallbacks.js';
import { heapF32, instantiateOnArena, ptrOf, scratch } from '../memory/arena.js';
import { buildAttentionModule } from './attention-module.js';
import { threadRows } from './rows.js';

/** Head sizes the module is emitted for: multiples of 4 up to this (others run on js). */
export const WASM_ATTENTION_MAX_HEAD_DIM = 256;

type Transpose = (src: number, srcStride: number, rows: number, cols: number, dst: number, dstStride: number) => void;
type MaskRows = (s: number, rows: number, kp: number, scale: number, codes: number, limit: number) => void;
type Combine = (w: number, wRow: number, wCol: number, x: number, xStride: number, out: number, outStride: number, rows: number, inner: number, nvec: number) => void;
type CombineKeep = (w: number, wRow: number, wCol: number, keep: number, kRow: number, kCol: number, x: number, xStride: number, out: number, outStride: number, rows: number, inner: number, nvec: number) => void;
type Dsoft = (p: number, g: number, rows: number, tk: number, pStride: number, kStride: number, scale: number, codes: number, limit: number) => void;
type DsoftKeep = (p: number, g: number, keep: number, rows: number, tk: number, pStride: number, kStride: number, scale: number, codes: number, limit: number) => void;

interface AttentionKernels { transpose: Transpose; maskRows: MaskRows; combine: Combine; combineKeep: CombineKeep; dsoft: Dsoft; dsoftKeep: DsoftKeep }

let perThread: AttentionKernels | null = null;

/** This thread's instance, compiled on first use. */
function kernels(): AttentionKernels {
  perThread ??= instantiateOnArena(buildAttentionModule(), 'wasm.attention').exports as unknown as AttentionKernels;
  return perThread;
}

/** Whether the wasm kernels take this call: a head size they are emitted for, every tensor operand in the arena. */
export function wasmAttentionFits(spec: AttentionSpec, tensors: (Float32Array | null)[]): boolean {
  return spec.headDim % 4 === 0 && spec.headDim > 0 && spec.headDim <= WASM_ATTENTION_MAX_HEAD_DIM && spec.tk > 0 && tensors.every((t) => t === null || ptrOf(t) >= 0);
}

/**
 * Key codes per batch element (one row of attentionKeyStride(tk) floats for all when no mask):
 * 0 = attend, 1 = padded key (score −1e9), 2 = pad lane past tk (−∞).
 */
export function attentionKeyCodes(keyMask: Float32Array | null, batch: number, tk: number): Float32Array {
  const kp = attentionKeyStride(tk);
  const rows = keyMask === null ? 1 : batch;
  const codes = new Float32Array(rows * kp);
  for (let b = 0; b < rows; b++) {
    for (let j = 0; j < kp; j++) codes[b * kp + j] = j >= tk ? 2 : keyMask !== null && keyMask[b * tk + j] !== 0 ? 1 : 0;
  }
  return codes;
}

export interface WasmAttentionForwardArgs extends AttentionForwardArgs { codes: Float32Array }
export interface WasmAttentionBackwardArgs extends AttentionBackwardArgs { codes: Float32Array }

/** Byte address of the codes (copied to scratch at `at` when outside the arena) and the byte stride between batch elements' rows. */
function codesAt(codes: Float32Array, tk: number, at: number): [number, number] {
  let p = ptrOf(codes);
  if (p < 0) {
    heapF32().set(codes, at / 4);
    p = at;
  }
  const kp = attentionKeyStride(tk);
  return [p, codes.length === kp ? 0 : 4 * kp];
}

/** The causal mask's `limit` (key j masked for query i when j ≥ i + limit). */
const limitOf = (s: AttentionSpec): number => (s.causal ? s.past + 1 : 1 << 29);

export function wasmAttentionForwardHeads(a: WasmAttentionForwardArgs, h0: number, h1: number): void {
  const { spec } = a;
  const { heads, tq, tk, headDim: dh } = spec;
  if (h1 <= h0) return;
  const kn = kernels();
  const kp = attentionKeyStride(tk);
  const d4 = 4 * heads * dh;
  // Scratch: the codes (when outside the arena), one head's keys transposed.
  const codesBytes = Math.ceil(a.codes.length / 4) * 16;
  const base = scratch(codesBytes + 4 * dh * kp, 'wasm.attention');
  const [codes, codesStride] = codesAt(a.codes, tk, base);
  const kt = base + codesBytes;
  const [q, k, v, probs, out] = [ptrOf(a.q), ptrOf(a.k), ptrOf(a.v), ptrOf(a.probs), ptrOf(a.out)];
  const keep = a.keep === null ? -1 : ptrOf(a.keep);
  const limit = limitOf(spec);
  for (let hd = h0; hd < h1; hd++) {
    const b = Math.floor(hd / heads);
    const col = 4 * (hd % heads) * dh;
    const pRow = probs + 4 * hd * tq * kp;
    kn.transpose(k + b * tk * d4 + col, d4, tk, dh, kt, 4 * kp);
    kn.combine(q + b * tq * d4 + col, d4, 4, kt, 4 * kp, pRow, 4 * kp, tq, dh, kp / 4);
    kn.maskRows(pRow, tq, kp, spec.scale, codes + b * codesStride, limit);
  }
  // The chunk's score rows are contiguous: one softmax over them, in place (pad lanes −∞ → 0).
  threadRows().softmaxRows({ x: a.probs, out: a.probs, cols: kp, logSpace: false }, h0 * tq, h1 * tq);
  for (let hd = h0; hd < h1; hd++) {
    const b = Math.floor(hd / heads);
    const col = 4 * (hd % heads) * dh;
    const pRow = probs + 4 * hd * tq * kp;
    const [vh, oh] = [v + b * tk * d4 + col, out + b * tq * d4 + col];
    if (keep < 0) kn.combine(pRow, 4 * kp, 4, vh, d4, oh, d4, tq, tk, dh / 4);
    else kn.combineKeep(pRow, 4 * kp, 4, keep + 4 * hd * tq * tk, 4 * tk, 4, vh, d4, oh, d4, tq, tk, dh / 4);
  }
}

export function wasmAttentionBackwardHeads(a: WasmAttentionBackwardArgs, h0: number, h1: number): void {
  const { spec } = a;
  const { heads, tq, tk, headDim: dh } = spec;
  if (h1 <= h0) return;
  const kn = kernels();
  const kp = attentionKeyStride(tk);
  const d4 = 4 * heads * dh;
  // Scratch: the codes (when outside the arena), one head's dS, its values transposed.
  const codesBytes = Math.ceil(a.codes.length / 4) * 16;
  const base = scratch(codesBytes + 4 * tq * kp + 4 * dh * kp, 'wasm.attention');
  const [codes, codesStride] = codesAt(a.codes, tk, base);
  const g = base + codesBytes;
  const vt = g + 4 * tq * kp;
  const [q, k, v, probs, dOut, dq, dk, dv] = [a.q, a.k, a.v, a.probs, a.dOut, a.dq, a.dk, a.dv].map(ptrOf) as [number, number, number, number, number, number, number, number];
  const keep = a.keep === null ? -1 : ptrOf(a.keep);
  const limit = limitOf(spec);
  for (let hd = h0; hd < h1; hd++) {
    const b = Math.floor(hd / heads);
    const col = 4 * (hd % heads) * dh;
    const [qh, kh, vh, oh] = [q + b * tq * d4 + col, k + b * tk * d4 + col, v + b * tk * d4 + col, dOut + b * tq * d4 + col];
    const pRow = probs + 4 * hd * tq * kp;
    const kRow = keep + 4 * hd * tq * tk;
    // dPd = dOut·Vᵀ, then scale·dS in place.
    kn.transpose(vh, d4, tk, dh, vt, 4 * kp);
    kn.combine(oh, d4, 4, vt, 4 * kp, g, 4 * kp, tq, dh, kp / 4);
    if (keep < 0) {
      kn.dsoft(pRow, g, tq, tk, 4 * kp, 4 * tk, spec.scale, codes + b * codesStride, limit);
      kn.combine(pRow, 4, 4 * kp, oh, d4, dv + b * tk * d4 + col, d4, tk, tq, dh / 4);
    } else {
      kn.dsoftKeep(pRow, g, kRow, tq, tk, 4 * kp, 4 * tk, spec.scale, codes + b * codesStride, limit);
      kn.combineKeep(pRow, 4, 4 * kp, kRow, 4, 4 * tk, oh, d4, dv + b * tk * d4 + col, d4, tk, tq, dh / 4);
    }
    kn.combine(g, 4 * kp, 4, kh, d4, dq + b * tq * d4 + col, d4, tq, tk, dh / 4);
    kn.combine(g, 4, 4 * kp, qh, d4, dk + b * tk * d4 + col, d4, tk, tq, dh / 4);
  }
}
