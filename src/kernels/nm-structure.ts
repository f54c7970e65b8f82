/**
 * The structure of N:M patterns, shared by every backend: compressed-row layouts, validation
 * and iteration over kept positions. No arithmetic on tensor values happens here.
 */
import type { NMWeight } from './backend.js';
import { allocI32 } from './memory/storage.js';

/** Compressed rows of a weight (or its transpose): entries rowPtr[i] .. rowPtr[i+1]. */
export interface Csr {
  rowPtr: Int32Array;
  col: Int32Array;
}

/** Row-wise CSR of an N:M pattern: every row holds (cols/m)·n entries in storage order. */
export function nmRowsCsr(shape: readonly [number, number], n: number, m: number, indices: Uint8Array, allocI32: (n: number) => Int32Array): Csr {
  const [rows, cols] = shape;
  const perRow = (cols / m) * n;
  const rowPtr = allocI32(rows + 1);
  for (let i = 0; i <= rows; i++) rowPtr[i] = i * perRow;
  const col = allocI32(indices.length);
  // Entry e = (row, group, t) in storage order: column group·m + offset, groups restarting per row.
  const groups = cols / m;
  let e = 0;
  for (let r = 0; r < rows; r++) {
    for (let g = 0, base = 0; g < groups; g++, base += m) {
      for (let t = 0; t < n; t++, e++) col[e] = base + indices[e]!;
    }
  }
  return { rowPtr, col };
}

/**
 * CSR of the transpose (columns as rows) plus `source`, the storage-order entry each
 * transposed entry reads, so the values of any step gather in one pass.
 */
export function transposeCsr(rows: number, cols: number, csr: Csr, allocI32: (n: number) => Int32Array): Csr & { source: Int32Array } {
  const { col } = csr;
  const count = new Int32Array(cols + 1);
  for (let e = 0; e < col.length; e++) count[col[e]! + 1]!++;
  for (let c = 0; c < cols; c++) count[c + 1]! += count[c]!;
  const rowPtr = allocI32(cols + 1);
  rowPtr.set(count);
  const fill = Int32Array.from(count.subarray(0, cols));
  const tCol = allocI32(col.length);
  const source = new Int32Array(col.length);
  for (let r = 0; r < rows; r++) {
    for (let e = csr.rowPtr[r]!, end = csr.rowPtr[r + 1]!; e < end; e++) {
      const p = fill[col[e]!]!++;
      tCol[p] = r;
      source[p] = e;
    }
  }
  return { rowPtr, col: tCol, source };
}

/** out[p] = values[source[p]]. */
export function gatherBy(values: Float32Array, source: Int32Array, out: Float32Array): void {
  for (let p = 0; p < source.length; p++) out[p] = values[source[p]!]!;
}

/**
 * Offsets of the non-zero positions of a 0/1 mask, group by group. Returns the first group
 * that does not keep exactly n (and how many it keeps), or null when all do.
 */
export function nmOffsetsFromMask(mask: Float32Array, groups: number, n: number, m: number, out: Uint8Array): { group: number; kept: number } | null {
  let q = 0;
  for (let g = 0; g < groups; g++) {
    let kept = 0;
    for (let j = 0; j < m; j++) {
      if (mask[g * m + j] !== 0) {
        if (kept < n) out[q + kept] = j;
        kept++;
      }
    }
    if (kept !== n) return { group: g, kept };
    q += n;
  }
  return null;
}

/** Index of the first entry that is not a strictly ascending offset in [0, m), or −1. */
export function firstInvalidOffset(indices: Uint8Array, n: number, m: number): number {
  for (let e = 0; e < indices.length; e++) {
    const ok = indices[e]! < m && (e % n === 0 || indices[e]! > indices[e - 1]!);
    if (!ok) return e;
  }
  return -1;
}

/** Calls fn(entry, flat dense index) for every stored entry, in storage order. */
export function nmForEachEntry(n: number, m: number, indices: Uint8Array, fn: (entry: number, flat: number) => void): void {
  // Entries come n per group of m: the group's first dense index advances by m, no division per entry.
  for (let e = 0, base = 0; e < indices.length; base += m) {
    for (let t = 0; t < n && e < indices.length; t++, e++) fn(e, base + indices[e]!);
  }
}

/**
 * A pattern's row CSR and its transpose (with the gather permutation from storage order), the
 * structure both backends run the N:M products with. Built once per pattern: patterns are
 * immutable, so the cache is keyed by the offsets array (a WeakMap: it goes with the pattern).
 */
export interface PatternLayout {
  rows: Csr;
  transposed: Csr & { source: Int32Array };
}

const layouts = new WeakMap<Uint8Array, PatternLayout>();

export function patternLayout(w: NMWeight): PatternLayout {
  let l = layouts.get(w.indices);
  if (l === undefined) {
    const rows = nmRowsCsr(w.shape, w.n, w.m, w.indices, allocI32);
    l = { rows, transposed: transposeCsr(w.shape[0], w.shape[1], rows, allocI32) };
    layouts.set(w.indices, l);
  }
  return l;
}

