/**
 * Tensor storage. Buffers large enough that an op may hand them to the worker pool live on
 * a SharedArrayBuffer, so workers read and write them in place with no copy; small ones stay
 * on ordinary memory, which is cheaper to allocate.
 *
 * Shared float32 storage is recycled: fresh shared memory costs a page fault per 4 KiB on first
 * touch (measured ~1 ms per MB on the 2-core machine, more than most kernels spend on it),
 * while the same shapes recur every training step. When a buffer's Float32Array becomes
 * unreachable, a FinalizationRegistry returns its SharedArrayBuffer to a free list of its
 * exact byte size (up to POOL_MAX_BYTES in all), and the next allocation of that size takes it,
 * zeroed (allocF32) or as it is (allocF32Uninit, for outputs written in full). Registry
 * callbacks run between tasks, so the recycling happens in code that yields
 * to the event loop between steps (the translation example's training loop does); a loop that
 * never yields stops registering after RECYCLE_WINDOW_BYTES and allocates fresh buffers. The rule this puts on callers: never keep a
 * tensor's `.buffer` (or a view of it) longer than the Float32Array it came from.
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

/** Most bytes of shared buffers kept for reuse. */
export const POOL_MAX_BYTES = 256 * 2 ** 20;
/**
 * Most bytes registered for recycling between two runs of the registry's callbacks. The
 * registry holds a dead buffer until its callback runs, so code that does not yield (a long
 * synchronous decode, a benchmark loop) would otherwise keep every buffer it ever dropped.
 */
export const RECYCLE_WINDOW_BYTES = 512 * 2 ** 20;
let registeredSinceCallback = 0;

const freeBuffers = new Map<number, SharedArrayBuffer[]>();
let pooledBytes = 0;
const poolCounts = { fresh: 0, reused: 0, returned: 0 };

const recycler =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<SharedArrayBuffer>((sab) => {
        registeredSinceCallback = 0;
        const bytes = sab.byteLength;
        if (pooledBytes + bytes > POOL_MAX_BYTES) return;
        let list = freeBuffers.get(bytes);
        if (list === undefined) freeBuffers.set(bytes, (list = []));
        list.push(sab);
        pooledBytes += bytes;
        poolCounts.returned++;
      })
    : null;

export function allocF32(n: number, shape?: readonly number[]): Float32Array {
  return allocFloat(n, shape, true);
}

/**
 * Float32 storage whose contents are unspecified: for an output the caller writes in full before
 * anything reads it (it skips zeroing a recycled buffer). With NMGRAD_POISON_UNINIT=1 (the test
 * suite sets it) every such buffer starts as NaN, so a kernel that reads or leaves an element it
 * was meant to write shows up as NaN in the tests instead of as a stale value.
 */
export function allocF32Uninit(n: number, shape?: readonly number[]): Float32Array {
  const a = allocFloat(n, shape, false);
  if (poisonUninit()) a.fill(Number.NaN);
  return a;
}

let poison: boolean | null = null;
function poisonUninit(): boolean {
  poison ??= process.env.NMGRAD_POISON_UNINIT === '1';
  return poison;
}

function allocFloat(n: number, shape: readonly number[] | undefined, zero: boolean): Float32Array {
  if (n < SHARED_MIN_ELEMENTS) return allocating('float32', n, shape, () => new Float32Array(n));
  const bytes = n * 4;
  // Reused buffers count too: the collections they bring are what returns the last step's buffers.
  noteSharedBytes(bytes);
  const reused = freeBuffers.get(bytes)?.pop();
  let a: Float32Array;
  if (reused !== undefined) {
    pooledBytes -= bytes;
    poolCounts.reused++;
    a = new Float32Array(reused);
    if (zero) a.fill(0);
  } else {
    poolCounts.fresh++;
    a = allocating('float32', n, shape, () => new Float32Array(new SharedArrayBuffer(bytes)));
  }
  if (recycler !== null && registeredSinceCallback < RECYCLE_WINDOW_BYTES) {
    registeredSinceCallback += bytes;
    recycler.register(a, a.buffer as SharedArrayBuffer);
  }
  return a;
}

/** Counts of fresh and reused shared float32 allocations, bytes now pooled, and pooled buffers of `bytes` (for tests and benches). */
export function storagePoolStats(bytes = 0): { fresh: number; reused: number; returned: number; pooledBytes: number; pooledOfSize: number } {
  return { ...poolCounts, pooledBytes, pooledOfSize: freeBuffers.get(bytes)?.length ?? 0 };
}

/** Drops every pooled buffer (their memory goes back at the next collection). */
export function clearStoragePool(): void {
  freeBuffers.clear();
  pooledBytes = 0;
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
