/**
 * Emits the wasm SIMD module of the row kernels whose cost is an exponential per element:
 * softmax / log-softmax over the vocabulary and over attention scores, their backward, and the
 * cross-entropy backward. Rows are stored with a stride `cp` that is a multiple of 4 (the
 * caller pads each row: −∞ for logits / log-probabilities, 0 for gradients), so every loop is
 * whole f32x4 vectors.
 *
 * exp is the Cephes single-precision scheme, four lanes at once: n = round(x·log2 e),
 * r = x − n·ln 2 (in two parts), exp r by a degree-5 polynomial plus 1 + r, times 2ⁿ built in
 * the exponent bits. Inputs below −87.34 (2⁻¹²⁶) give exactly 0, so masked scores (−∞) vanish;
 * NaN stays NaN. Relative error ≈ 1–2 ulp against Math.exp (tested).
 *
 * Sums are four lane partials combined as (l0 + l1) + (l2 + l3) at the end of a row: one fixed
 * f32 sequence per row, so a row's result does not depend on which thread computes it.
 *
 * Exports (byte addresses; `rows`, `cp` in elements):
 * - `expRows(x, out, rows, cp, stats)`: stats[2r] = max of row r (0 if −∞), stats[2r+1] =
 *   Σ exp(x − max); out (if non-zero) = exp(x − max).
 * - `shiftRows(x, out, rows, cp, shift)`: out = x − shift[r] (log-softmax once shift = max + log Σ).
 * - `scaleRows(out, rows, cp, scale)`: out ×= scale[r] (softmax once scale = 1/Σ).
 * - `logSoftmaxBackward(y, dy, dx, rows, cp)`: dx = dy − exp(y)·Σ dy.
 * - `softmaxBackward(y, dy, dx, rows, cp)`: dx = y·(dy − Σ dy·y).
 * - `rowSums(x, out, rows, cp)`: out[r] = Σ of row r (f32, four vector accumulators).
 * - `expAffine(x, out, n, a, b)`: out = (exp(x) − a)·b over n elements (n a multiple of 4):
 *   the cross-entropy backward before its target and ignored-row fix-ups.
 * - `restride(src, dst, rows, from, to, pad)`: rows of `from` floats stored back to back at
 *   src → rows of stride `to` (the next multiple of 4) at dst, lanes [from, to) set to `pad`.
 *   Whole v128 copies, so it reads up to 3 floats past the last source row.
 * - `compact(src, dst, rows, from, to)`: the reverse (stride `from` → rows of `to` floats back
 *   to back), row by row in order; it writes up to 3 floats past the last destination row.
 *   Both replace a per-row typed-array copy in JS, which costs more than the kernel on short
 *   rows (attention over ~25 keys).
 */
import { ARENA_IMPORT } from '../memory/arena.js';
import { emitRowSum } from './map-norm.js';
import { F32, I32, ModuleBuilder, V128, emitHsum, type FunctionBuilder, type Local } from './assembler.js';

const EXP_LO = -87.33654; // ln 2⁻¹²⁶
const EXP_HI = 88.37626;
const LOG2E = 1.44269504088896341;
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
const POLY = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];

/** 1.5·2²³ and its bit pattern. */
const ROUND_MAGIC = 12582912;
const ROUND_MAGIC_BITS = 0x4b400000;

const splat = (v: number): [number, number, number, number] => [v, v, v, v];

/**
 * outs[k] = exp of the v128 in xs[k] (4 lanes each), the vectors' instructions interleaved step
 * by step: one exp is a chain of ~25 dependent operations, and independent chains side by side
 * let the core overlap them. Each lane's result is the same sequence of f32 operations however
 * many vectors go together.
 */
function emitExpInto(f: FunctionBuilder, xs: readonly Local[], outs: readonly Local[]): void {
  const ts = xs.map(() => f.local(V128));
  const ns = xs.map(() => f.local(V128));
  const x2s = xs.map(() => f.local(V128));
  const each = (body: (k: number) => void): void => xs.forEach((_, k) => body(k));
  // t = clamp(x); n = nearest(t·log2 e); t = r = t − n·ln2_hi − n·ln2_lo
  // pmax / pmin are one maxps / minps each on x64 (max / min are ~8 instructions, for their NaN
  // and ±0 rules); a NaN x passes through both (x < LO and HI < x are false) and stays NaN.
  each((k) => f.get(xs[k]!).f32x4Const(splat(EXP_LO)).op('f32x4.pmax').f32x4Const(splat(EXP_HI)).op('f32x4.pmin').set(ts[k]!));
  // Rounding by the magic constant 1.5·2²³ (round-to-nearest-even, like f32x4.nearest, for
  // |t·log2 e| < 2²²): n lies in the low mantissa bits of v = t·log2 e + 1.5·2²³, as an integer
  // bits(v) − bits(1.5·2²³), and as a float v − 1.5·2²³. V8 has no single x64 instruction for
  // i32x4.trunc_sat_f32x4_s, so taking n from the bits is the cheaper way to 2ⁿ.
  each((k) => f.get(ts[k]!).f32x4Const(splat(LOG2E)).op('f32x4.mul').f32x4Const(splat(ROUND_MAGIC)).op('f32x4.add').set(ns[k]!));
  each((k) => f.get(ns[k]!).f32x4Const(splat(ROUND_MAGIC)).op('f32x4.sub').set(x2s[k]!));
  each((k) => {
    f.get(ts[k]!).get(x2s[k]!).f32x4Const(splat(LN2_HI)).op('f32x4.mul').op('f32x4.sub');
    f.get(x2s[k]!).f32x4Const(splat(LN2_LO)).op('f32x4.mul').op('f32x4.sub').set(ts[k]!);
  });
  // polynomial p(r), Horner (p in x2, now free)
  each((k) => f.f32x4Const(splat(POLY[0]!)).set(x2s[k]!));
  for (let i = 1; i < POLY.length; i++) each((k) => f.get(x2s[k]!).get(ts[k]!).op('f32x4.mul').f32x4Const(splat(POLY[i]!)).op('f32x4.add').set(x2s[k]!));
  // y = p·r² + r + 1
  each((k) => f.get(x2s[k]!).get(ts[k]!).get(ts[k]!).op('f32x4.mul').op('f32x4.mul').get(ts[k]!).op('f32x4.add').f32x4Const(splat(1)).op('f32x4.add').set(x2s[k]!));
  // × 2ⁿ: ((n + 127) << 23) as f32 bits, n + 127 = bits(v) − bits(1.5·2²³) + 127
  each((k) => f.get(x2s[k]!).get(ns[k]!).i32Const(127 - ROUND_MAGIC_BITS).op('i32x4.splat').op('i32x4.add').i32Const(23).op('i32x4.shl').op('f32x4.mul').set(x2s[k]!));
  // lanes with x < EXP_LO (−∞ included) become +0; NaN compares false and stays NaN
  each((k) => f.get(x2s[k]!).get(xs[k]!).f32x4Const(splat(EXP_LO)).op('f32x4.lt').op('v128.andnot').set(outs[k]!));
}

/** `for` over the rows, with `at` = byte offset of the row start (r·cp·4) and `end` = at + cp·4. */
function forRows(f: FunctionBuilder, rows: Local, cp: Local, at: Local, end: Local, body: (r: Local) => void): void {
  const r = f.local(I32);
  const rowBytes = f.local(I32);
  f.get(cp).i32Const(2).op('i32.shl').set(rowBytes);
  f.forRange(r, 0, rows, 1, () => {
    f.get(r).get(rowBytes).op('i32.mul').tee(at).get(rowBytes).op('i32.add').set(end);
    body(r);
  });
}

/** Vectors whose exps one loop iteration computes side by side (emitExpInto). */
const EXP_WAYS = 6;

/**
 * Over one row's bytes [at, end): body(EXP_WAYS) at j, j + 16, … while that many vectors fit,
 * then body(1) for each vector left; vectors in order, so sums over them keep their order.
 */
function forVecGroups(f: FunctionBuilder, j: Local, at: Local, end: Local, body: (vectors: number) => void): void {
  const last = f.local(I32);
  f.get(end).i32Const(16 * (EXP_WAYS - 1)).op('i32.sub').set(last);
  f.get(at).set(j);
  f.block((exit) => {
    f.loop((top) => {
      f.get(j).get(last).op('i32.ge_s').brIf(exit);
      body(EXP_WAYS);
      f.get(j).i32Const(16 * EXP_WAYS).op('i32.add').set(j);
      f.br(top);
    });
  });
  f.forRange(j, j, end, 16, () => body(1));
}

/** `for (j = at; j < end; j += 16)` over one row's bytes. */
function forVec(f: FunctionBuilder, j: Local, at: Local, end: Local, body: () => void): void {
  f.forRange(j, at, end, 16, body);
}

function emitExpRows(f: FunctionBuilder): void {
  const [x, out, rows, cp, stats] = f.params as Local[];
  const at = f.local(I32);
  const end = f.local(I32);
  const j = f.local(I32);
  const v = f.local(V128);
  const acc = f.local(V128);
  const d = Array.from({ length: EXP_WAYS }, () => f.local(V128));
  const e = Array.from({ length: EXP_WAYS }, () => f.local(V128));
  const mx = f.local(F32);
  forRows(f, rows!, cp!, at, end, (r) => {
    f.f32x4Const(splat(-Infinity)).set(acc);
    forVec(f, j, at, end, () => {
      // pmax (one maxps) skips a NaN where max would keep it; a row with a NaN still comes out
      // all NaN, through its sum of exps.
      f.get(acc).get(x!).get(j).op('i32.add').mem('v128.load').op('f32x4.pmax').set(acc);
    });
    f.get(acc).lane('f32x4.extract_lane', 0).get(acc).lane('f32x4.extract_lane', 1).op('f32.max');
    f.get(acc).lane('f32x4.extract_lane', 2).get(acc).lane('f32x4.extract_lane', 3).op('f32.max').op('f32.max').set(mx);
    // a fully masked row: shift by 0, so its exps are 0 rather than NaN from −∞ − (−∞)
    f.get(mx).f32Const(-Infinity).op('f32.eq').if(() => {
      f.f32Const(0).set(mx);
    });
    f.get(mx).op('f32x4.splat').set(v);
    f.f32x4Const(splat(0)).set(acc);
    forVecGroups(f, j, at, end, (w) => {
      for (let k = 0; k < w; k++) f.get(x!).get(j).op('i32.add').mem('v128.load', 16 * k).get(v).op('f32x4.sub').set(d[k]!);
      emitExpInto(f, d.slice(0, w), e.slice(0, w));
      for (let k = 0; k < w; k++) f.get(acc).get(e[k]!).op('f32x4.add').set(acc);
      f.get(out!).if(() => {
        for (let k = 0; k < w; k++) f.get(out!).get(j).op('i32.add').get(e[k]!).mem('v128.store', 16 * k);
      });
    });
    f.get(stats!).get(r).i32Const(3).op('i32.shl').op('i32.add').get(mx).mem('f32.store');
    f.get(stats!).get(r).i32Const(3).op('i32.shl').op('i32.add');
    emitHsum(f, acc);
    f.mem('f32.store', 4);
  });
}

/** out = x (op) perRow[r] for op sub (shift) or mul (scale, in place when x = out). */
function emitPerRow(f: FunctionBuilder, op: 'f32x4.sub' | 'f32x4.mul', inPlace: boolean): void {
  const params = f.params as Local[];
  const [x, out, rows, cp, perRow] = inPlace ? [params[0]!, params[0]!, params[1]!, params[2]!, params[3]!] : (params as [Local, Local, Local, Local, Local]);
  const at = f.local(I32);
  const end = f.local(I32);
  const j = f.local(I32);
  const s = f.local(V128);
  forRows(f, rows, cp, at, end, (r) => {
    f.get(perRow).get(r).i32Const(2).op('i32.shl').op('i32.add').mem('v128.load32_splat').set(s);
    forVec(f, j, at, end, () => {
      f.get(out).get(j).op('i32.add');
      f.get(x).get(j).op('i32.add').mem('v128.load').get(s).op(op);
      f.mem('v128.store');
    });
  });
}

function emitSoftmaxBackward(f: FunctionBuilder, log: boolean): void {
  const [y, dy, dx, rows, cp] = f.params as Local[];
  const at = f.local(I32);
  const end = f.local(I32);
  const j = f.local(I32);
  const acc = f.local(V128);
  const s = f.local(V128);
  const yv = Array.from({ length: EXP_WAYS }, () => f.local(V128));
  const e = Array.from({ length: EXP_WAYS }, () => f.local(V128));
  forRows(f, rows!, cp!, at, end, () => {
    f.f32x4Const(splat(0)).set(acc);
    forVec(f, j, at, end, () => {
      f.get(acc).get(dy!).get(j).op('i32.add').mem('v128.load');
      if (!log) f.get(y!).get(j).op('i32.add').mem('v128.load').op('f32x4.mul');
      f.op('f32x4.add').set(acc);
    });
    emitHsum(f, acc);
    f.op('f32x4.splat').set(s);
    if (log) {
      // dy − exp(y)·s
      forVecGroups(f, j, at, end, (w) => {
        for (let k = 0; k < w; k++) f.get(y!).get(j).op('i32.add').mem('v128.load', 16 * k).set(yv[k]!);
        emitExpInto(f, yv.slice(0, w), e.slice(0, w));
        for (let k = 0; k < w; k++) {
          f.get(dx!).get(j).op('i32.add');
          f.get(dy!).get(j).op('i32.add').mem('v128.load', 16 * k).get(e[k]!).get(s).op('f32x4.mul').op('f32x4.sub');
          f.mem('v128.store', 16 * k);
        }
      });
    } else {
      // y·(dy − s)
      forVec(f, j, at, end, () => {
        f.get(dx!).get(j).op('i32.add');
        f.get(y!).get(j).op('i32.add').mem('v128.load');
        f.get(dy!).get(j).op('i32.add').mem('v128.load').get(s).op('f32x4.sub').op('f32x4.mul');
        f.mem('v128.store');
      });
    }
  });
}

function emitExpAffine(f: FunctionBuilder): void {
  const [x, out, count, a, b] = f.params as Local[];
  const j = f.local(I32);
  const end = f.local(I32);
  const va = f.local(V128);
  const vb = f.local(V128);
  const xv = Array.from({ length: EXP_WAYS }, () => f.local(V128));
  const e = Array.from({ length: EXP_WAYS }, () => f.local(V128));
  const zero = f.local(I32);
  f.get(a!).op('f32x4.splat').set(va);
  f.get(b!).op('f32x4.splat').set(vb);
  f.get(count!).i32Const(2).op('i32.shl').set(end);
  forVecGroups(f, j, zero, end, (w) => {
    for (let k = 0; k < w; k++) f.get(x!).get(j).op('i32.add').mem('v128.load', 16 * k).set(xv[k]!);
    emitExpInto(f, xv.slice(0, w), e.slice(0, w));
    for (let k = 0; k < w; k++) {
      f.get(out!).get(j).op('i32.add');
      f.get(e[k]!).get(va).op('f32x4.sub').get(vb).op('f32x4.mul');
      f.mem('v128.store', 16 * k);
    }
  });
}

/**
 * Copies `rows` rows from stride `from` floats to stride `to` floats, in order, as whole v128s:
 * ⌈max(from, to) / 4⌉ of them per row (the wider stride is the padded one, a multiple of 4).
 * `after(d, fromBytes, toBytes)` runs after each row with d = the destination row's address.
 */
function emitRowCopy(f: FunctionBuilder, after: (d: Local, fromBytes: Local, toBytes: Local) => void): void {
  const [src, dst, rows, from, to] = f.params as Local[];
  const [fromBytes, toBytes, bytes, r, j, sAt, dAt] = Array.from({ length: 7 }, () => f.local(I32));
  f.get(from!).i32Const(2).op('i32.shl').set(fromBytes);
  f.get(to!).i32Const(2).op('i32.shl').set(toBytes);
  f.get(fromBytes).get(toBytes).get(fromBytes).get(toBytes).op('i32.gt_u').op('select').set(bytes);
  f.forRange(r, 0, rows!, 1, () => {
    f.get(src!).get(r).get(fromBytes).op('i32.mul').op('i32.add').set(sAt);
    f.get(dst!).get(r).get(toBytes).op('i32.mul').op('i32.add').set(dAt);
    f.forRange(j, 0, bytes, 16, () => {
      f.get(dAt).get(j).op('i32.add');
      f.get(sAt).get(j).op('i32.add').mem('v128.load', 0, 0);
      f.mem('v128.store', 0, 0);
    });
    after(dAt, fromBytes, toBytes);
  });
}

function emitRestride(f: FunctionBuilder): void {
  const pad = f.params[5] as Local;
  const [k, end] = [f.local(I32), f.local(I32)];
  emitRowCopy(f, (d, fromBytes, toBytes) => {
    // the lanes past the row's end came from the next source row: overwrite them with pad
    f.get(d).get(toBytes).op('i32.add').set(end);
    f.get(d).get(fromBytes).op('i32.add').set(k);
    f.forRange(k, k, end, 4, () => {
      f.get(k).get(pad).mem('f32.store', 0, 0);
    });
  });
}

/** out[r] = Σ of row r's cp elements (f32, emitRowSum's four vector accumulators and fold). */
function emitRowSums(f: FunctionBuilder): void {
  const [x, out, rows, cp] = f.params as Local[];
  const at = f.local(I32);
  const end = f.local(I32);
  const j = f.local(I32);
  const rowBytes = f.local(I32);
  f.get(cp!).i32Const(2).op('i32.shl').set(rowBytes);
  forRows(f, rows!, cp!, at, end, (r) => {
    f.get(out!).get(r).i32Const(2).op('i32.shl').op('i32.add');
    // rows are padded to whole vectors: no scalar tail
    emitRowSum(f, j, rowBytes, rowBytes, (jj, off) => void f.get(x!).get(at).op('i32.add').get(jj).op('i32.add').mem('v128.load', off), () => void f.f32Const(0));
    f.mem('f32.store');
  });
}

export function buildRowsModule(): Uint8Array {
  const m = new ModuleBuilder().importMemory(ARENA_IMPORT);
  m.func('rowSums', [I32, I32, I32, I32], [], emitRowSums);
  m.func('expRows', [I32, I32, I32, I32, I32], [], emitExpRows);
  m.func('shiftRows', [I32, I32, I32, I32, I32], [], (f) => emitPerRow(f, 'f32x4.sub', false));
  m.func('scaleRows', [I32, I32, I32, I32], [], (f) => emitPerRow(f, 'f32x4.mul', true));
  m.func('logSoftmaxBackward', [I32, I32, I32, I32, I32], [], (f) => emitSoftmaxBackward(f, true));
  m.func('softmaxBackward', [I32, I32, I32, I32, I32], [], (f) => emitSoftmaxBackward(f, false));
  m.func('expAffine', [I32, I32, I32, F32, F32], [], emitExpAffine);
  m.func('restride', [I32, I32, I32, I32, I32, F32], [], emitRestride);
  m.func('compact', [I32, I32, I32, I32, I32], [], (f) => emitRowCopy(f, () => {}));
  return m.toBytes();
}
