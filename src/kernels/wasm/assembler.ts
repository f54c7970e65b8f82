/**
 * A small WebAssembly assembler: nmgrad emits its wasm kernels from TypeScript at run time, so
 * no binary and no toolchain live in the repository. A ModuleBuilder holds the type, import,
 * function, memory, export and code sections; a FunctionBuilder writes one body with named
 * locals and structured control flow whose branch targets are label objects, not hand-counted
 * depths. The builder only checks what it can check cheaply (immediates, balanced blocks,
 * label scope); WebAssembly.validate checks the rest.
 */
import { ByteWriter, F32, I32, V128, VALTYPE_NAMES, WasmAssemblyError, type ValType } from './encoding.js';
import { LANE_OPS, MEMORY_OPS, MISC_PREFIX, OP, PLAIN_OPS, SIMD_PREFIX, type LaneOp, type MemoryOp, type PlainOp } from './opcodes.js';

export interface Local {
  readonly index: number;
  readonly type: ValType;
}

/** A branch target handed to the body of block/loop/if; valid only while that body runs. */
export interface Label {
  readonly kind: 'block' | 'loop' | 'if';
}

/** An i32 operand: a local's value or a constant. */
export type I32Operand = Local | number;

const EMPTY_BLOCK = 0x40;

export class FunctionBuilder {
  readonly params: readonly Local[];
  private readonly code = new ByteWriter();
  private readonly localTypes: ValType[] = [];
  private readonly labels: Label[] = [];
  private finished = false;

  constructor(
    readonly name: string,
    paramTypes: readonly ValType[],
  ) {
    this.params = paramTypes.map((type, index) => ({ index, type }));
  }

  /** Declares a fresh local of `type`. */
  local(type: ValType): Local {
    const l = { index: this.params.length + this.localTypes.length, type };
    this.localTypes.push(type);
    return l;
  }

  op(name: PlainOp): this {
    const entry = PLAIN_OPS[name];
    if (entry === undefined) throw new WasmAssemblyError(`wasm.${this.name}`, `unknown op '${String(name)}'`);
    return this.prefixed(entry[0], entry[1]);
  }

  /** A load or store at `offset` bytes past the address on the stack, natural alignment by default. */
  mem(name: MemoryOp, offset = 0, alignLog2?: number): this {
    const entry = MEMORY_OPS[name];
    if (entry === undefined) throw new WasmAssemblyError(`wasm.${this.name}`, `unknown memory op '${String(name)}'`);
    const align = alignLog2 ?? entry[2];
    if (!Number.isInteger(align) || align < 0 || align > entry[2]) {
      throw new WasmAssemblyError(`wasm.${this.name}`, `${name}: alignment 2^${align} exceeds the natural 2^${entry[2]}`);
    }
    this.prefixed(entry[0], entry[1]);
    this.code.u32(align).u32(offset);
    return this;
  }

  lane(name: LaneOp, laneIndex: number): this {
    const [code, lanes] = LANE_OPS[name];
    if (!Number.isInteger(laneIndex) || laneIndex < 0 || laneIndex >= lanes) {
      throw new WasmAssemblyError(`wasm.${this.name}`, `${name}: lane ${laneIndex} is outside [0, ${lanes})`);
    }
    this.prefixed(SIMD_PREFIX, code);
    this.code.byte(laneIndex);
    return this;
  }

  /** i8x16.shuffle of the two v128 on the stack; `lanes` picks 16 bytes from their concatenation. */
  shuffle(lanes: readonly number[]): this {
    if (lanes.length !== 16 || lanes.some((l) => !Number.isInteger(l) || l < 0 || l > 31)) {
      throw new WasmAssemblyError(`wasm.${this.name}`, `i8x16.shuffle needs 16 byte lanes in [0, 32), got [${lanes.join(', ')}]`);
    }
    this.prefixed(SIMD_PREFIX, OP.i8x16Shuffle);
    this.code.bytes(lanes);
    return this;
  }

  /** Shuffle that broadcasts f32 lane `laneIndex` of the v128 on the stack to all four lanes. */
  splatLane(laneIndex: number): this {
    if (!Number.isInteger(laneIndex) || laneIndex < 0 || laneIndex > 3) throw new WasmAssemblyError(`wasm.${this.name}`, `splatLane: lane ${laneIndex} is outside [0, 4)`);
    const bytes: number[] = [];
    for (let i = 0; i < 4; i++) for (let b = 0; b < 4; b++) bytes.push(laneIndex * 4 + b);
    this.get(this.scratchV128()); // shuffle takes two operands; the second is unused
    return this.shuffle(bytes);
  }

  private scratch: Local | null = null;
  private scratchV128(): Local {
    this.scratch ??= this.local(V128);
    return this.scratch;
  }

  i32Const(v: number): this {
    this.code.byte(OP.i32Const).s32(v);
    return this;
  }

  f32Const(v: number): this {
    this.code.byte(OP.f32Const).f32(v);
    return this;
  }

  v128Const(bytes: readonly number[]): this {
    if (bytes.length !== 16) throw new WasmAssemblyError(`wasm.${this.name}`, `v128.const needs 16 bytes, got ${bytes.length}`);
    this.prefixed(SIMD_PREFIX, OP.v128Const);
    this.code.bytes(bytes.map((b) => b & 0xff));
    return this;
  }

  f32x4Const(lanes: readonly [number, number, number, number]): this {
    return this.v128Const(Array.from(new Uint8Array(Float32Array.from(lanes).buffer)));
  }

  get(l: Local): this {
    this.checkLocal(l);
    this.code.byte(OP.localGet).u32(l.index);
    return this;
  }

  set(l: Local): this {
    this.checkLocal(l);
    this.code.byte(OP.localSet).u32(l.index);
    return this;
  }

  tee(l: Local): this {
    this.checkLocal(l);
    this.code.byte(OP.localTee).u32(l.index);
    return this;
  }

  /** Pushes an i32 operand: a local's value or a constant. */
  push(v: I32Operand): this {
    return typeof v === 'number' ? this.i32Const(v) : this.get(v);
  }

  call(funcIndex: number): this {
    this.code.byte(OP.call).u32(funcIndex);
    return this;
  }

  memorySize(): this {
    this.code.byte(OP.memorySize).byte(0);
    return this;
  }

  memoryGrow(): this {
    this.code.byte(OP.memoryGrow).byte(0);
    return this;
  }

  /** memory.copy(dst, src, bytes) from the stack (bulk memory). */
  memoryCopy(): this {
    this.prefixed(MISC_PREFIX, OP.memoryCopy);
    this.code.byte(0).byte(0);
    return this;
  }

  /** memory.fill(dst, byteValue, bytes) from the stack (bulk memory). */
  memoryFill(): this {
    this.prefixed(MISC_PREFIX, OP.memoryFill);
    this.code.byte(0);
    return this;
  }

  block(body: (end: Label) => void, result?: ValType): this {
    return this.structured(OP.block, 'block', body, result);
  }

  /** A loop; branching to its label jumps back to the top. */
  loop(body: (top: Label) => void, result?: ValType): this {
    return this.structured(OP.loop, 'loop', body, result);
  }

  /** Pops an i32 condition; runs `then` if non-zero, else `otherwise`. */
  if(then: (end: Label) => void, otherwise?: (end: Label) => void, result?: ValType): this {
    const label: Label = { kind: 'if' };
    this.code.byte(OP.if).byte(result ?? EMPTY_BLOCK);
    this.labels.push(label);
    then(label);
    if (otherwise) {
      this.code.byte(OP.else);
      otherwise(label);
    }
    this.popLabel(label);
    this.code.byte(OP.end);
    return this;
  }

  br(label: Label): this {
    this.code.byte(OP.br).u32(this.depth(label));
    return this;
  }

  /** Pops an i32 condition; branches to `label` if non-zero. */
  brIf(label: Label): this {
    this.code.byte(OP.brIf).u32(this.depth(label));
    return this;
  }

  /**
   * `for (i = start; i < end; i += step) body()` over signed i32s; `end` and `step` are read on
   * every iteration (a local step must stay positive).
   */
  forRange(i: Local, start: I32Operand, end: I32Operand, step: I32Operand, body: () => void): this {
    if (typeof step === 'number' && (!Number.isInteger(step) || step <= 0)) throw new WasmAssemblyError(`wasm.${this.name}`, `forRange: step must be a positive integer, got ${step}`);
    this.push(start).set(i);
    return this.block((exit) => {
      this.loop((top) => {
        this.get(i).push(end).op('i32.ge_s').brIf(exit);
        body();
        this.get(i).push(step).op('i32.add').set(i);
        this.br(top);
      });
    });
  }

  /** The function body as the code section stores it: locals then instructions then `end`. */
  encode(): Uint8Array {
    if (this.labels.length !== 0) throw new WasmAssemblyError(`wasm.${this.name}`, `${this.labels.length} block(s) left open`);
    if (!this.finished) {
      this.code.byte(OP.end);
      this.finished = true;
    }
    const groups: [number, ValType][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const out = new ByteWriter().u32(groups.length);
    for (const [count, type] of groups) out.u32(count).byte(type);
    out.bytes(this.code.view());
    return out.toBytes();
  }

  private prefixed(prefix: number, code: number): this {
    if (this.finished) throw new WasmAssemblyError(`wasm.${this.name}`, 'the body was already encoded');
    if (prefix >= 0) this.code.byte(prefix).u32(code);
    else this.code.byte(code);
    return this;
  }

  private structured(opcode: number, kind: Label['kind'], body: (label: Label) => void, result?: ValType): this {
    const label: Label = { kind };
    this.code.byte(opcode).byte(result ?? EMPTY_BLOCK);
    this.labels.push(label);
    body(label);
    this.popLabel(label);
    this.code.byte(OP.end);
    return this;
  }

  private popLabel(label: Label): void {
    if (this.labels.pop() !== label) throw new WasmAssemblyError(`wasm.${this.name}`, 'unbalanced block nesting');
  }

  private depth(label: Label): number {
    const at = this.labels.lastIndexOf(label);
    if (at < 0) throw new WasmAssemblyError(`wasm.${this.name}`, `branch to a ${label.kind} label outside its scope`);
    return this.labels.length - 1 - at;
  }

  private checkLocal(l: Local): void {
    if (l.index >= this.params.length + this.localTypes.length) throw new WasmAssemblyError(`wasm.${this.name}`, `local ${l.index} (${VALTYPE_NAMES[l.type]}) belongs to another function`);
  }
}

export interface MemoryLimits {
  /** Pages of 64 KiB. */
  initial: number;
  maximum?: number;
  /** Shared memories (threads) need a maximum. */
  shared?: boolean;
}

interface FuncEntry {
  typeIndex: number;
  builder: FunctionBuilder;
  exported: boolean;
}

export class ModuleBuilder {
  private readonly types: string[] = [];
  private readonly typeBytes: Uint8Array[] = [];
  private readonly funcs: FuncEntry[] = [];
  private memoryImport: { module: string; name: string; limits: MemoryLimits } | null = null;
  private ownMemory: { limits: MemoryLimits; exportAs: string | null } | null = null;

  /** Imports the module's memory as `module.name` (default `env.memory`). */
  importMemory(limits: MemoryLimits, module = 'env', name = 'memory'): this {
    this.checkMemory(limits);
    this.memoryImport = { module, name, limits };
    return this;
  }

  /** Defines the module's own memory, optionally exported under `exportAs`. */
  defineMemory(limits: MemoryLimits, exportAs: string | null = 'memory'): this {
    this.checkMemory(limits);
    this.ownMemory = { limits, exportAs };
    return this;
  }

  /**
   * Adds a function; `build` receives its builder (params are `f.params`). Exported under
   * `name` unless `exported` is false. Names are unique; `indexOf(name)` gives the index `call` takes.
   */
  func(name: string, params: readonly ValType[], results: readonly ValType[], build: (f: FunctionBuilder) => void, exported = true): this {
    if (this.funcs.some((e) => e.builder.name === name)) throw new WasmAssemblyError('wasm.module', `function '${name}' is defined twice`);
    const builder = new FunctionBuilder(name, params);
    build(builder);
    this.funcs.push({ typeIndex: this.typeIndex(params, results), builder, exported });
    return this;
  }

  /** Index of a function added earlier, for `call`. */
  indexOf(name: string): number {
    const i = this.funcs.findIndex((e) => e.builder.name === name);
    if (i < 0) throw new WasmAssemblyError('wasm.module', `no function named '${name}'`);
    return i;
  }

  toBytes(): Uint8Array {
    const out = new ByteWriter().bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const section = (id: number, write: (s: ByteWriter) => void): void => {
      const s = new ByteWriter();
      write(s);
      out.byte(id).sized(s);
    };
    section(1, (s) => {
      s.u32(this.typeBytes.length);
      for (const t of this.typeBytes) s.bytes(t);
    });
    if (this.memoryImport) {
      const imp = this.memoryImport;
      section(2, (s) => {
        s.u32(1).name(imp.module).name(imp.name).byte(0x02);
        writeLimits(s, imp.limits);
      });
    }
    section(3, (s) => {
      s.u32(this.funcs.length);
      for (const f of this.funcs) s.u32(f.typeIndex);
    });
    if (this.ownMemory) {
      const own = this.ownMemory;
      section(5, (s) => writeLimits(s.u32(1), own.limits));
    }
    section(7, (s) => {
      const exports: [string, number, number][] = [];
      this.funcs.forEach((f, i) => {
        if (f.exported) exports.push([f.builder.name, 0x00, i]);
      });
      if (this.ownMemory?.exportAs) exports.push([this.ownMemory.exportAs, 0x02, 0]);
      s.u32(exports.length);
      for (const [name, kind, index] of exports) s.name(name).byte(kind).u32(index);
    });
    section(10, (s) => {
      s.u32(this.funcs.length);
      for (const f of this.funcs) s.sized(new ByteWriter().bytes(f.builder.encode()));
    });
    return out.toBytes();
  }

  private typeIndex(params: readonly ValType[], results: readonly ValType[]): number {
    const key = `${params.join(',')}->${results.join(',')}`;
    let i = this.types.indexOf(key);
    if (i < 0) {
      i = this.types.length;
      this.types.push(key);
      this.typeBytes.push(new ByteWriter().byte(0x60).u32(params.length).bytes(params).u32(results.length).bytes(results).toBytes());
    }
    return i;
  }

  private checkMemory(limits: MemoryLimits): void {
    if (this.memoryImport || this.ownMemory) throw new WasmAssemblyError('wasm.module', 'a module has at most one memory');
    const { initial, maximum, shared } = limits;
    const bad = !Number.isInteger(initial) || initial < 0 || initial > 65536 || (maximum !== undefined && (!Number.isInteger(maximum) || maximum < initial || maximum > 65536));
    if (bad) throw new WasmAssemblyError('wasm.module', `memory limits must be pages in [0, 65536] with initial ≤ maximum, got initial ${initial}, maximum ${maximum}`);
    if (shared && maximum === undefined) throw new WasmAssemblyError('wasm.module', 'a shared memory needs a maximum');
  }
}

function writeLimits(s: ByteWriter, { initial, maximum, shared }: MemoryLimits): void {
  if (maximum === undefined) s.byte(0x00).u32(initial);
  else s.byte(shared ? 0x03 : 0x01).u32(initial).u32(maximum);
}

export { F32, I32, V128 };
export { F64, I64, WasmAssemblyError, type ValType } from './encoding.js';

/** Bytes of an i8x16.shuffle that picks f32 lanes (0–3 first operand, 4–7 second). */
export function f32Lanes(lanes: readonly number[]): number[] {
  return lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
}

/**
 * First stage of a 4×4 f32 transpose of the rows in v: t0 = (v0[0], v1[0], v0[1], v1[1]),
 * t1 = (v0[2], v1[2], v0[3], v1[3]), t2 and t3 the same of v2, v3. t may reuse v's locals as long
 * as t0, t1 are not v2, v3 (t1 may be v1, t2 may be v0, t3 may be v3).
 */
export function transposeHalves(f: FunctionBuilder, v: readonly Local[], t: readonly Local[]): void {
  f.get(v[0]!).get(v[1]!).shuffle(f32Lanes([0, 4, 1, 5])).set(t[0]!);
  f.get(v[0]!).get(v[1]!).shuffle(f32Lanes([2, 6, 3, 7])).set(t[1]!);
  f.get(v[2]!).get(v[3]!).shuffle(f32Lanes([0, 4, 1, 5])).set(t[2]!);
  f.get(v[2]!).get(v[3]!).shuffle(f32Lanes([2, 6, 3, 7])).set(t[3]!);
}

/** Pushes column j of the 4×4 block whose halves transposeHalves left in t: (v0[j], v1[j], v2[j], v3[j]). */
export function transposedColumn(f: FunctionBuilder, t: readonly Local[], j: number): void {
  f.get(t[j < 2 ? 0 : 1]!).get(t[j < 2 ? 2 : 3]!).shuffle(f32Lanes(j % 2 === 0 ? [0, 1, 4, 5] : [2, 3, 6, 7]));
}

/** Pushes (l0 + l1) + (l2 + l3) of the f32x4 in `v`: the one lane order every horizontal sum uses. */
export function emitHsum(f: FunctionBuilder, v: Local): void {
  f.get(v).lane('f32x4.extract_lane', 0).get(v).lane('f32x4.extract_lane', 1).op('f32.add');
  f.get(v).lane('f32x4.extract_lane', 2).get(v).lane('f32x4.extract_lane', 3).op('f32.add');
  f.op('f32.add');
}

/** for j in [0, bytes) step 16: body(j). */
export function forBytes(f: FunctionBuilder, bytes: Local, body: (j: Local) => void): void {
  const j = f.local(I32);
  f.forRange(j, 0, bytes, 16, () => body(j));
}
