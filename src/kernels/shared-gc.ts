/**
 * Collection pressure for SharedArrayBuffer storage.
 *
 * V8 frees a SharedArrayBuffer's memory only when the garbage collector reclaims its wrapper
 * object, and it does not count that memory towards the pressure that starts a collection: a
 * wrapper is a few dozen bytes of heap, so a training step that allocates hundreds of MB of
 * shared tensors barely moves the heap and the memory piles up (several GB in a few steps).
 * Worker isolates hold the wrappers they received with each job until their own, rare,
 * collections. Fresh shared memory is also slow to allocate (page faults), whereas memory
 * freed by a collection is reused cheaply.
 *
 * So both sides count the shared bytes they take on and run a full collection once a budget
 * is passed. (A young-generation scavenge, or `gc({type: 'major'})`, measured no help here:
 * the wrappers of a step's graph are old by the time they die, and only the plain forced
 * collection released their memory in a synchronous training loop.)
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFn = () => void;

/** Bytes of shared storage taken on between two collections. */
export const SHARED_GC_BUDGET_BYTES = 256 * 2 ** 20;

let gcFn: GcFn | null | undefined;
let pending = 0;
let collections = 0;
let collectMs = 0;

function getGc(): GcFn | null {
  if (gcFn !== undefined) return gcFn;
  const existing = (globalThis as { gc?: GcFn }).gc;
  if (typeof existing === 'function') return (gcFn = existing);
  try {
    // A process-wide flag; only contexts created after it see `gc`, hence the fresh context.
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    gcFn = typeof fn === 'function' ? (fn as GcFn) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** Records `bytes` of newly held shared storage; collects once the budget is passed. */
export function noteSharedBytes(bytes: number): void {
  pending += bytes;
  if (pending < SHARED_GC_BUDGET_BYTES) return;
  pending = 0;
  const gc = getGc();
  if (gc === null) return;
  collections++;
  const t0 = performance.now();
  gc();
  collectMs += performance.now() - t0;
}

/** How many pressure collections this thread has run, and the milliseconds they took. */
export function sharedGcStats(): { collections: number; ms: number } {
  return { collections, ms: collectMs };
}
