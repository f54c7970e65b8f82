/**
 * Emits the wasm SIMD module of the N:M sparse kernels. All three products (forward, dX and the
 * kept-position dW) are vectorised over the token dimension: with the activations transposed
 * so that one input feature's tokens are contiguous, a kept weight times that row is an axpy
 * (forward, dX) or a dot product (dW), four tokens per f32x4 lane group.
 *
 * - `spmm` (forward and dX): a block of T tokens of the activations, transposed to [features, T],
 *   stays in cache while every output row sums its entries in storage order; the T sums of a row
 *   live in T/4 v128 accumulators. The same kernel runs the weight's rows (forward) and the
 *   rows of its transpose (dX), so it takes a general CSR (row pointers, columns, values).
 * - `keptDot` (dW): each kept entry (o, c) is Σ_t dYᵀ[o, t]·Xᵀ[c, t] over a chunk of tokens;
 *   four entries of one weight row share each dYᵀ load.
 * - `transpose` / `transposeBias`: 4×4 shuffle transposes between token-major and
 *   feature-major layouts, the second adding a per-source-row bias on the way out.
 *
 * Every output element is one fixed sequence of f32 operations (entries in storage order, token
 * chunks in order) that depends neither on the token block a lane sits in nor on the rows a
 * thread owns, so results are bitwise identical for any thread count.
 */
import { ARENA_IMPORT } from '../memory/arena.js';
import { I32, ModuleBuilder, V128, transposeHalves, transposedColumn, type FunctionBuilder, type Local } from './assembler.js';

export interface NmKernelShape {
  /** v128 accumulators per output row in `spmm` (T = 4·tv tokens per block). */
  tv: number;
  /** Entries per `spmm` inner-loop iteration. */
  unroll: number;
  /** Kept entries of one weight row that share each dYᵀ load in `keptDot` (a multiple of 4). */
  ways: number;
  /** v128 steps per `keptDot` inner-loop iteration (1, 2 or 4: rows are padded to 16 tokens). */
  dotUnroll: number;
  /** Use f32x4.relaxed_madd (only where the engine validates it). */
  relaxed: boolean;
}

export const DEFAULT_NM_SHAPE: Omit<NmKernelShape, 'relaxed'> = { tv: 4, unroll: 2, ways: 4, dotUnroll: 2 };

/**
 * Exports (i32 arguments; addresses in bytes, strides in elements unless named *Bytes):
 * - `transpose(src, srcStride, dst, dstStride, rows, cols)`: dst[c, r] = src[r, c].
 * - `transposeBias(src, srcStride, dst, dstStride, rows, cols, bias)`: dst[c, r] = src[r, c] + bias[r].
 * - `spmm(xt, ptr, col, val, rows, yt)`: for each row i < rows, yt[i, 0..T) = Σ_e val[e]·xt[col[e], 0..T)
 *   over e in [ptr[i], ptr[i+1]), in that order; xt and yt are blocks of T-token rows.
 * - `keptDot(dyt, xt, rowBytes, rows, ranges, col, grad)`: grad[e] += Σ dyt[i]·xt[col[e]] over rows
 *   of rowBytes bytes (a multiple of 64), for e in [ranges[2i], ranges[2i+1]), i < rows.
 */
export function buildNmModule(shape: NmKernelShape): Uint8Array {
  const m = new ModuleBuilder().importMemory(ARENA_IMPORT);
  m.func('transpose', [I32, I32, I32, I32, I32, I32], [], (f) => emitTranspose(f, false));
  m.func('transposeBias', [I32, I32, I32, I32, I32, I32, I32], [], (f) => emitTranspose(f, true));
  m.func('spmm', [I32, I32, I32, I32, I32, I32], [], (f) => emitSpmm(f, shape));
  m.func('keptDot', [I32, I32, I32, I32, I32, I32, I32], [], (f) => emitKeptDot(f, shape));
  return m.toBytes();
}

/** acc = acc + a·b, fused or not at the engine's choice when relaxed. */
function madd(f: FunctionBuilder, relaxed: boolean, acc: Local, a: () => void, b: () => void): void {
  if (relaxed) {
    a();
    b();
    f.get(acc).op('f32x4.relaxed_madd');
  } else {
    f.get(acc);
    a();
    b();
    f.op('f32x4.mul').op('f32x4.add');
  }
  f.set(acc);
}


function emitTranspose(f: FunctionBuilder, addBias: boolean): void {
  const [src, srcStride, dst, dstStride, rows, cols, bias] = f.params as Local[];
  const r = f.local(I32);
  const c = f.local(I32);
  const sRow = f.local(I32);
  const dRow = f.local(I32);
  const rows4 = f.local(I32);
  const cols4 = f.local(I32);
  const sp = f.local(I32);
  const dp = f.local(I32);
  const v = [0, 1, 2, 3].map(() => f.local(V128));
  const t = [0, 1, 2, 3].map(() => f.local(V128));
  const b = f.local(V128);
  f.get(srcStride!).i32Const(2).op('i32.shl').set(sRow);
  f.get(dstStride!).i32Const(2).op('i32.shl').set(dRow);
  f.get(rows!).i32Const(-4).op('i32.and').set(rows4);
  f.get(cols!).i32Const(-4).op('i32.and').set(cols4);

  f.forRange(r, 0, rows4, 4, () => {
    if (addBias) f.get(bias!).get(r).i32Const(2).op('i32.shl').op('i32.add').mem('v128.load', 0, 2).set(b);
    f.forRange(c, 0, cols4, 4, () => {
      f.get(src!).get(r).get(sRow).op('i32.mul').op('i32.add').get(c).i32Const(2).op('i32.shl').op('i32.add').set(sp);
      for (let i = 0; i < 4; i++) {
        f.get(sp).mem('v128.load', 0, 2).set(v[i]!);
        if (i < 3) f.get(sp).get(sRow).op('i32.add').set(sp);
      }
      transposeHalves(f, v, t);
      f.get(dst!).get(c).get(dRow).op('i32.mul').op('i32.add').get(r).i32Const(2).op('i32.shl').op('i32.add').set(dp);
      for (let i = 0; i < 4; i++) {
        f.get(dp);
        transposedColumn(f, t, i);
        if (addBias) f.get(b).op('f32x4.add');
        f.mem('v128.store', 0, 2);
        if (i < 3) f.get(dp).get(dRow).op('i32.add').set(dp);
      }
    });
  });
  const scalar = (r0: Local | number, r1: Local, c0: Local | number, c1: Local): void => {
    f.forRange(r, r0, r1, 1, () => {
      f.forRange(c, c0, c1, 1, () => {
        f.get(dst!).get(c).get(dRow).op('i32.mul').op('i32.add').get(r).i32Const(2).op('i32.shl').op('i32.add');
        f.get(src!).get(r).get(sRow).op('i32.mul').op('i32.add').get(c).i32Const(2).op('i32.shl').op('i32.add').mem('f32.load');
        if (addBias) f.get(bias!).get(r).i32Const(2).op('i32.shl').op('i32.add').mem('f32.load').op('f32.add');
        f.mem('f32.store');
      });
    });
  };
  scalar(0, rows4, cols4, cols!);
  scalar(rows4, rows!, 0, cols!);
}

function emitSpmm(f: FunctionBuilder, shape: NmKernelShape): void {
  const { tv, unroll, relaxed } = shape;
  const [xt, ptr, col, val, rows, yt] = f.params as Local[];
  const i = f.local(I32);
  const pCol = f.local(I32);
  const pVal = f.local(I32);
  const pEnd = f.local(I32);
  const pLast = f.local(I32);
  const out = f.local(I32);
  const base = f.local(I32);
  const acc = Array.from({ length: tv }, () => f.local(V128));
  const w = f.local(V128);

  const entry = (u: number): void => {
    f.get(pVal).mem('v128.load32_splat', 4 * u).set(w);
    f.get(xt!).get(pCol).mem('i32.load', 4 * u).i32Const(16 * tv).op('i32.mul').op('i32.add').set(base);
    for (let j = 0; j < tv; j++) madd(f, relaxed, acc[j]!, () => void f.get(w), () => void f.get(base).mem('v128.load', 16 * j, 2));
  };
  const bump = (entries: number): void => {
    f.get(pCol).i32Const(4 * entries).op('i32.add').set(pCol);
    f.get(pVal).i32Const(4 * entries).op('i32.add').set(pVal);
  };

  f.get(yt!).set(out);
  f.forRange(i, 0, rows!, 1, () => {
    const entryAddr = (array: Local, rowOffset: number): void => {
      f.get(ptr!).get(i).i32Const(2).op('i32.shl').op('i32.add').mem('i32.load', rowOffset).i32Const(2).op('i32.shl').get(array).op('i32.add');
    };
    entryAddr(col!, 0);
    f.set(pCol);
    entryAddr(val!, 0);
    f.set(pVal);
    entryAddr(col!, 4);
    f.set(pEnd);
    for (const a of acc) f.f32x4Const([0, 0, 0, 0]).set(a);
    if (unroll > 1) {
      // pLast: the last pCol from which a whole unrolled group still fits.
      f.get(pEnd).i32Const(4 * (unroll - 1)).op('i32.sub').set(pLast);
      f.block((exit) => {
        f.loop((top) => {
          f.get(pCol).get(pLast).op('i32.ge_s').brIf(exit);
          for (let u = 0; u < unroll; u++) entry(u);
          bump(unroll);
          f.br(top);
        });
      });
    }
    f.block((exit) => {
      f.loop((top) => {
        f.get(pCol).get(pEnd).op('i32.ge_s').brIf(exit);
        entry(0);
        bump(1);
        f.br(top);
      });
    });
    for (let j = 0; j < tv; j++) f.get(out).get(acc[j]!).mem('v128.store', 16 * j, 2);
    f.get(out).i32Const(16 * tv).op('i32.add').set(out);
  });
}

function emitKeptDot(f: FunctionBuilder, shape: NmKernelShape): void {
  const { ways, dotUnroll, relaxed } = shape;
  const [dyt, xt, rowBytes, rows, ranges, col, grad] = f.params as Local[];
  const i = f.local(I32);
  const e = f.local(I32);
  const eEnd = f.local(I32);
  const d = f.local(I32);
  const dEnd = f.local(I32);
  const q = f.local(I32);
  const px = Array.from({ length: ways }, () => f.local(I32));
  const acc = Array.from({ length: ways }, () => f.local(V128));
  const dv = f.local(V128);
  const t = [0, 1, 2, 3].map(() => f.local(V128));
  const gradAddr = (k: number): void => void f.get(grad!).get(e).i32Const(k).op('i32.add').i32Const(2).op('i32.shl').op('i32.add');

  /** grad[e + k] += (a0 + a1) + (a2 + a3) of acc[k]: the lane order every path uses. */
  const flushOne = (k: number): void => {
    gradAddr(k);
    gradAddr(k);
    f.mem('f32.load');
    f.get(acc[k]!).lane('f32x4.extract_lane', 0).get(acc[k]!).lane('f32x4.extract_lane', 1).op('f32.add');
    f.get(acc[k]!).lane('f32x4.extract_lane', 2).get(acc[k]!).lane('f32x4.extract_lane', 3).op('f32.add');
    f.op('f32.add').op('f32.add').mem('f32.store');
  };
  /** The same sums for acc[k..k+4) at once: a 4×4 shuffle transpose, then (r0 + r1) + (r2 + r3). */
  const flushFour = (k: number): void => {
    transposeHalves(f, acc.slice(k, k + 4), t);
    gradAddr(k);
    gradAddr(k);
    f.mem('v128.load', 0, 2);
    // columns j hold lane j of the four sums: (c0 + c1) + (c2 + c3)
    for (let j = 0; j < 4; j++) {
      transposedColumn(f, t, j);
      if (j % 2 === 1) f.op('f32x4.add');
    }
    f.op('f32x4.add').op('f32x4.add').mem('v128.store', 0, 2);
  };
  /** Dot products of the current dYᵀ row with `n` X rows, dotUnroll vectors per iteration. */
  const dots = (n: number): void => {
    for (let k = 0; k < n; k++) {
      f.get(xt!).get(col!).get(e).i32Const(k).op('i32.add').i32Const(2).op('i32.shl').op('i32.add').mem('i32.load').get(rowBytes!).op('i32.mul').op('i32.add').set(px[k]!);
      f.f32x4Const([0, 0, 0, 0]).set(acc[k]!);
    }
    f.forRange(q, d, dEnd, 16 * dotUnroll, () => {
      for (let u = 0; u < dotUnroll; u++) {
        f.get(q).mem('v128.load', 16 * u, 2).set(dv);
        for (let k = 0; k < n; k++) madd(f, relaxed, acc[k]!, () => void f.get(dv), () => void f.get(px[k]!).mem('v128.load', 16 * u, 2));
      }
      for (let k = 0; k < n; k++) f.get(px[k]!).i32Const(16 * dotUnroll).op('i32.add').set(px[k]!);
    });
    let k = 0;
    for (; k + 4 <= n; k += 4) flushFour(k);
    for (; k < n; k++) flushOne(k);
  };

  f.forRange(i, 0, rows!, 1, () => {
    f.get(dyt!).get(i).get(rowBytes!).op('i32.mul').op('i32.add').tee(d).get(rowBytes!).op('i32.add').set(dEnd);
    f.get(ranges!).get(i).i32Const(3).op('i32.shl').op('i32.add').mem('i32.load').set(e);
    f.get(ranges!).get(i).i32Const(3).op('i32.shl').op('i32.add').mem('i32.load', 4).set(eEnd);
    f.block((exit) => {
      f.loop((top) => {
        f.get(e).i32Const(ways).op('i32.add').get(eEnd).op('i32.gt_s').brIf(exit);
        dots(ways);
        f.get(e).i32Const(ways).op('i32.add').set(e);
        f.br(top);
      });
    });
    f.block((exit) => {
      f.loop((top) => {
        f.get(e).get(eEnd).op('i32.ge_s').brIf(exit);
        dots(1);
        f.get(e).i32Const(1).op('i32.add').set(e);
        f.br(top);
      });
    });
  });
}
