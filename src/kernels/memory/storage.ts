/**
 * Tensor storage. Buffers large enough that an op may hand them to the worker pool or a wasm
 * kernel (SHARED_MIN_ELEMENTS and up) are blocks of the tensor arena (./arena.ts): one shared
 * WebAssembly.Memory that workers hold and wasm kernels import, so both use a tensor in place.
 * Small ones stay on ordinary memory, which is cheaper to allocate.
 *
 * Arena blocks are recycled: when a block's Float32Array becomes unreachable, a
 * FinalizationRegistry returns it to the free list of its size class (4 classes per power of
 * two, so the next step's slightly different batch reuses it), and the next allocation of that
 * class (or of one or two classes below it) takes it, zeroed (allocF32) or as it is
 * (allocF32Uninit, for outputs written in full). Fresh memory costs a page fault per 4 KiB on
 * first touch (~1 ms per MB on the 2-core machine), while the same shapes recur every step.
 * Registry callbacks run between tasks, and also right after each pressure collection
 * (./shared-gc.ts), so a loop that never yields gets its blocks back too. Past NMGRAD_ARENA_MB of
 * arena (an engine without the synchronous drain would otherwise fill it in such a loop), tensors fall back to plain
 * SharedArrayBuffers, recycled by exact size (registration stops after RECYCLE_WINDOW_BYTES in a
 * loop that never yields). The rule this puts on callers: never keep a tensor's `.buffer` (or a
 * view of it) longer than the Float32Array it came from.
 *
 * Inside an owner scope (the backward sweep) blocks are also remembered by their view, so code
 * that knows a buffer is dead — a consumed gradient, a kernel's scratch — gives it back at once
 * with `releaseOwned`, without waiting for a collection.
 */
import { totalmem } from 'node:os';
import { AllocationError, fmtShape } from '../../errors.js';
import { SHARED_GC_BUDGET_BYTES, collectIfPending, forgiveSharedBytes, noteSharedBytes, recyclingRegistry } from './shared-gc.js';
import { arenaBuffer, arenaBump, arenaMemory, arenaUsedBytes } from './arena.js';

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
const poolCounts = { fresh: 0, reused: 0, returned: 0, released: 0 };

const recycler = recyclingRegistry<SharedArrayBuffer>((sab) => {
  registeredSinceCallback = 0;
  const bytes = sab.byteLength;
  if (pooledBytes + bytes > POOL_MAX_BYTES) return;
  let list = freeBuffers.get(bytes);
  if (list === undefined) freeBuffers.set(bytes, (list = []));
  list.push(sab);
  pooledBytes += bytes;
  poolCounts.returned++;
});

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
  const fromArena = arenaAlloc(n, zero);
  if (fromArena !== null) return fromArena;
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

/**
 * Arena blocks come in 4 size classes per power of two (at most 25% slack), so tensors of
 * nearby shapes — batches differ in length from step to step — reuse each other's blocks.
 */
export function arenaClassBytes(bytes: number): number {
  const e = Math.floor(Math.log2(bytes));
  const step = 2 ** Math.max(e - 2, 6);
  return Math.ceil(bytes / step) * step;
}

/** Freed arena blocks of each class (byte addresses); never shrunk, the arena keeps its size. */
const arenaFree = new Map<number, number[]>();
/** Bytes of the blocks on the free lists. */
let arenaFreeBytes = 0;
/** Arena blocks whose views died, waiting to be returned (see the recycler below). */
const arenaRecycler = recyclingRegistry<number>((held) => returnBlock(held));

/** Puts a block back on its class's free list; held = address · CLASS_SLOTS + class index (one number, so the registry holds no object). */
function returnBlock(held: number): void {
  const cls = held % CLASS_SLOTS;
  pushFree((held - cls) / CLASS_SLOTS, classBytesOf[cls]!);
  poolCounts.returned++;
}

function pushFree(at: number, bytes: number): void {
  let list = arenaFree.get(bytes);
  if (list === undefined) arenaFree.set(bytes, (list = []));
  list.push(at);
  arenaFreeBytes += bytes;
}

/**
 * Free memory merged out of the class lists: address-ordered (start, bytes) pairs, adjacent ones
 * joined. A request that finds no block of its class (or the two above it) is cut from the
 * smallest run that holds it; the block comes back to its class's list when it dies. Without
 * this a block only ever served its own class and the two above it, so a long decode, whose
 * batches meet ever new shapes, grew the arena by every class it met while hundreds of MB sat on
 * the lists of others.
 */
let runs: number[] = [];
let runBytes = 0;
/** poolCounts.returned + released at the last merge: with nothing returned since, a merge finds nothing new. */
let mergedAt = -1;

function cutRun(bytes: number): number | undefined {
  let best = -1;
  for (let r = 0; r < runs.length; r += 2) {
    const len = runs[r + 1]!;
    if (len >= bytes && (best < 0 || len < runs[best + 1]!)) {
      best = r;
      if (len === bytes) break;
    }
  }
  if (best < 0) return undefined;
  const at = runs[best]!;
  if (runs[best + 1] === bytes) runs.splice(best, 2);
  else {
    runs[best] = at + bytes;
    runs[best + 1] = runs[best + 1]! - bytes;
  }
  runBytes -= bytes;
  return at;
}

/** Moves every block on the class lists into the runs, joining neighbours. */
function mergeFreeLists(): void {
  const pairs = runs;
  for (const [b, list] of arenaFree) for (const at of list) pairs.push(at, b);
  arenaFree.clear();
  arenaFreeBytes = 0;
  const order = Array.from({ length: pairs.length / 2 }, (_v, i) => i).sort((x, y) => pairs[2 * x]! - pairs[2 * y]!);
  runs = [];
  runBytes = 0;
  for (const i of order) {
    const at = pairs[2 * i]!;
    const b = pairs[2 * i + 1]!;
    const n = runs.length;
    if (n > 0 && runs[n - 2]! + runs[n - 1]! === at) runs[n - 1] = runs[n - 1]! + b;
    else runs.push(at, b);
    runBytes += b;
  }
  mergedAt = poolCounts.returned + poolCounts.released;
}

/** A block of `bytes` cut from free memory of any class, or undefined (the arena must grow). Runs only when no block of the class is free. */
function coalesceFor(bytes: number): number | undefined {
  const at = cutRun(bytes);
  if (at !== undefined || arenaFreeBytes + runBytes < bytes || mergedAt === poolCounts.returned + poolCounts.released) return at;
  mergeFreeLists();
  return cutRun(bytes);
}

/**
 * Owned storage: while an owner scope is open (the backward sweep opens one), every arena
 * block handed out is remembered with its block, and `releaseOwned` may give it back at
 * once instead of when the collector finds its view dead. Only the code that allocated a
 * buffer, and knows no other reference to it survives, may release it.
 */
let ownerDepth = 0;
const owned = new WeakMap<Float32Array, number>();

/** Opens an owner scope (scopes nest); close it with the function returned. */
export function openOwnerScope(): () => void {
  ownerDepth++;
  let open = true;
  return () => {
    if (open) ownerDepth--;
    open = false;
  };
}

/** Runs `alloc()` inside an owner scope: for a buffer its op keeps private until it hands it on as a gradient. */
export function allocOwned(alloc: () => Float32Array): Float32Array {
  const close = openOwnerScope();
  try {
    return alloc();
  } finally {
    close();
  }
}

/**
 * Returns `a`'s arena block to the free lists now, if `a` was allocated in an owner scope and
 * not released before; false (and nothing done) otherwise. The caller guarantees that nothing
 * reads or writes `a`, or any view of its buffer, afterwards: the block's next owner gets it.
 * With NMGRAD_POISON_UNINIT=1 the block is filled with NaN, so a use after release shows up.
 */
export function releaseOwned(a: Float32Array): boolean {
  const held = owned.get(a);
  // Without unregister the collector would return the block a second time later.
  if (held === undefined || arenaRecycler?.unregister === undefined) return false;
  owned.delete(a);
  arenaRecycler.unregister(a);
  if (poisonUninit()) a.fill(Number.NaN);
  returnBlock(held);
  forgiveSharedBytes(a.length * 4);
  poolCounts.released++;
  return true;
}
/** Class sizes met so far, by index (the recycler's held value carries the index, not the size). */
const classBytesOf: number[] = [];
const classIndex = new Map<number, number>();
const CLASS_SLOTS = 4096;

/**
 * A quarter of the machine's memory, at most 3.5 GiB (the arena's 4 GiB limit less room for
 * scratch): a training step's tensors come back one to three steps after they die, so the arena
 * holds about three steps' worth (~0.8 GB for the `small` preset, ~2 GB for `base`).
 */
function defaultArenaMiB(): number {
  return Math.min(3584, Math.floor(totalmem() / 2 ** 20 / 4));
}

/** Most bytes of the arena that tensors take before fresh ones go to plain shared memory (NMGRAD_ARENA_MB, default defaultArenaMiB()). */
let budget: number | null = null;
/** Overrides the arena budget (null: back to NMGRAD_ARENA_MB); 0 sends every fresh tensor to plain shared memory. */
export function setArenaBudgetBytes(bytes: number | null): void {
  budget = bytes;
}
function arenaBudgetBytes(): number {
  if (budget !== null) return budget;
  const raw = process.env.NMGRAD_ARENA_MB;
  const mb = raw === undefined || raw === '' ? defaultArenaMiB() : Number(raw);
  if (!Number.isFinite(mb) || mb < 0) throw new AllocationError('alloc', `NMGRAD_ARENA_MB must be a non-negative number of MiB, got '${raw}'`);
  return (budget = mb * 2 ** 20);
}

function classOf(bytes: number): number | undefined {
  let cls = classIndex.get(bytes);
  if (cls === undefined) {
    if (classBytesOf.length >= CLASS_SLOTS) return undefined;
    cls = classBytesOf.length;
    classBytesOf.push(bytes);
    classIndex.set(bytes, cls);
  }
  return cls;
}

/** Larger classes a request may take a free block from (each up to 25% larger than the last). */
const CLASSES_UP = 2;

/**
 * Growth guard: before the arena takes fresh memory from its top, it runs a collection to get
 * back the blocks that died since the last one, if at least max(NMGRAD_GC_MB, ⅔ of the arena)
 * bytes were allocated since then (at most SHARED_GC_BUDGET_BYTES, the collection every
 * allocation brings on anyway). The arena then settles near three times its live data instead
 * of growing by everything that dies between two budget collections, and by every size class
 * that the batches of a long decode happen to meet (wasm memory never shrinks). A large arena
 * (a `small` or `base` training run) sees no more collections than before.
 */
const GROWTH_GC_FRACTION = 2 / 3;
let growthGcMin: number | null = null;
function growthGcBytes(): number {
  if (growthGcMin === null) {
    const raw = process.env.NMGRAD_GC_MB;
    const mb = raw === undefined || raw.trim() === '' ? 128 : Number(raw);
    if (!Number.isFinite(mb) || mb < 0) throw new AllocationError('alloc', `NMGRAD_GC_MB must be a non-negative number of MiB, got '${raw}'`);
    growthGcMin = mb * 2 ** 20;
  }
  return Math.min(SHARED_GC_BUDGET_BYTES, Math.max(growthGcMin, arenaUsedBytes() * GROWTH_GC_FRACTION));
}

/** A free block of class `bytes`, else of the next classes up (shapes vary a little from step to step). */
function takeFree(bytes: number): { at: number; bytes: number } | undefined {
  for (let up = 0, b = bytes; up <= CLASSES_UP; up++, b = arenaClassBytes(b + 1)) {
    const at = arenaFree.get(b)?.pop();
    if (at !== undefined) {
      arenaFreeBytes -= b;
      return { at, bytes: b };
    }
  }
  return undefined;
}

function arenaAlloc(n: number, zero: boolean): Float32Array | null {
  if (arenaRecycler === null || arenaMemory() === null) return null;
  // A free block, else (after a collection, if one is due) a free block, else a fresh one from the top.
  let bytes = arenaClassBytes(n * 4);
  let free = takeFree(bytes);
  if (free === undefined && collectIfPending(growthGcBytes())) free = takeFree(bytes);
  let at: number | undefined;
  if (free !== undefined) ({ at, bytes } = free);
  const cls = classOf(bytes);
  if (cls === undefined) return null;
  let fresh = false;
  if (at === undefined) {
    // Past the budget, fresh blocks come from plain shared memory that the collector frees:
    // a loop that never yields (the recycler runs between tasks) would otherwise fill the arena.
    if (arenaUsedBytes() + bytes > arenaBudgetBytes()) return null;
    at = coalesceFor(bytes);
    if (at === undefined) {
      at = arenaBump(bytes);
      if (at < 0) return null;
      fresh = true;
      poolCounts.fresh++;
    } else poolCounts.reused++;
  } else poolCounts.reused++;
  const a = new Float32Array(arenaBuffer(), at, n);
  // Memory just taken from the top was never written: it is still zero.
  if (zero && !fresh) a.fill(0);
  const held = at * CLASS_SLOTS + cls;
  if (ownerDepth > 0) {
    // The view doubles as its unregister token (held weakly), for releaseOwned.
    owned.set(a, held);
    arenaRecycler.register(a, held, a);
  } else arenaRecycler.register(a, held);
  return a;
}

/**
 * A copy of `v` in the arena, for handing a small plain array to the workers without a
 * SharedArrayBuffer of its own (arena operands travel as offsets): `view` is the copy, `hold`
 * owns its block (keep it reachable while `view` is in use). null where the arena cannot take it.
 */
export function arenaCopy<T extends Float32Array | Int32Array | Uint8Array>(v: T): { view: T; hold: Float32Array } | null {
  const hold = arenaAlloc(Math.max(1, Math.ceil(v.byteLength / 4)), false);
  if (hold === null) return null;
  const Ctor = v.constructor as new (b: ArrayBufferLike, offset: number, length: number) => T;
  const view = new Ctor(hold.buffer, hold.byteOffset, v.length);
  view.set(v as never);
  return { view, hold };
}

/** Counts of fresh and reused shared float32 allocations, bytes now pooled, and pooled buffers of `bytes` (for tests and benches). */
export function storagePoolStats(bytes = 0): { fresh: number; reused: number; returned: number; released: number; pooledBytes: number; pooledOfSize: number; arenaFreeBytes: number } {
  return { ...poolCounts, pooledBytes, pooledOfSize: freeBuffers.get(bytes)?.length ?? 0, arenaFreeBytes: arenaFreeBytes + runBytes };
}

/** Drops every pooled buffer (their memory goes back at the next collection). */
export function clearStoragePool(): void {
  freeBuffers.clear();
  pooledBytes = 0;
}

export function isShared(a: Float32Array): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

/** The arena block under each arena-backed Int32Array: reachable exactly as long as the view. */
const i32Blocks = new WeakMap<Int32Array, Float32Array>();

/**
 * Int32 counterpart of allocF32 (index arrays handed to workers), zero-filled. Large ones live
 * in the arena like tensors, so a job carries them as offsets through the mailbox (a
 * SharedArrayBuffer of their own would need a message per job); else plain shared memory.
 */
export function allocI32(n: number, shape?: readonly number[]): Int32Array {
  if (n < SHARED_MIN_ELEMENTS) return allocating('int32', n, shape, () => new Int32Array(n));
  return allocating('int32', n, shape, () => {
    const block = arenaAlloc(n, true);
    if (block !== null) {
      const view = new Int32Array(block.buffer, block.byteOffset, n);
      i32Blocks.set(view, block);
      return view;
    }
    noteSharedBytes(n * 4);
    return new Int32Array(new SharedArrayBuffer(n * 4));
  });
}
