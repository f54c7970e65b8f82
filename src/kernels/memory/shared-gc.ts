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
 * is passed. Storage recycles blocks through FinalizationRegistry callbacks, which the engine
 * runs only between tasks, so a loop that never yields (a long synchronous decode, a benchmark
 * loop) would never get a block back: the registries made by `recyclingRegistry` are drained
 * right after each forced collection, synchronously (`cleanupSome`, where the engine has it).
 * (A young-generation scavenge, or `gc({type: 'major'})`, measured no help here:
 * the wrappers of a step's graph are old by the time they die, and only the plain forced
 * collection released their memory in a synchronous training loop.)
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFn = () => void;

/**
 * Bytes of shared storage taken on between two collections (less what came back without one,
 * forgiveSharedBytes). Each forced collection costs the main thread a full mark-compact (7–9 ms
 * for the `small` Transformer's heap on the 2-core machine), and a `small` training step leaves
 * ~150 MB of activations for the collector: at 512 MiB that is a collection every ~3 steps,
 * about 1.5% of a step (docs/wasm.md), for ~270 MB more arena than 256 MiB would hold.
 */
export const SHARED_GC_BUDGET_BYTES = 512 * 2 ** 20;

let gcFn: GcFn | null | undefined;

/** What storage needs of a FinalizationRegistry, plus the synchronous drain where available. */
export interface Registry<T> {
  register(target: object, held: T, unregisterToken?: object): void;
  unregister?: (token: object) => boolean;
  cleanupSome?: () => void;
}
type RegistryCtor = new <T>(callback: (held: T) => void) => Registry<T>;

const drained: Registry<never>[] = [];
/** The registry constructor (undefined until first asked), and whether its registries have `cleanupSome`. */
let registryCtor: RegistryCtor | null | undefined;
let drainable = false;

/**
 * The FinalizationRegistry of a fresh context made after turning on V8's
 * --harmony-weak-refs-with-cleanup-some (only contexts created after the flag get
 * `cleanupSome`), or the ordinary one where that fails; null where there is none.
 */
function getRegistryCtor(): RegistryCtor | null {
  if (registryCtor !== undefined) return registryCtor;
  registryCtor = typeof FinalizationRegistry === 'function' ? (FinalizationRegistry as unknown as RegistryCtor) : null;
  try {
    v8.setFlagsFromString('--harmony-weak-refs-with-cleanup-some');
    const ctor = vm.runInNewContext('FinalizationRegistry') as unknown;
    if (typeof ctor === 'function' && typeof (ctor as { prototype?: { cleanupSome?: unknown } }).prototype?.cleanupSome === 'function') {
      registryCtor = ctor as RegistryCtor;
      drainable = true;
    }
  } catch {
    // The ordinary registry: blocks come back between tasks only.
  }
  return registryCtor;
}

/**
 * A FinalizationRegistry whose callbacks also run synchronously after every pressure
 * collection (see above), not only between tasks. Null where the engine has no registry.
 */
export function recyclingRegistry<T>(callback: (held: T) => void): Registry<T> | null {
  const Ctor = getRegistryCtor();
  if (Ctor === null) return null;
  const r = new Ctor<T>(callback);
  if (drainable) drained.push(r as Registry<never>);
  return r;
}

/** Whether dead storage comes back within a synchronous loop (the engine has `cleanupSome`). */
export function recyclesSynchronously(): boolean {
  getRegistryCtor();
  return drainable;
}

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
  if (pending >= SHARED_GC_BUDGET_BYTES) collect();
}

/** A full collection, then the recycling registries' callbacks (false where there is no gc). */
function collect(): boolean {
  pending = 0;
  const gc = getGc();
  if (gc === null) return false;
  collections++;
  const t0 = performance.now();
  gc();
  for (const r of drained) r.cleanupSome!();
  collectMs += performance.now() - t0;
  return true;
}

/**
 * Collects now if at least `bytes` of shared storage were taken on since the last collection
 * (the arena calls this before it grows: storage.ts); returns whether it collected.
 */
export function collectIfPending(bytes: number): boolean {
  return pending >= bytes && collect();
}

/**
 * Takes back `bytes` noted earlier whose storage came back without a collection (released
 * explicitly by its only owner, see storage.ts releaseOwned): churn that needs no collection
 * does not bring one on.
 */
export function forgiveSharedBytes(bytes: number): void {
  pending = Math.max(0, pending - bytes);
}

/** How many pressure collections this thread has run, and the milliseconds they took. */
export function sharedGcStats(): { collections: number; ms: number } {
  return { collections, ms: collectMs };
}
