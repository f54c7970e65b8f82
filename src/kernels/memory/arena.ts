/**
 * The tensor arena: one shared `WebAssembly.Memory` that holds every large tensor buffer and
 * every thread's wasm scratch space.
 *
 * Why: the wasm kernels import this memory, so they read and write tensors where they lie
 * (a pointer is the view's byteOffset) instead of copying operands into a private memory and
 * results back out — those copies were about a quarter of a `small` training step's main
 * thread. Workers hold the same memory (handed over once, at pool start), so a dispatch names a
 * tensor by offset and length instead of cloning a SharedArrayBuffer per argument per job.
 *
 * Layout: bytes [0, 64) are control words (the bump pointer); allocations follow, 64-byte
 * aligned, never at address 0 (the kernels use 0 for "no operand"). Memory grows on demand up
 * to MAX_PAGES (4 GiB, the wasm32 limit); a shared memory never moves, so views made before a
 * grow stay valid (they only do not see the new bytes: `heap()` refreshes).
 *
 * Allocation is a bump pointer (atomic: workers take scratch from it too) plus, on the thread
 * that owns tensors, free lists per size class (storage.ts). Size classes are 4 per power of two,
 * so a tensor of a slightly different shape (batches vary step to step) reuses a freed block.
 * Where there is no WebAssembly, or the arena is full, storage falls back to plain
 * SharedArrayBuffers and the wasm kernels to their copying paths.
 */
import { AllocationError, WorkerError } from '../../errors.js';
import { wasmApi, type WasmInstance, type WasmMemory } from './wasm-runtime.js';

const PAGE = 65536;
/** 4 GiB: the most a wasm32 memory can address. Virtual only: pages cost memory once touched. */
export const MAX_PAGES = 65536;
/** Pages the arena starts with (growing later is cheap; this only avoids the first grows). */
const INITIAL_PAGES = 1024;
/** Allocation unit (bytes): keeps SIMD loads in one cache line and the bump pointer an Int32 of units. */
export const ARENA_ALIGN = 64;
/** Bytes past the top block that the memory always has (see arenaBump). */
const SLACK = 64;
/** Control word: the bump pointer, in ARENA_ALIGN units. */
const TOP = 0;

let memory: WasmMemory | null | undefined;
let ctrl: Int32Array | null = null;
let buffer: SharedArrayBuffer | null = null;
/** Every buffer object this thread has taken from the memory (one per size it has seen). */
const arenaBuffers = new WeakSet<object>();

function adopt(m: WasmMemory): void {
  memory = m;
  buffer = m.buffer as SharedArrayBuffer;
  arenaBuffers.add(buffer);
  ctrl = new Int32Array(buffer, 0, ARENA_ALIGN / 4);
}

/** The arena's memory (created on first use), or null where WebAssembly is missing or refuses a shared memory. */
export function arenaMemory(): WasmMemory | null {
  if (memory !== undefined) return memory;
  const api = wasmApi();
  if (api === null) return (memory = null);
  try {
    const m = new api.Memory({ initial: INITIAL_PAGES, maximum: MAX_PAGES, shared: true });
    adopt(m);
    Atomics.store(ctrl!, TOP, 1);
  } catch {
    memory = null;
  }
  return memory ?? null;
}

/** A worker takes the arena its pool was started with (before any kernel runs). */
export function attachArena(m: WasmMemory | null): void {
  if (m === null) memory = null;
  else adopt(m);
}

/** The memory's current buffer (refreshed after a grow by any thread). */
export function arenaBuffer(): SharedArrayBuffer {
  if (memory === null || memory === undefined) throw new Error('arena: no arena in this thread');
  const b = memory.buffer as SharedArrayBuffer;
  if (b !== buffer) {
    buffer = b;
    arenaBuffers.add(b);
  }
  return b;
}

/** Whether `view` lies in the arena (made by this thread from one of the memory's buffers). */
export function inArena(view: ArrayBufferView): boolean {
  return arenaBuffers.has(view.buffer);
}

/** The arena address of `view` (its byteOffset), or -1 if it is not in the arena. */
export function ptrOf(view: ArrayBufferView): number {
  return arenaBuffers.has(view.buffer) ? view.byteOffset : -1;
}

/**
 * Takes `bytes` (rounded up to ARENA_ALIGN) from the top of the arena, growing the memory as
 * needed; -1 when the arena is missing or would pass MAX_PAGES. Thread-safe.
 */
export function arenaBump(bytes: number): number {
  if (arenaMemory() === null || ctrl === null) return -1;
  const units = Math.ceil(bytes / ARENA_ALIGN);
  const start = Atomics.add(ctrl, TOP, units);
  // SLACK bytes past the block stay inside the memory: kernels may read a vector's worth past the
  // last element of an operand (never write), and the last block must not make that a trap.
  const end = (start + units) * ARENA_ALIGN + SLACK;
  if (end > MAX_PAGES * PAGE) {
    Atomics.sub(ctrl, TOP, units);
    return -1;
  }
  for (;;) {
    const have = memory!.buffer.byteLength;
    if (have >= end) break;
    try {
      memory!.grow(Math.ceil((end - have) / PAGE));
    } catch {
      // Another thread may have grown it meanwhile; if not, the engine refused.
      if (memory!.buffer.byteLength >= end) break;
      return -1;
    }
  }
  return start * ARENA_ALIGN;
}

/** Bytes taken from the arena so far (its high-water mark). */
export function arenaUsedBytes(): number {
  return ctrl === null ? 0 : Atomics.load(ctrl, TOP) * ARENA_ALIGN;
}

let scratchAt = 0;
let scratchBytes = 0;

/**
 * This thread's scratch region of at least `bytes` (packing buffers, staged operands): reused
 * call after call, replaced by a larger one when too small (the old one is left behind, so at
 * most about twice the largest request is spent). Throws when the arena cannot supply it.
 */
export function scratch(bytes: number, op: string, what?: () => string): number {
  if (bytes <= scratchBytes) return scratchAt;
  const want = Math.max(bytes, Math.ceil(scratchBytes * 1.5), 1 << 16);
  const at = arenaBump(want);
  if (at < 0) throw new AllocationError(op, `cannot take ${want} bytes of scratch${what ? ` for ${what()}` : ''} from the tensor arena (${arenaUsedBytes()} bytes in use, limit ${MAX_PAGES * PAGE})`);
  scratchAt = at;
  scratchBytes = Math.ceil(want / ARENA_ALIGN) * ARENA_ALIGN;
  return at;
}

/** Views on the arena, refreshed when the memory has grown past them. */
export function heapF32(): Float32Array {
  const b = arenaBuffer();
  if (f32 === null || f32.buffer !== b) f32 = new Float32Array(b);
  return f32;
}
export function heapI32(): Int32Array {
  const b = arenaBuffer();
  if (i32 === null || i32.buffer !== b) i32 = new Int32Array(b);
  return i32;
}
let f32: Float32Array | null = null;
let i32: Int32Array | null = null;

/** Memory limits a module declares to import the arena (`env.memory`). */
export const ARENA_IMPORT = { initial: 1, maximum: MAX_PAGES, shared: true } as const;

/** Compiles `bytes` (a module importing ARENA_IMPORT) and instantiates it on this thread's arena. */
export function instantiateOnArena(bytes: Uint8Array, op: string): WasmInstance {
  const api = wasmApi();
  const m = arenaMemory();
  if (api === null || m === null) throw new WorkerError(op, 'this runtime has no WebAssembly shared memory for the tensor arena');
  return new api.Instance(new api.Module(bytes), { env: { memory: m } });
}
