/**
 * Binary encodings of the WebAssembly format: LEB128 integers, IEEE floats, names and
 * length-prefixed vectors. A growable byte buffer is all the assembler writes into.
 */
import { NmgradError } from '../../errors.js';

/** The wasm assembler was asked to emit something invalid (bad immediate, unbalanced block, ...). */
export class WasmAssemblyError extends NmgradError {}

export class ByteWriter {
  private buf = new Uint8Array(256);
  length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): this {
    this.reserve(1);
    this.buf[this.length++] = b & 0xff;
    return this;
  }

  bytes(bs: ArrayLike<number>): this {
    this.reserve(bs.length);
    this.buf.set(bs, this.length);
    this.length += bs.length;
    return this;
  }

  /** Unsigned LEB128 of a value in [0, 2^32). */
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new WasmAssemblyError('wasm.u32', `expected an integer in [0, 2^32), got ${v}`);
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }

  /** Signed LEB128 of a value in [-2^31, 2^32) (i32.const takes either signedness, as two's complement). */
  s32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw new WasmAssemblyError('wasm.s32', `expected a 32-bit integer, got ${v}`);
    let x = v | 0;
    for (;;) {
      const b = x & 0x7f;
      x >>= 7;
      const done = (x === 0 && (b & 0x40) === 0) || (x === -1 && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  f32(v: number): this {
    const tmp = new DataView(new ArrayBuffer(4));
    tmp.setFloat32(0, v, true);
    return this.bytes(new Uint8Array(tmp.buffer));
  }

  name(s: string): this {
    const utf8 = new TextEncoder().encode(s);
    return this.u32(utf8.length).bytes(utf8);
  }

  /** Appends `inner` prefixed by its byte length (sections, function bodies). */
  sized(inner: ByteWriter): this {
    return this.u32(inner.length).bytes(inner.view());
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  toBytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Value types. */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

export const VALTYPE_NAMES: Record<number, string> = { [I32]: 'i32', [I64]: 'i64', [F32]: 'f32', [F64]: 'f64', [V128]: 'v128' };
