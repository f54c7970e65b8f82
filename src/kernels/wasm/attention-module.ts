/**
 * The fused attention module (./attention.ts drives it). Rows of q, k, v, dOut, dq, dk, dv are
 * read and written where they lie (a byte stride per operand), so heads are never copied out of
 * the token-major tensors; only one head's keys (or values) are staged, transposed.
 *
 * - `transpose`: a head's k (or v) rows as columns, so that a row of scores is a sum of key
 *   columns weighted by q's elements (the form `combine` runs at its best).
 * - `maskRows`: scale, then −1e9 at a padded key (code 1) or where j ≥ i + limit (causal), −∞
 *   at a pad lane past tk (code 2).
 * - `combine` / `combineKeep`: out_r = Σ_c w[r, c] (· keep[r, c]) · x_c, the weights read
 *   through (row, column) byte strides, so the same code does Q·Kᵀ, P·V, Pᵀ·dOut, dS·K, dSᵀ·Q.
 * - `dsoft` / `dsoftKeep`: the softmax backward of one head in place, dS = scale·P ⊙ (dP −
 *   Σ_j P·dP) with dP = dPd (⊙ keep), 0 at masked keys.
 * All sums are f32 in an order fixed by the shapes, never by which heads a call gets: the same
 * bits for any thread count.
 */
import { F32, I32, V128, ModuleBuilder, type FunctionBuilder, type Local } from './assembler.js';
import { ARENA_IMPORT } from '../memory/arena.js';

/** Accumulator vectors per pass of `combine` (8 spill under V8: measured slower). */
const CHUNK = 4;
/** The masked score (as maskedFill writes it). */
const MASKED = -1e9;

const zero = (f: FunctionBuilder): FunctionBuilder => f.v128Const(new Array(16).fill(0));

/** Keys' rows as columns: dst[c, r] = src[r, c] for r < rows, 0 for r in [rows, dstStride / 4). */
function emitTranspose(f: FunctionBuilder): void {
  const [src, srcStride, rows, cols, dst, dstStride] = f.params as [Local, Local, Local, Local, Local, Local];
  const [c, r, width, at] = Array.from({ length: 4 }, () => f.local(I32));
  f.get(dstStride).push(2).op('i32.shr_u').set(width);
  f.forRange(c, 0, cols, 1, () => {
    f.forRange(r, 0, width, 1, () => {
      f.get(dst).get(c).get(dstStride).op('i32.mul').op('i32.add').get(r).push(2).op('i32.shl').op('i32.add');
      f.get(src).get(r).get(rows).push(1).op('i32.sub').get(r).get(rows).op('i32.lt_s').op('select').get(srcStride).op('i32.mul').op('i32.add').get(c).push(2).op('i32.shl').op('i32.add').set(at);
      f.get(at).mem('f32.load', 0, 2).f32Const(0).get(r).get(rows).op('i32.lt_s').op('select');
      f.mem('f32.store', 0, 2);
    });
  });
}

/**
 * Scores in place, rows of `kp` (a multiple of 4) floats: s·scale, then −1e9 at a key code of 1
 * or where j ≥ i + limit (causal), −∞ at a code of 2 (pad lanes).
 */
function emitMaskRows(f: FunctionBuilder): void {
  const [sBase, rows, kp, scale, codes, limit] = f.params as [Local, Local, Local, Local, Local, Local];
  const [i, j, at] = Array.from({ length: 3 }, () => f.local(I32));
  const [s, sv, neg, ninf, one, two, lanes, lim, c] = Array.from({ length: 9 }, () => f.local(V128));
  f.get(scale).op('f32x4.splat').set(sv);
  f.f32Const(MASKED).op('f32x4.splat').set(neg);
  f.f32Const(-Infinity).op('f32x4.splat').set(ninf);
  f.f32Const(1).op('f32x4.splat').set(one);
  f.f32Const(2).op('f32x4.splat').set(two);
  f.v128Const([0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]).set(lanes);
  f.forRange(i, 0, rows, 1, () => {
    f.get(i).get(limit).op('i32.add').op('i32x4.splat').set(lim);
    f.forRange(j, 0, kp, 4, () => {
      f.get(sBase).get(i).get(kp).op('i32.mul').get(j).op('i32.add').push(2).op('i32.shl').op('i32.add').set(at);
      f.get(at).mem('v128.load', 0, 2).get(sv).op('f32x4.mul').set(s);
      f.get(neg).get(s).get(j).op('i32x4.splat').get(lanes).op('i32x4.add').get(lim).op('i32x4.ge_s').op('v128.bitselect').set(s);
      f.get(codes).get(j).push(2).op('i32.shl').op('i32.add').mem('v128.load', 0, 2).set(c);
      f.get(neg).get(s).get(c).get(one).op('f32x4.eq').op('v128.bitselect').set(s);
      f.get(ninf).get(s).get(c).get(two).op('f32x4.eq').op('v128.bitselect').set(s);
      f.get(at).get(s).mem('v128.store', 0, 2);
    });
  });
}

/**
 * out_r = Σ_c w[r, c] (· keep[r, c]) · x_c over `nvec` vectors per x row (a run-time count):
 * two rows at a time (each x vector loaded once for both), in passes of CHUNK accumulators per
 * row, the last pass 1–3 wide when nvec is not a multiple of CHUNK; an odd last row alone.
 */
function emitCombine(f: FunctionBuilder, withKeep: boolean): void {
  const ps = f.params;
  const [w, wRow, wCol] = ps.slice(0, 3) as [Local, Local, Local];
  const [keep, kRow, kCol] = (withKeep ? ps.slice(3, 6) : [null, null, null]) as [Local, Local, Local] | [null, null, null];
  const [x, xStride, out, outStride, rows, inner, nvec] = ps.slice(withKeep ? 6 : 3) as [Local, Local, Local, Local, Local, Local, Local];
  const [r, c, c0, wp, kp, xp, op, pairEnd] = Array.from({ length: 8 }, () => f.local(I32));
  const acc = [0, 1].map(() => Array.from({ length: CHUNK }, () => f.local(V128)));
  const sv = [f.local(V128), f.local(V128)];
  const xv = f.local(V128);
  const pass = (rowsNow: number, cw: number): void => {
    for (let h = 0; h < rowsNow; h++) for (let v = 0; v < cw; v++) zero(f).set(acc[h]![v]!);
    f.get(w).get(r).get(wRow).op('i32.mul').op('i32.add').set(wp);
    if (keep) f.get(keep).get(r).get(kRow!).op('i32.mul').op('i32.add').set(kp);
    f.get(x).get(c0).push(4).op('i32.shl').op('i32.add').set(xp);
    f.forRange(c, 0, inner, 1, () => {
      for (let h = 0; h < rowsNow; h++) {
        if (h === 0) f.get(wp);
        else f.get(wp).get(wRow).op('i32.add');
        f.mem('f32.load', 0, 2);
        if (keep) {
          if (h === 0) f.get(kp);
          else f.get(kp).get(kRow!).op('i32.add');
          f.mem('f32.load', 0, 2).op('f32.mul');
        }
        f.op('f32x4.splat').set(sv[h]!);
      }
      for (let v = 0; v < cw; v++) {
        f.get(xp).mem('v128.load', 16 * v, 2).set(xv);
        for (let h = 0; h < rowsNow; h++) f.get(acc[h]![v]!).get(sv[h]!).get(xv).op('f32x4.mul').op('f32x4.add').set(acc[h]![v]!);
      }
      f.get(wp).get(wCol).op('i32.add').set(wp);
      if (keep) f.get(kp).get(kCol!).op('i32.add').set(kp);
      f.get(xp).get(xStride).op('i32.add').set(xp);
    });
    for (let h = 0; h < rowsNow; h++) {
      f.get(out).get(r).push(h).op('i32.add').get(outStride).op('i32.mul').op('i32.add').get(c0).push(4).op('i32.shl').op('i32.add').set(op);
      for (let v = 0; v < cw; v++) f.get(op).get(acc[h]![v]!).mem('v128.store', 16 * v, 2);
    }
  };
  /** Passes of cw, else (when fewer than cw vectors are left) the next smaller width. */
  const tail = (rowsNow: number, cw: number): void => {
    if (cw === 1) return pass(rowsNow, 1);
    f.get(nvec).get(c0).op('i32.sub').push(cw).op('i32.ge_s');
    f.if(() => pass(rowsNow, cw), () => tail(rowsNow, cw - 1));
  };
  f.get(rows).push(-2).op('i32.and').set(pairEnd);
  f.forRange(r, 0, pairEnd, 2, () => {
    f.forRange(c0, 0, nvec, CHUNK, () => tail(2, CHUNK));
  });
  f.get(rows).get(pairEnd).op('i32.gt_s');
  f.if(() => {
    f.get(pairEnd).set(r);
    f.forRange(c0, 0, nvec, CHUNK, () => tail(1, CHUNK));
  });
}

function emitDsoft(f: FunctionBuilder, withKeep: boolean): void {
  const ps = f.params;
  const [p, g] = ps.slice(0, 2) as [Local, Local];
  const keep = withKeep ? ps[2]! : null;
  const [rows, tk, pStride, kStride, scale, codes, limit] = ps.slice(withKeep ? 3 : 2) as [Local, Local, Local, Local, Local, Local, Local];
  const [i, j, pr, gr, kr, at] = Array.from({ length: 6 }, () => f.local(I32));
  const [sum, t] = [f.local(F32), f.local(F32)];
  f.forRange(i, 0, rows, 1, () => {
    f.get(p).get(i).get(pStride).op('i32.mul').op('i32.add').set(pr);
    f.get(g).get(i).get(pStride).op('i32.mul').op('i32.add').set(gr);
    if (keep) f.get(keep).get(i).get(kStride).op('i32.mul').op('i32.add').set(kr);
    f.f32Const(0).set(sum);
    f.forRange(j, 0, tk, 1, () => {
      f.get(j).push(2).op('i32.shl').set(at);
      f.get(gr).get(at).op('i32.add').mem('f32.load', 0, 2);
      if (keep) f.get(kr).get(at).op('i32.add').mem('f32.load', 0, 2).op('f32.mul');
      f.set(t);
      f.get(gr).get(at).op('i32.add').get(t).mem('f32.store', 0, 2);
      f.get(sum).get(pr).get(at).op('i32.add').mem('f32.load', 0, 2).get(t).op('f32.mul').op('f32.add').set(sum);
    });
    f.forRange(j, 0, tk, 1, () => {
      f.get(j).push(2).op('i32.shl').set(at);
      f.get(gr).get(at).op('i32.add');
      f.f32Const(0);
      f.get(scale).get(pr).get(at).op('i32.add').mem('f32.load', 0, 2).op('f32.mul');
      f.get(gr).get(at).op('i32.add').mem('f32.load', 0, 2).get(sum).op('f32.sub').op('f32.mul');
      f.get(codes).get(at).op('i32.add').mem('f32.load', 0, 2).f32Const(0).op('f32.ne');
      f.get(j).get(i).get(limit).op('i32.add').op('i32.ge_s').op('i32.or');
      f.op('select').mem('f32.store', 0, 2);
    });
  });
}

/** The module (any head size that is a multiple of 4). */
export function buildAttentionModule(): Uint8Array {
  const m = new ModuleBuilder().importMemory(ARENA_IMPORT);
  const i32 = (n: number): typeof I32[] => new Array(n).fill(I32);
  m.func('transpose', i32(6), [], (f) => emitTranspose(f));
  m.func('maskRows', [...i32(3), F32, I32, I32], [], (f) => emitMaskRows(f));
  m.func('combine', i32(10), [], (f) => emitCombine(f, false));
  m.func('combineKeep', i32(13), [], (f) => emitCombine(f, true));
  m.func('dsoft', [...i32(6), F32, I32, I32], [], (f) => emitDsoft(f, false));
  m.func('dsoftKeep', [...i32(7), F32, I32, I32], [], (f) => emitDsoft(f, true));
  return m.toBytes();
}
