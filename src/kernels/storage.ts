/**
 * Tensor storage. Buffers large enough that an op may hand them to the worker pool live on
 * a SharedArrayBuffer, so workers read and write them in place with no copy; small ones stay
 * on ordinary memory, which is cheaper to allocate.
 */
import { AllocationError, fmtShape } from '../errors.js';
import { noteSharedBytes } from './shared-gc.js';

export const SHARED_MIN_ELEMENTS = 2048;

/** Runs an allocation; the engine's bare RangeError becomes an AllocationError with the size (and shape). */
function allocating<T>(kind: string, n: number, shape: readonly number[] | undefined, make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const what = shape ? `a tensor of shape ${fmtShape(shape)} (${n} ${kind} values` : `${n} ${kind} values (`;
    throw new AllocationError('alloc', `cannot allocate ${what}, ${(n * 4 / 2 ** 30).toFixed(2)} GiB): ${e.message}`);
  }
}

export function allocF32(n: number, shape?: readonly number[]): Float32Array {
  if (n < SHARED_MIN_ELEMENTS) return allocating('float32', n, shape, () => new Float32Array(n));
  noteSharedBytes(n * 4);
  return allocating('float32', n, shape, () => new Float32Array(new SharedArrayBuffer(n * 4)));
}

export function isShared(a: Float32Array): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

/** Int32 counterpart of allocF32 (index arrays handed to workers). */
export function allocI32(n: number, shape?: readonly number[]): Int32Array {
  if (n < SHARED_MIN_ELEMENTS) return allocating('int32', n, shape, () => new Int32Array(n));
  noteSharedBytes(n * 4);
  return allocating('int32', n, shape, () => new Int32Array(new SharedArrayBuffer(n * 4)));
}
