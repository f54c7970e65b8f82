/**
 * Dense matmul: C[M×N] (+)= op(A)·op(B), op = identity or transpose, over row-major
 * Float32Arrays. GotoBLAS-style blocking: a KC×NC block of B and an MC×KC block of A are packed
 * into contiguous panels (the transposes are absorbed by the packing, never materialised),
 * then a 4×4 register-blocked micro-kernel with float64 accumulators sweeps them.
 *
 * Edge rows/columns are zero-padded inside the packed panels, so every output element is
 * produced by the same sequence of operations wherever it sits: results are bitwise
 * identical however the rows are split between threads (splits are multiples of MR).
 */
import type { BatchedGemmArgs } from '../backend.js';
import { GemmArgs, MatmulSpec } from '../backend.js';

export const MR = 4;
export const NR = 4;
const KC = 256;
const MC = 64;
const NC = 1024;

let packA = new Float64Array(MC * KC);
let packB = new Float64Array(KC * NC);

function packAPanel(a: Float32Array, aOff: number, spec: MatmulSpec, i0: number, mc: number, p0: number, kc: number): void {
  const { m, k, transA } = spec;
  const need = Math.ceil(mc / MR) * MR * kc;
  if (packA.length < need) packA = new Float64Array(need);
  let q = 0;
  for (let ir = 0; ir < mc; ir += MR) {
    for (let p = 0; p < kc; p++) {
      for (let ii = 0; ii < MR; ii++) {
        const i = i0 + ir + ii;
        if (ir + ii < mc && i < m) packA[q++] = transA ? a[aOff + (p0 + p) * m + i]! : a[aOff + i * k + p0 + p]!;
        else packA[q++] = 0;
      }
    }
  }
}

function packBPanel(b: Float32Array, bOff: number, spec: MatmulSpec, j0: number, nc: number, p0: number, kc: number): void {
  const { n, k, transB } = spec;
  const need = Math.ceil(nc / NR) * NR * kc;
  if (packB.length < need) packB = new Float64Array(need);
  let q = 0;
  for (let jr = 0; jr < nc; jr += NR) {
    for (let p = 0; p < kc; p++) {
      const row = p0 + p;
      for (let jj = 0; jj < NR; jj++) {
        const j = j0 + jr + jj;
        if (jr + jj < nc && j < n) packB[q++] = transB ? b[bOff + j * k + row]! : b[bOff + row * n + j]!;
        else packB[q++] = 0;
      }
    }
  }
}

/** 4×4 micro-kernel over packed panels; writes the valid mr×nr corner of the block into C. */
function micro(kc: number, aBase: number, bBase: number, c: Float32Array, cOff: number, ldc: number, mr: number, nr: number, add: boolean): void {
  const pa = packA;
  const pb = packB;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  let ia = aBase;
  let ib = bBase;
  for (let p = 0; p < kc; p++, ia += 4, ib += 4) {
    const b0 = pb[ib]!, b1 = pb[ib + 1]!, b2 = pb[ib + 2]!, b3 = pb[ib + 3]!;
    const a0 = pa[ia]!;
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    const a1 = pa[ia + 1]!;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    const a2 = pa[ia + 2]!;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    const a3 = pa[ia + 3]!;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  if (mr === 4 && nr === 4) {
    let o = cOff;
    if (add) {
      c[o] += c00; c[o + 1] += c01; c[o + 2] += c02; c[o + 3] += c03; o += ldc;
      c[o] += c10; c[o + 1] += c11; c[o + 2] += c12; c[o + 3] += c13; o += ldc;
      c[o] += c20; c[o + 1] += c21; c[o + 2] += c22; c[o + 3] += c23; o += ldc;
      c[o] += c30; c[o + 1] += c31; c[o + 2] += c32; c[o + 3] += c33;
    } else {
      c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03; o += ldc;
      c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13; o += ldc;
      c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23; o += ldc;
      c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
    }
    return;
  }
  const block = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
  for (let i = 0; i < mr; i++) {
    for (let j = 0; j < nr; j++) {
      const o = cOff + i * ldc + j;
      c[o] = add ? c[o]! + block[i * 4 + j]! : block[i * 4 + j]!;
    }
  }
}

/** The full-tile case of `micro`, kept separate so the hot loop has no edge branches. */
function microFull(kc: number, aBase: number, bBase: number, c: Float32Array, o: number, ldc: number, add: boolean): void {
  const pa = packA;
  const pb = packB;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0, ia = aBase, ib = bBase; p < kc; p++, ia += 4, ib += 4) {
    const b0 = pb[ib]!, b1 = pb[ib + 1]!, b2 = pb[ib + 2]!, b3 = pb[ib + 3]!;
    const a0 = pa[ia]!;
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    const a1 = pa[ia + 1]!;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    const a2 = pa[ia + 2]!;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    const a3 = pa[ia + 3]!;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  if (add) {
    c00 += c[o]!; c01 += c[o + 1]!; c02 += c[o + 2]!; c03 += c[o + 3]!;
    c10 += c[o + ldc]!; c11 += c[o + ldc + 1]!; c12 += c[o + ldc + 2]!; c13 += c[o + ldc + 3]!;
    c20 += c[o + 2 * ldc]!; c21 += c[o + 2 * ldc + 1]!; c22 += c[o + 2 * ldc + 2]!; c23 += c[o + 2 * ldc + 3]!;
    c30 += c[o + 3 * ldc]!; c31 += c[o + 3 * ldc + 1]!; c32 += c[o + 3 * ldc + 2]!; c33 += c[o + 3 * ldc + 3]!;
  }
  c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03; o += ldc;
  c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13; o += ldc;
  c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23; o += ldc;
  c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
}

/**
 * Computes rows [rowStart, rowEnd) of C for one matrix product. rowStart must be a multiple of
 * MR (or the whole range) for thread-count invariance; the pool guarantees it.
 */
export function matmulRows(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec, rowStart: number, rowEnd: number): void {
  const { n, k } = spec;
  if (rowEnd <= rowStart || n === 0) return;
  if (k === 0) {
    if (!spec.accumulate) c.fill(0, cOff + rowStart * n, cOff + rowEnd * n);
    return;
  }
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const add = spec.accumulate || pc > 0;
      packBPanel(b, bOff, spec, jc, nc, pc, kc);
      for (let ic = rowStart; ic < rowEnd; ic += MC) {
        const mc = Math.min(MC, rowEnd - ic);
        packAPanel(a, aOff, spec, ic, mc, pc, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          const bBase = jr * kc;
          const fullRows = nr === NR ? mc - (mc % MR) : 0;
          const base = cOff + ic * n + jc + jr;
          for (let ir = 0; ir < fullRows; ir += MR) microFull(kc, ir * kc, bBase, c, base + ir * n, n, add);
          for (let ir = fullRows; ir < mc; ir += MR) micro(kc, ir * kc, bBase, c, base + ir * n, n, Math.min(MR, mc - ir), nr, add);
        }
      }
    }
  }
}

/** Reference triple loop (i-k-j), float64 accumulation per element; the oracle for tests. */
export function matmulNaive(a: Float32Array, b: Float32Array, spec: Omit<MatmulSpec, 'accumulate'>): Float32Array {
  const { m, n, k, transA, transB } = spec;
  const c = new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const av = transA ? a[p * m + i]! : a[i * k + p]!;
      if (transB) for (let j = 0; j < n; j++) row[j] += av * b[j * k + p]!;
      else for (let j = 0; j < n; j++) row[j] += av * b[p * n + j]!;
    }
    for (let j = 0; j < n; j++) c[i * n + j] = row[j]!;
  }
  return c;
}

/** Row-range task: rows [rowStart, rowEnd) of one product. */
export function gemmRows(args: GemmArgs, rowStart: number, rowEnd: number): void {
  matmulRows(args.a, args.aOff, args.b, args.bOff, args.c, args.cOff, args.spec, rowStart, rowEnd);
}

/** Batch-range task: whole products [start, end) of a batched call. */
export function gemmBatches(args: BatchedGemmArgs, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    matmulRows(args.a, args.aOffs[i]!, args.b, args.bOffs[i]!, args.c, args.cOffs[i]!, args.spec, 0, args.spec.m);
  }
}
