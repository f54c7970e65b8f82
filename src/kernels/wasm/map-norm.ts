/**
 * The layer-norm and column-sum kernels of the map module (map-module.ts lists their exports and
 * contracts): layer norm forward and dx in float32 SIMD (sums in vector accumulators: within the
 * f32 bound of the js kernel's float64, not its bits), and its dγ / dβ column sums and the plain
 * column sums of a bias gradient, each operation for operation the js kernel in float64.
 */
import { F32, F64, I32, V128, emitHsum, f32Lanes, type FunctionBuilder, type Local } from './assembler.js';

/** v128 accumulators a row's sums run in, side by side (four add chains instead of one). */
const LN_ACCS = 4;

/**
 * Σ over one row of the v128 that `load(j)` pushes for byte offsets j < end4 (a multiple of 16),
 * then of the f32 that `tail(j)` pushes for j in [end4, end): LN_ACCS vector accumulators, folded
 * as ((a0 + a1) + (a2 + a3)) and then (l0 + l1) + (l2 + l3), then the tail in order. Leaves the
 * f32 sum on the stack.
 */
export function emitRowSum(f: FunctionBuilder, j: Local, end4: Local, end: Local, load: (j: Local, off: number) => void, tail: (j: Local) => void): void {
  const acc = Array.from({ length: LN_ACCS }, () => f.local(V128));
  const last = f.local(I32);
  const sum = f.local(F32);
  for (const a of acc) f.f32x4Const([0, 0, 0, 0]).set(a);
  f.get(end4).i32Const(16 * (LN_ACCS - 1)).op('i32.sub').set(last);
  f.i32Const(0).set(j);
  f.block((exit) => {
    f.loop((top) => {
      f.get(j).get(last).op('i32.ge_s').brIf(exit);
      for (let k = 0; k < LN_ACCS; k++) {
        f.get(acc[k]!);
        load(j, 16 * k);
        f.op('f32x4.add').set(acc[k]!);
      }
      f.get(j).i32Const(16 * LN_ACCS).op('i32.add').set(j);
      f.br(top);
    });
  });
  f.forRange(j, j, end4, 16, () => {
    f.get(acc[0]!);
    load(j, 0);
    f.op('f32x4.add').set(acc[0]!);
  });
  f.get(acc[0]!).get(acc[1]!).op('f32x4.add').get(acc[2]!).get(acc[3]!).op('f32x4.add').op('f32x4.add').set(acc[0]!);
  emitHsum(f, acc[0]!);
  f.set(sum);
  f.forRange(j, end4, end, 4, () => {
    f.get(sum);
    tail(j);
    f.op('f32.add').set(sum);
  });
  f.get(sum);
}

/**
 * out = ((x − μ)·rstd)·γ + β per row, μ and rstd = 1/√(var + eps) from float32 sums (four vector
 * accumulators a row, then the row's last cols mod 4 elements), also stored to mean and rstd.
 * Each row is one fixed sequence of f32 operations, whatever rows a call covers.
 */
export function emitLayerNorm(f: FunctionBuilder): void {
  const [x, gamma, beta, out, mean, rstd, rows, cols, eps] = f.params as Local[];
  const [r, j, end, end4, row, orow] = Array.from({ length: 6 }, () => f.local(I32));
  const [mu, rs, n, eps32, dt] = Array.from({ length: 5 }, () => f.local(F32));
  const [muV, rsV] = [f.local(V128), f.local(V128)];
  const d = f.local(V128);
  f.get(cols!).op('f32.convert_i32_s').set(n);
  f.get(eps!).op('f32.demote_f64').set(eps32);
  f.get(cols!).i32Const(2).op('i32.shl').set(end);
  f.get(end).i32Const(-16).op('i32.and').set(end4);
  f.forRange(r, 0, rows!, 1, () => {
    f.get(x!).get(r).get(end).op('i32.mul').op('i32.add').set(row);
    f.get(out!).get(r).get(end).op('i32.mul').op('i32.add').set(orow);
    const xv = (jj: Local, off: number): void => void f.get(row).get(jj).op('i32.add').mem('v128.load', off, 2);
    const xs = (jj: Local): void => void f.get(row).get(jj).op('i32.add').mem('f32.load', 0, 2);
    emitRowSum(f, j, end4, end, xv, xs);
    f.get(n).op('f32.div').tee(mu).op('f32x4.splat').set(muV);
    emitRowSum(
      f, j, end4, end,
      (jj, off) => {
        xv(jj, off);
        f.get(muV).op('f32x4.sub').set(d);
        f.get(d).get(d).op('f32x4.mul');
      },
      (jj) => {
        xs(jj);
        f.get(mu).op('f32.sub').tee(dt).get(dt).op('f32.mul');
      },
    );
    f.get(n).op('f32.div').get(eps32).op('f32.add').op('f32.sqrt').set(rs);
    f.f32Const(1).get(rs).op('f32.div').tee(rs).op('f32x4.splat').set(rsV);
    f.get(mean!).get(r).i32Const(2).op('i32.shl').op('i32.add').get(mu).mem('f32.store', 0, 2);
    f.get(rstd!).get(r).i32Const(2).op('i32.shl').op('i32.add').get(rs).mem('f32.store', 0, 2);
    f.forRange(j, 0, end4, 16, () => {
      f.get(orow).get(j).op('i32.add');
      xv(j, 0);
      f.get(muV).op('f32x4.sub').get(rsV).op('f32x4.mul');
      f.get(gamma!).get(j).op('i32.add').mem('v128.load', 0, 2).op('f32x4.mul');
      f.get(beta!).get(j).op('i32.add').mem('v128.load', 0, 2).op('f32x4.add');
      f.mem('v128.store', 0, 2);
    });
    f.forRange(j, end4, end, 4, () => {
      f.get(orow).get(j).op('i32.add');
      xs(j);
      f.get(mu).op('f32.sub').get(rs).op('f32.mul');
      f.get(gamma!).get(j).op('i32.add').mem('f32.load', 0, 2).op('f32.mul');
      f.get(beta!).get(j).op('i32.add').mem('f32.load', 0, 2).op('f32.add');
      f.mem('f32.store', 0, 2);
    });
  });
}

/**
 * dx = rstd·((g − mean(g)) − x̂·mean(g·x̂)) per row, g = dy·γ and x̂ = (x − μ)·rstd, the two
 * means from float32 sums (two vector accumulators each, then the row's last cols mod 4
 * elements); g and x̂ are recomputed in the second pass rather than stored.
 */
export function emitLayerNormBackwardDx(f: FunctionBuilder): void {
  const [x, dy, gamma, mean, rstd, dx, rows, cols] = f.params as Local[];
  const [r, j, end, end4, last, xr, dr, dxr] = Array.from({ length: 8 }, () => f.local(I32));
  const [mu, rs, n, sG, sGX, xh, g] = Array.from({ length: 7 }, () => f.local(F32));
  const [muV, rsV, mgV, cV] = Array.from({ length: 4 }, () => f.local(V128));
  const accG = [f.local(V128), f.local(V128)];
  const accGX = [f.local(V128), f.local(V128)];
  const [xhV, gV] = [f.local(V128), f.local(V128)];
  f.get(cols!).op('f32.convert_i32_s').set(n);
  f.get(cols!).i32Const(2).op('i32.shl').set(end);
  f.get(end).i32Const(-16).op('i32.and').set(end4);
  f.get(end4).i32Const(16).op('i32.sub').set(last);
  /** x̂ and g of the vector at byte j + off into xhV, gV. */
  const vecXhG = (off: number): void => {
    f.get(xr).get(j).op('i32.add').mem('v128.load', off, 2).get(muV).op('f32x4.sub').get(rsV).op('f32x4.mul').set(xhV);
    f.get(dr).get(j).op('i32.add').mem('v128.load', off, 2).get(gamma!).get(j).op('i32.add').mem('v128.load', off, 2).op('f32x4.mul').set(gV);
  };
  const scalarXhG = (): void => {
    f.get(xr).get(j).op('i32.add').mem('f32.load', 0, 2).get(mu).op('f32.sub').get(rs).op('f32.mul').set(xh);
    f.get(dr).get(j).op('i32.add').mem('f32.load', 0, 2).get(gamma!).get(j).op('i32.add').mem('f32.load', 0, 2).op('f32.mul').set(g);
  };
  f.forRange(r, 0, rows!, 1, () => {
    f.get(r).get(end).op('i32.mul').tee(xr).get(dx!).op('i32.add').set(dxr);
    f.get(xr).get(dy!).op('i32.add').set(dr);
    f.get(xr).get(x!).op('i32.add').set(xr);
    f.get(mean!).get(r).i32Const(2).op('i32.shl').op('i32.add').mem('f32.load', 0, 2).tee(mu).op('f32x4.splat').set(muV);
    f.get(rstd!).get(r).i32Const(2).op('i32.shl').op('i32.add').mem('f32.load', 0, 2).tee(rs).op('f32x4.splat').set(rsV);
    for (const a of [...accG, ...accGX]) f.f32x4Const([0, 0, 0, 0]).set(a);
    // pairs of vectors into the two accumulator sets, then a last single vector
    f.i32Const(0).set(j);
    f.block((exit) => {
      f.loop((top) => {
        f.get(j).get(last).op('i32.ge_s').brIf(exit);
        for (let k = 0; k < 2; k++) {
          vecXhG(16 * k);
          f.get(accG[k]!).get(gV).op('f32x4.add').set(accG[k]!);
          f.get(accGX[k]!).get(gV).get(xhV).op('f32x4.mul').op('f32x4.add').set(accGX[k]!);
        }
        f.get(j).i32Const(32).op('i32.add').set(j);
        f.br(top);
      });
    });
    f.forRange(j, j, end4, 16, () => {
      vecXhG(0);
      f.get(accG[0]!).get(gV).op('f32x4.add').set(accG[0]!);
      f.get(accGX[0]!).get(gV).get(xhV).op('f32x4.mul').op('f32x4.add').set(accGX[0]!);
    });
    f.get(accG[0]!).get(accG[1]!).op('f32x4.add').set(accG[0]!);
    f.get(accGX[0]!).get(accGX[1]!).op('f32x4.add').set(accGX[0]!);
    emitHsum(f, accG[0]!);
    f.set(sG);
    emitHsum(f, accGX[0]!);
    f.set(sGX);
    f.forRange(j, end4, end, 4, () => {
      scalarXhG();
      f.get(sG).get(g).op('f32.add').set(sG);
      f.get(sGX).get(g).get(xh).op('f32.mul').op('f32.add').set(sGX);
    });
    f.get(sG).get(n).op('f32.div').tee(sG).op('f32x4.splat').set(mgV);
    f.get(sGX).get(n).op('f32.div').tee(sGX).op('f32x4.splat').set(cV);
    f.forRange(j, 0, end4, 16, () => {
      vecXhG(0);
      f.get(dxr).get(j).op('i32.add');
      f.get(gV).get(mgV).op('f32x4.sub').get(xhV).get(cV).op('f32x4.mul').op('f32x4.sub').get(rsV).op('f32x4.mul');
      f.mem('v128.store', 0, 2);
    });
    f.forRange(j, end4, end, 4, () => {
      scalarXhG();
      f.get(dxr).get(j).op('i32.add');
      f.get(g).get(sG).op('f32.sub').get(xh).get(sGX).op('f32.mul').op('f32.sub').get(rs).op('f32.mul');
      f.mem('f32.store', 0, 2);
    });
  });
}

/**
 * dγ, dβ of the columns [c0, c1) over all rows, in row order: accG[j] += dy·((x − μ)·rstd),
 * accB[j] += dy in float64, operation for operation as the js layerNormParamGradCols, two
 * columns per f64x2 (the columns are independent; each keeps its row order).
 */
export function emitLayerNormParamGrads(f: FunctionBuilder): void {
  const [x, dy, mean, rstd, accG, accB, rows, cols, c0, c1] = f.params as Local[];
  const [r, j, j8, w2, wEnd, xr, dr, rowBytes] = Array.from({ length: 8 }, () => f.local(I32));
  const [mu, rs, xv, dv] = Array.from({ length: 4 }, () => f.local(V128));
  const [muS, rsS, d] = Array.from({ length: 3 }, () => f.local(F64));
  f.get(cols!).i32Const(2).op('i32.shl').set(rowBytes);
  f.get(x!).get(c0!).i32Const(2).op('i32.shl').op('i32.add').set(xr);
  f.get(dy!).get(c0!).i32Const(2).op('i32.shl').op('i32.add').set(dr);
  // byte offsets (of f32 elements) of the pairs, and of the odd last column
  f.get(c1!).get(c0!).op('i32.sub').i32Const(2).op('i32.shl').tee(wEnd).i32Const(-8).op('i32.and').set(w2);
  f.forRange(r, 0, rows!, 1, () => {
    f.get(mean!).get(r).i32Const(2).op('i32.shl').op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').tee(muS).op('f64x2.splat').set(mu);
    f.get(rstd!).get(r).i32Const(2).op('i32.shl').op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').tee(rsS).op('f64x2.splat').set(rs);
    f.forRange(j, 0, w2, 8, () => {
      f.get(j).get(j).op('i32.add').set(j8);
      f.get(xr).get(j).op('i32.add').mem('v128.load64_zero', 0, 2).op('f64x2.promote_low_f32x4').set(xv);
      f.get(dr).get(j).op('i32.add').mem('v128.load64_zero', 0, 2).op('f64x2.promote_low_f32x4').set(dv);
      f.get(accG!).get(j8).op('i32.add');
      f.get(accG!).get(j8).op('i32.add').mem('v128.load', 0, 3);
      f.get(dv).get(xv).get(mu).op('f64x2.sub').get(rs).op('f64x2.mul').op('f64x2.mul').op('f64x2.add');
      f.mem('v128.store', 0, 3);
      f.get(accB!).get(j8).op('i32.add');
      f.get(accB!).get(j8).op('i32.add').mem('v128.load', 0, 3).get(dv).op('f64x2.add');
      f.mem('v128.store', 0, 3);
    });
    f.get(w2).get(wEnd).op('i32.lt_s').if(() => {
      f.get(w2).get(w2).op('i32.add').set(j8);
      f.get(dr).get(w2).op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').set(d);
      f.get(accG!).get(j8).op('i32.add');
      f.get(accG!).get(j8).op('i32.add').mem('f64.load', 0, 3);
      f.get(d).get(xr).get(w2).op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').get(muS).op('f64.sub').get(rsS).op('f64.mul').op('f64.mul').op('f64.add');
      f.mem('f64.store', 0, 3);
      f.get(accB!).get(j8).op('i32.add');
      f.get(accB!).get(j8).op('i32.add').mem('f64.load', 0, 3).get(d).op('f64.add');
      f.mem('f64.store', 0, 3);
    });
    f.get(xr).get(rowBytes).op('i32.add').set(xr);
    f.get(dr).get(rowBytes).op('i32.add').set(dr);
  });
}

/** Columns per block of `columnSums`: two v128 loads a row, four f64x2 accumulators. */
export const COLSUM_BLOCK = 8;

/**
 * out[j] = Σ_r g[r, j] for the columns [c0, c0 + 8·blocks), each summed in float64 in row order
 * (the js columnSumsRange's sequence, so its bits): a block of 8 columns keeps its sums in four
 * f64x2 registers over all rows, then writes them to acc (float64, 8·blocks).
 */
export function emitColumnSums(f: FunctionBuilder): void {
  const [g, rows, cols, c0, blocks, acc] = f.params as Local[];
  const [b, r, at, rowBytes] = Array.from({ length: 4 }, () => f.local(I32));
  const a = Array.from({ length: 4 }, () => f.local(V128));
  const [lo, hi] = [f.local(V128), f.local(V128)];
  f.get(cols!).i32Const(2).op('i32.shl').set(rowBytes);
  f.forRange(b, 0, blocks!, 1, () => {
    for (const x of a) f.f32x4Const([0, 0, 0, 0]).set(x);
    // at = g + 4·(c0 + 8b), moving one row at a time
    f.get(g!).get(c0!).get(b).i32Const(3).op('i32.shl').op('i32.add').i32Const(2).op('i32.shl').op('i32.add').set(at);
    f.forRange(r, 0, rows!, 1, () => {
      f.get(at).mem('v128.load', 0, 2).set(lo);
      f.get(at).mem('v128.load', 16, 2).set(hi);
      [[lo, 0], [lo, 1], [hi, 0], [hi, 1]].forEach(([v, h], i) => {
        f.get(a[i]!).get(v as Local);
        if (h === 1) f.get(v as Local).shuffle(f32Lanes([2, 3, 2, 3]));
        f.op('f64x2.promote_low_f32x4').op('f64x2.add').set(a[i]!);
      });
      f.get(at).get(rowBytes).op('i32.add').set(at);
    });
    a.forEach((x, i) => {
      f.get(acc!).get(b).i32Const(6).op('i32.shl').op('i32.add').get(x).mem('v128.store', 16 * i, 3);
    });
  });
}
