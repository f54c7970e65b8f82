/**
 * Tensor storage. Buffers large enough that an op may hand them to the worker pool live on
 * a SharedArrayBuffer, so workers read and write them in place with no copy; small ones stay
 * on ordinary memory, which is cheaper to allocate.
 */
export const SHARED_MIN_ELEMENTS = 2048;

export function allocF32(n: number): Float32Array {
  if (n >= SHARED_MIN_ELEMENTS) return new Float32Array(new SharedArrayBuffer(n * 4));
  return new Float32Array(n);
}

export function isShared(a: Float32Array): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

/** Int32 counterpart of allocF32 (index arrays handed to workers). */
export function allocI32(n: number): Int32Array {
  if (n >= SHARED_MIN_ELEMENTS) return new Int32Array(new SharedArrayBuffer(n * 4));
  return new Int32Array(n);
}
