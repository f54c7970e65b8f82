import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { F32, FunctionBuilder, I32, ModuleBuilder, V128, WasmAssemblyError, type MemoryLimits } from '../../../src/kernels/wasm/assembler.js';
import { ByteWriter } from '../../../src/kernels/wasm/encoding.js';
import { hasRelaxedSimd, hasSimd } from '../../../src/kernels/wasm/features.js';
import { wasmApi, type WasmMemory } from '../../../src/kernels/memory/wasm-runtime.js';
import { RUNS } from '../../helpers.js';

const api = wasmApi()!;

/** Validates and instantiates; every module a test builds goes through WebAssembly.validate. */
function instantiate(m: ModuleBuilder, memory?: WasmMemory): Record<string, (...args: number[]) => number> {
  const bytes = m.toBytes();
  expect(api.validate(bytes)).toBe(true);
  const inst = new api.Instance(new api.Module(bytes), memory ? { env: { memory } } : {});
  return inst.exports as Record<string, (...args: number[]) => number>;
}

const PAGE = 65536;
const f32 = fc.float({ noNaN: true, min: -1e6, max: 1e6 });
const f32x4 = fc.tuple(f32, f32, f32, f32);

/** A module with `in[0..4) op in[4..8) → out[8..12)` (f32 lanes) over an imported memory. */
function binaryLaneModule(op: 'f32x4.add' | 'f32x4.sub' | 'f32x4.mul' | 'f32x4.div' | 'f32x4.min' | 'f32x4.max', limits: MemoryLimits): ModuleBuilder {
  return new ModuleBuilder().importMemory(limits).func('run', [], [], (f) => {
    f.i32Const(32).i32Const(0).mem('v128.load').i32Const(16).mem('v128.load').op(op).mem('v128.store');
  });
}

describe('wasm encoding', () => {
  it('writes LEB128 as the spec examples do', () => {
    expect(Array.from(new ByteWriter().u32(624485).view())).toEqual([0xe5, 0x8e, 0x26]);
    expect(Array.from(new ByteWriter().u32(0).view())).toEqual([0]);
    expect(Array.from(new ByteWriter().u32(0xffffffff).view())).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(Array.from(new ByteWriter().s32(-123456).view())).toEqual([0xc0, 0xbb, 0x78]);
    expect(Array.from(new ByteWriter().s32(63).view())).toEqual([0x3f]);
    expect(Array.from(new ByteWriter().s32(64).view())).toEqual([0xc0, 0x00]);
    expect(Array.from(new ByteWriter().s32(-64).view())).toEqual([0x40]);
    expect(() => new ByteWriter().u32(-1)).toThrow(WasmAssemblyError);
    expect(() => new ByteWriter().s32(2 ** 33)).toThrow(/32-bit integer/);
  });

  it('i32.const round-trips every 32-bit value through the engine', () => {
    fc.assert(
      fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), (v) => {
        const ex = instantiate(new ModuleBuilder().func('k', [], [I32], (f) => void f.i32Const(v)));
        expect(ex.k!()).toBe(v);
      }),
      { numRuns: RUNS * 4 },
    );
  });
});

describe('wasm assembler: control flow and scalars', () => {
  it('loops, branches and locals compute what the same JS computes', () => {
    const m = new ModuleBuilder();
    // sum of i*i over i in [0, n) with odd i skipped, via forRange + if.
    m.func('sumEvenSquares', [I32], [I32], (f) => {
      const [n] = f.params;
      const i = f.local(I32);
      const acc = f.local(I32);
      f.forRange(i, 0, n!, 1, () => {
        f.get(i).i32Const(1).op('i32.and').op('i32.eqz');
        f.if(() => void f.get(acc).get(i).get(i).op('i32.mul').op('i32.add').set(acc));
      });
      f.get(acc);
    });
    // collatz steps with block/loop/br_if and if/else.
    m.func('collatz', [I32], [I32], (f) => {
      const [x] = f.params;
      const count = f.local(I32);
      f.block((done) => {
        f.loop((top) => {
          f.get(x!).i32Const(1).op('i32.le_s').brIf(done);
          f.get(x!).i32Const(1).op('i32.and');
          f.if(
            () => void f.get(x!).i32Const(3).op('i32.mul').i32Const(1).op('i32.add').set(x!),
            () => void f.get(x!).i32Const(1).op('i32.shr_s').set(x!),
          );
          f.get(count).i32Const(1).op('i32.add').set(count).br(top);
        });
      });
      f.get(count);
    });
    m.func('collatzTwice', [I32], [I32], (f) => void f.get(f.params[0]!).call(m.indexOf('collatz')).i32Const(2).op('i32.mul'));
    const ex = instantiate(m);
    const collatz = (x: number): number => {
      let c = 0;
      while (x > 1) {
        x = x & 1 ? 3 * x + 1 : x >> 1;
        c++;
      }
      return c;
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 10000 }), (n, x) => {
        let ref = 0;
        for (let i = 0; i < n; i += 2) ref += i * i;
        expect(ex.sumEvenSquares!(n)).toBe(ref | 0);
        expect(ex.collatz!(x)).toBe(collatz(x));
        expect(ex.collatzTwice!(x)).toBe(2 * collatz(x));
      }),
      { numRuns: RUNS * 4 },
    );
  });

  it('f32 scalar ops round like Math.fround', () => {
    const ex = instantiate(
      new ModuleBuilder().func('fma', [F32, F32, F32], [F32], (f) => {
        const [a, b, c] = f.params;
        f.get(a!).get(b!).op('f32.mul').get(c!).op('f32.add').f32Const(0.5).op('f32.max');
      }),
    );
    fc.assert(
      fc.property(f32, f32, f32, (a, b, c) => {
        const [fa, fb, fc_] = [Math.fround(a), Math.fround(b), Math.fround(c)];
        expect(ex.fma!(fa, fb, fc_)).toBe(Math.max(Math.fround(Math.fround(fa * fb) + fc_), 0.5));
      }),
      { numRuns: RUNS * 4 },
    );
  });
});

describe('wasm assembler: memory and v128', () => {
  it('probes: this engine has SIMD', () => {
    expect(hasSimd()).toBe(true);
  });

  for (const [label, limits] of [
    ['plain memory', { initial: 1 }],
    ['shared memory', { initial: 1, maximum: 1, shared: true }],
  ] as const) {
    it(`f32x4 add/sub/mul/div/min/max over an imported ${label} equal lane-wise JS`, () => {
      const memory = new api.Memory(limits);
      const view = new Float32Array(memory.buffer, 0, 12);
      const ops = ['f32x4.add', 'f32x4.sub', 'f32x4.mul', 'f32x4.div', 'f32x4.min', 'f32x4.max'] as const;
      const js: Record<(typeof ops)[number], (x: number, y: number) => number> = {
        'f32x4.add': (x, y) => x + y, 'f32x4.sub': (x, y) => x - y, 'f32x4.mul': (x, y) => x * y,
        'f32x4.div': (x, y) => x / y, 'f32x4.min': Math.min, 'f32x4.max': Math.max,
      };
      const runs = ops.map((op) => [op, instantiate(binaryLaneModule(op, limits), memory).run!] as const);
      fc.assert(
        fc.property(f32x4, f32x4, (x, y) => {
          for (const [op, run] of runs) {
            view.set(x, 0);
            view.set(y, 4);
            run();
            for (let l = 0; l < 4; l++) expect(view[8 + l]).toBe(Math.fround(js[op](view[l]!, view[4 + l]!)));
          }
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('splat, load32_splat, lane shuffles, extract/replace lane and v128.const', () => {
    const m = new ModuleBuilder().importMemory({ initial: 1 });
    m.func('splatSum', [F32], [F32], (f) => {
      // splat(x) + load32_splat(mem[4]) then sum of lanes: 4·(x + mem[4])
      f.get(f.params[0]!).op('f32x4.splat').i32Const(16).mem('v128.load32_splat').op('f32x4.add');
      const v = f.local(V128);
      f.set(v);
      for (let l = 0; l < 4; l++) {
        f.get(v).lane('f32x4.extract_lane', l);
        if (l > 0) f.op('f32.add');
      }
    });
    m.func('broadcastLane', [I32], [], (f) => {
      // out[8..12) = lane `l` of in[0..4), for a compile-time l chosen by the caller index
      for (let l = 0; l < 4; l++) {
        f.get(f.params[0]!).i32Const(l).op('i32.eq');
        f.if(() => void f.i32Const(32).i32Const(0).mem('v128.load').splatLane(l).mem('v128.store'));
      }
    });
    m.func('reverse', [], [], (f) => {
      const rev = [12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3];
      f.i32Const(32).i32Const(0).mem('v128.load').i32Const(0).mem('v128.load').shuffle(rev).mem('v128.store');
    });
    m.func('replaceThenScale', [F32], [], (f) => {
      f.i32Const(32).f32x4Const([1, 2, 3, 4]).get(f.params[0]!).lane('f32x4.replace_lane', 2);
      f.f32x4Const([0.5, 0.5, 0.5, 0.5]).op('f32x4.mul').mem('v128.store');
    });
    const memory = new api.Memory({ initial: 1 });
    const ex = instantiate(m, memory);
    const view = new Float32Array(memory.buffer, 0, 12);
    fc.assert(
      fc.property(f32x4, f32, fc.integer({ min: 0, max: 3 }), (x, s, lane) => {
        view.set(x, 0);
        const [fs, m4] = [Math.fround(s), view[4]!];
        const lanesum = Math.fround(fs + m4);
        expect(ex.splatSum!(fs)).toBe(Math.fround(Math.fround(Math.fround(lanesum + lanesum) + lanesum) + lanesum));
        ex.broadcastLane!(lane);
        expect(Array.from(view.subarray(8, 12))).toEqual(Array(4).fill(view[lane]));
        ex.reverse!();
        expect(Array.from(view.subarray(8, 12))).toEqual(Array.from(view.subarray(0, 4)).reverse());
        ex.replaceThenScale!(fs);
        expect(Array.from(view.subarray(8, 12))).toEqual([0.5, 1, Math.fround(fs * 0.5), 2]);
      }),
      { numRuns: RUNS },
    );
  });

  it('memory.copy / memory.fill / memory.size / memory.grow on a module-defined memory', () => {
    const m = new ModuleBuilder().defineMemory({ initial: 1, maximum: 4 });
    m.func('copy', [I32, I32, I32], [], (f) => void f.get(f.params[0]!).get(f.params[1]!).get(f.params[2]!).memoryCopy());
    m.func('fill', [I32, I32, I32], [], (f) => void f.get(f.params[0]!).get(f.params[1]!).get(f.params[2]!).memoryFill());
    m.func('grow', [I32], [I32], (f) => void f.get(f.params[0]!).memoryGrow());
    m.func('pages', [], [I32], (f) => void f.memorySize());
    const bytes = m.toBytes();
    expect(api.validate(bytes)).toBe(true);
    const inst = new api.Instance(new api.Module(bytes));
    const ex = inst.exports as Record<string, (...a: number[]) => number>;
    const mem = inst.exports.memory as WasmMemory;
    const u8 = new Uint8Array(mem.buffer);
    for (let i = 0; i < 64; i++) u8[i] = i;
    ex.copy!(100, 10, 20);
    expect(Array.from(u8.subarray(100, 120))).toEqual(Array.from({ length: 20 }, (_, i) => i + 10));
    ex.fill!(200, 7, 5);
    expect(Array.from(u8.subarray(199, 206))).toEqual([0, 7, 7, 7, 7, 7, 0]);
    expect(ex.pages!()).toBe(1);
    expect(ex.grow!(2)).toBe(1);
    expect(ex.pages!()).toBe(3);
    expect(mem.buffer.byteLength).toBe(3 * PAGE);
    expect(ex.grow!(5)).toBe(-1); // past the maximum
  });

  it('relaxed_madd: validates exactly where the probe says, and computes a·b + c (fused or not)', () => {
    const m = new ModuleBuilder().importMemory({ initial: 1 }).func('madd', [], [], (f) => {
      f.i32Const(48).i32Const(0).mem('v128.load').i32Const(16).mem('v128.load').i32Const(32).mem('v128.load').op('f32x4.relaxed_madd').mem('v128.store');
    });
    const bytes = m.toBytes();
    const relaxed = hasRelaxedSimd(); // first: on Node 20 the probe is what turns the engine's flag on
    expect(api.validate(bytes)).toBe(relaxed);
    if (!relaxed) return;
    const memory = new api.Memory({ initial: 1 });
    const ex = instantiate(m, memory);
    const view = new Float32Array(memory.buffer, 0, 16);
    fc.assert(
      fc.property(f32x4, f32x4, f32x4, (a, b, c) => {
        view.set(a, 0);
        view.set(b, 4);
        view.set(c, 8);
        ex.madd!();
        for (let l = 0; l < 4; l++) {
          const [x, y, z] = [view[l]!, view[4 + l]!, view[8 + l]!];
          expect([Math.fround(x * y + z), Math.fround(Math.fround(x * y) + z)]).toContain(view[12 + l]);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('wasm assembler: errors', () => {
  it('rejects bad immediates, labels out of scope and bad memory limits with a typed error', () => {
    const f = new FunctionBuilder('bad', []);
    expect(() => f.lane('f32x4.extract_lane', 4)).toThrow(/lane 4 is outside \[0, 4\)/);
    expect(() => f.shuffle([0, 1])).toThrow(/16 byte lanes/);
    expect(() => f.mem('f32.load', 0, 3)).toThrow(/exceeds the natural/);
    let escaped: Parameters<FunctionBuilder['br']>[0] | null = null;
    f.block((end) => {
      escaped = end;
    });
    expect(() => f.br(escaped!)).toThrow(/outside its scope/);
    expect(() => new ModuleBuilder().importMemory({ initial: 1, shared: true })).toThrow(/shared memory needs a maximum/);
    expect(() => new ModuleBuilder().importMemory({ initial: 4, maximum: 2 })).toThrow(WasmAssemblyError);
    expect(() => new ModuleBuilder().importMemory({ initial: 1 }).defineMemory({ initial: 1 })).toThrow(/at most one memory/);
    const m = new ModuleBuilder().func('x', [], [], () => {});
    expect(() => m.func('x', [], [], () => {})).toThrow(/defined twice/);
    const other = new FunctionBuilder('other', []);
    const foreign = other.local(I32);
    expect(() => new FunctionBuilder('mine', []).get(foreign)).toThrow(/belongs to another function/);
  });

  it('a stack-type mistake is caught by WebAssembly.validate, not silently emitted', () => {
    const m = new ModuleBuilder().func('wrong', [], [I32], (f) => void f.f32Const(1));
    expect(api.validate(m.toBytes())).toBe(false);
  });
});
