/**
 * The js backend's data-movement kernels: masked fill, broadcasting (expand) and its reverse
 * (sumToShape), permutes, strided block copies, and the embedding's row gather and its
 * scatter-add. Their row ranges run on the pool through elementwise-ranges.ts.
 */
import { broadcastStrides, odometerAt, outerRows, sameShape, sizeOf, stridesOf } from '../shape.js';

/**
 * out[i] = mask[i'] ≠ 0 ? value : x[i], with `mask` (shape `maskShape`) broadcast to `shape`:
 * a masked fill that never materialises the broadcast mask. One pass over the last dim per row;
 * the mask offset follows the row index through the broadcast strides.
 */
export function maskedFillKernel(x: Float32Array, shape: readonly number[], mask: Float32Array, maskShape: readonly number[], value: number, out: Float32Array): void {
  const nd = shape.length;
  if (out.length === 0) return;
  if (nd === 0) {
    out[0] = mask[0] !== 0 ? value : x[0]!;
    return;
  }
  const ms = broadcastStrides(maskShape, shape);
  const last = shape[nd - 1]!;
  const step = ms[nd - 1]!;
  const rows = out.length / last;
  const idx = new Array<number>(nd).fill(0);
  let mOff = 0;
  for (let r = 0, o = 0; r < rows; r++, o += last) {
    for (let j = 0; j < last; j++) out[o + j] = mask[mOff + j * step] !== 0 ? value : x[o + j]!;
    for (let d = nd - 2; d >= 0; d--) {
      mOff += ms[d]!;
      if (++idx[d]! < shape[d]!) break;
      mOff -= ms[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

/**
 * Materialises `src` (shape `shape`) broadcast to `outShape`. Walks the output once with an
 * odometer over all but the last dim; `rowStart`/`rowEnd` restrict it to those outer rows
 * (the rows of `outShape` without its last dim), for splitting over threads.
 */
export function expandKernel(src: Float32Array, shape: readonly number[], outShape: readonly number[], out: Float32Array, rowStart = 0, rowEnd = outerRows(outShape)): void {
  const nd = outShape.length;
  if (nd === 0) {
    out[0] = src[0]!;
    return;
  }
  const inner = outShape[nd - 1]!;
  const [o0, o1] = [rowStart * inner, rowEnd * inner];
  if (expandIsCopy(shape, outShape)) {
    // Same element count: only size-1 dims were added, the layout is unchanged.
    out.set(src.subarray(o0, o1), o0);
    return;
  }
  if (sizeOf(shape) === 1) {
    out.fill(src[0]!, o0, o1);
    return;
  }
  const st = broadcastStrides(shape, outShape);
  const sInner = st[nd - 1]!;
  const idx = new Array<number>(nd).fill(0);
  let base = odometerAt(rowStart, outShape, idx, st)[0]!;
  let o = o0;
  const rowCopy = sInner === 1 && inner >= 64;
  for (let r = rowStart; r < rowEnd; r++) {
    if (rowCopy) {
      out.set(src.subarray(base, base + inner), o);
      o += inner;
    } else {
      for (let j = 0, p = base; j < inner; j++, p += sInner) out[o++] = src[p]!;
    }
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      base += st[d]!;
      if (idx[d]! < outShape[d]!) break;
      base -= st[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
}

/** Whether broadcasting `shape` to `outShape` only copies (both hold the same number of elements). */
export function expandIsCopy(shape: readonly number[], outShape: readonly number[]): boolean {
  return sizeOf(shape) === sizeOf(outShape);
}

/** Sums `g` (shape `gShape`) down to `target` (broadcast-compatible, fewer or size-1 dims). */
export function sumToShape(g: Float32Array, gShape: readonly number[], target: readonly number[]): Float32Array {
  if (sameShape(gShape, target)) return g;
  const out = new Float32Array(sizeOf(target));
  const st = broadcastStrides(target, gShape);
  const nd = gShape.length;
  const inner = nd === 0 ? 1 : gShape[nd - 1]!;
  const sInner = nd === 0 ? 0 : st[nd - 1]!;
  const outer = inner === 0 ? 0 : g.length / inner;
  const idx = new Array<number>(nd).fill(0);
  const acc = new Float64Array(out.length);
  let base = 0;
  let q = 0;
  for (let r = 0; r < outer; r++) {
    for (let j = 0, p = base; j < inner; j++, p += sInner) acc[p] += g[q++]!;
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      base += st[d]!;
      if (idx[d]! < gShape[d]!) break;
      base -= st[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
  for (let i = 0; i < out.length; i++) out[i] = acc[i]!;
  return out;
}

/**
 * out = src with dims reordered: out.shape[i] = shape[perm[i]]. Walks the output once with an
 * odometer over all but its last dim; `rowStart`/`rowEnd` restrict it to those outer rows (the
 * rows of the output shape without its last dim), for splitting over threads. Each output
 * element is a plain copy, so any split gives the same bits.
 */
export function permuteKernel(src: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array, rowStart = 0, rowEnd = outerRows(perm.map((a) => shape[a]!))): void {
  const nd = shape.length;
  const st = stridesOf(shape);
  const outShape = perm.map((a) => shape[a]!);
  const srcStride = perm.map((a) => st[a]!);
  if (out.length === 0 || rowEnd <= rowStart) return;
  if (nd === 0) {
    out[0] = src[0]!;
    return;
  }
  const inner = outShape[nd - 1]!;
  const sInner = srcStride[nd - 1]!;
  const idx = new Array<number>(nd).fill(0);
  let base = odometerAt(rowStart, outShape, idx, srcStride)[0]!;
  let o = rowStart * inner;
  for (let r = rowStart; r < rowEnd; r++) {
    for (let j = 0, q = base; j < inner; j++, q += sInner) out[o++] = src[q]!;
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      base += srcStride[d]!;
      if (idx[d]! < outShape[d]!) break;
      base -= srcStride[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
}

/** `count` contiguous blocks of `width` elements, each at its own stride in src and dst. */
export function copyBlocks(src: Float32Array, srcOff: number, srcStride: number, dst: Float32Array, dstOff: number, dstStride: number, width: number, count: number): void {
  for (let i = 0; i < count; i++) dst.set(src.subarray(srcOff + i * srcStride, srcOff + i * srcStride + width), dstOff + i * dstStride);
}

/** out[i, :] = weight[ids[i], :]. */
export function gatherRows(weight: Float32Array, dim: number, ids: Int32Array, out: Float32Array, i0 = 0, i1 = ids.length): void {
  for (let i = i0; i < i1; i++) out.set(weight.subarray(ids[i]! * dim, (ids[i]! + 1) * dim), i * dim);
}

/** gw[ids[i], c] += g[i, c] for columns c in [c0, c1), rows i in order (so any column split gives the same bits). */
export function scatterAddRows(g: Float32Array, ids: Int32Array, dim: number, gw: Float32Array, c0 = 0, c1 = dim): void {
  for (let i = 0; i < ids.length; i++) {
    const o = ids[i]! * dim;
    const r = i * dim;
    for (let j = c0; j < c1; j++) gw[o + j] += g[r + j]!;
  }
}
