/**
 * Typed access to the engine's WebAssembly object. TypeScript's ES2022 lib (the one nmgrad
 * compiles against, without DOM) declares no WebAssembly, so the few members nmgrad uses are
 * described here instead of pulling a DOM lib into every consumer's types.
 */
import { WorkerError } from '../../errors.js';

export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

export type WasmModule = object;

const PAGE = 65536;

/**
 * Grows `memory` to at least `bytes`; a refused grow becomes a WorkerError of `op` naming the
 * size and `what` it was for. Returns whether the buffer changed (views on it must be rebuilt).
 */
export function growMemory(memory: WasmMemory, bytes: number, op: string, what: () => string): boolean {
  if (bytes <= memory.buffer.byteLength) return false;
  try {
    memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
  } catch (e) {
    throw new WorkerError(op, `cannot grow wasm memory to ${bytes} bytes for ${what()} (${e instanceof Error ? e.message : String(e)})`);
  }
  return true;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports?: Record<string, Record<string, unknown>>) => WasmInstance;
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

/** The engine's WebAssembly namespace, or null where there is none. */
export function wasmApi(): WasmApi | null {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  return api !== undefined && typeof api.validate === 'function' ? api : null;
}

/** Whether the engine accepts `bytes` as a module (false where there is no WebAssembly at all). */
export function validates(bytes: Uint8Array): boolean {
  const api = wasmApi();
  if (api === null) return false;
  try {
    return api.validate(bytes);
  } catch {
    return false;
  }
}
