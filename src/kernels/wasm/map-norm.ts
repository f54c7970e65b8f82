/**
 * The layer-norm and column-sum kernels of the map module (map-module.ts lists their exports and
 * contracts): layer norm forward and backward, its dγ / dβ column sums and the plain column
 * sums of a bias gradient, each operation for operation the js kernel in float64.
 */
import { F64, I32, V128, f32Lanes, type FunctionBuilder, type Local } from './assembler.js';

/**
 * Rows of the layer norms go in blocks of LN_ROWS, their loops interleaved: each row's float64
 * sums are one chain of dependent adds (latency-bound), so four rows side by side run four chains
 * at once. Every row keeps its own operation sequence, so the results do not change.
 */
export const LN_ROWS = 4;

/** for r over [0, rows): body(R) once per block of LN_ROWS rows, then once per remaining row (R = 1). */
function forRowBlocks(f: FunctionBuilder, r: Local, rows: Local, body: (R: number) => void, block = LN_ROWS): void {
  const full = f.local(I32);
  f.get(rows).i32Const(-block).op('i32.and').set(full);
  f.forRange(r, 0, full, block, () => body(block));
  f.forRange(r, full, rows, 1, () => body(1));
}

/**
 * Rows per block of the backward: its first loop holds four float64 values per row plus four
 * shared, so two rows fit V8's 15 xmm registers and four spill (one thread, [1500×128], dx:
 * 1 row 0.56 ms, 2 rows 0.33, 4 rows 0.51).
 */
export const LN_BWD_ROWS = 2;

export function emitLayerNorm(f: FunctionBuilder): void {
  const [x, gamma, beta, out, mean, rstd, rows, cols, eps] = f.params as Local[];
  const [r, j, end, delta] = Array.from({ length: 4 }, () => f.local(I32));
  const row = Array.from({ length: LN_ROWS }, () => f.local(I32));
  const [s, mu, rs] = [0, 1, 2].map(() => Array.from({ length: LN_ROWS }, () => f.local(F64)));
  const [d, n, g, b] = Array.from({ length: 4 }, () => f.local(F64));
  const xAt = (i: number): void => {
    f.get(row[i]!).get(j).op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32');
  };
  f.get(cols!).op('f64.convert_i32_s').set(n);
  f.get(cols!).i32Const(2).op('i32.shl').set(end);
  // out − x, in bytes: an element's output address is its input address + delta
  f.get(out!).get(x!).op('i32.sub').set(delta);
  forRowBlocks(f, r, rows!, (R) => {
    for (let i = 0; i < R; i++) {
      f.get(x!).get(r).i32Const(i).op('i32.add').get(cols!).op('i32.mul').i32Const(2).op('i32.shl').op('i32.add').set(row[i]!);
      f.i32Const(0).op('f64.convert_i32_s').set(s[i]!);
    }
    f.forRange(j, 0, end, 4, () => {
      for (let i = 0; i < R; i++) {
        f.get(s[i]!);
        xAt(i);
        f.op('f64.add').set(s[i]!);
      }
    });
    for (let i = 0; i < R; i++) {
      f.get(s[i]!).get(n).op('f64.div').set(mu[i]!);
      f.i32Const(0).op('f64.convert_i32_s').set(s[i]!); // now the sum of squares
    }
    f.forRange(j, 0, end, 4, () => {
      for (let i = 0; i < R; i++) {
        xAt(i);
        f.get(mu[i]!).op('f64.sub').set(d);
        f.get(s[i]!).get(d).get(d).op('f64.mul').op('f64.add').set(s[i]!);
      }
    });
    for (let i = 0; i < R; i++) {
      f.i32Const(1).op('f64.convert_i32_s').get(s[i]!).get(n).op('f64.div').get(eps!).op('f64.add').op('f64.sqrt').op('f64.div').set(rs[i]!);
      const at = (): void => void f.get(r).i32Const(i).op('i32.add').i32Const(2).op('i32.shl');
      f.get(mean!);
      at();
      f.op('i32.add').get(mu[i]!).op('f32.demote_f64').mem('f32.store', 0, 2);
      f.get(rstd!);
      at();
      f.op('i32.add').get(rs[i]!).op('f32.demote_f64').mem('f32.store', 0, 2);
    }
    f.forRange(j, 0, end, 4, () => {
      f.get(gamma!).get(j).op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').set(g);
      f.get(beta!).get(j).op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').set(b);
      for (let i = 0; i < R; i++) {
        // out = ((x − μ)·rstd)·γ + β
        f.get(row[i]!).get(j).op('i32.add').get(delta).op('i32.add');
        xAt(i);
        f.get(mu[i]!).op('f64.sub').get(rs[i]!).op('f64.mul');
        f.get(g).op('f64.mul').get(b).op('f64.add');
        f.op('f32.demote_f64').mem('f32.store', 0, 2);
      }
    });
  });
}

/**
 * `paramGrads` false: dx only (accG, accB are not touched). xs and gs hold LN_BWD_ROWS float64
 * rows each (a block's rows side by side).
 */
export function emitLayerNormBackward(f: FunctionBuilder, paramGrads: boolean): void {
  const [x, dy, gamma, mean, rstd, dx, xs, gs, accG, accB, rows, cols, inv] = f.params as Local[];
  const [r, j, j8, end, rowBytes8] = Array.from({ length: 5 }, () => f.local(I32));
  const rowOff = Array.from({ length: LN_ROWS }, () => f.local(I32));
  const [mu, rs, sumG, sumGX, meanG] = [0, 1, 2, 3, 4].map(() => Array.from({ length: LN_ROWS }, () => f.local(F64)));
  const [xh, gj, d, gam] = Array.from({ length: 4 }, () => f.local(F64));
  const f32At = (base: Local, off: Local | null): void => {
    f.get(base);
    if (off) f.get(off).op('i32.add');
    f.get(j).op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32');
  };
  /** Pushes the address of f64 element j of scratch row i of `base` (j8 = 2·j: bytes of f64 element j). */
  const f64Addr = (base: Local, i: number): void => {
    f.get(base).get(j8).op('i32.add');
    if (i > 0) f.get(rowBytes8).i32Const(i).op('i32.mul').op('i32.add');
  };
  f.get(cols!).i32Const(2).op('i32.shl').set(end);
  f.get(cols!).i32Const(3).op('i32.shl').set(rowBytes8);
  forRowBlocks(f, r, rows!, (R) => {
    for (let i = 0; i < R; i++) {
      const ri = (): void => void f.get(r).i32Const(i).op('i32.add');
      ri();
      f.get(cols!).op('i32.mul').i32Const(2).op('i32.shl').set(rowOff[i]!);
      f.get(mean!);
      ri();
      f.i32Const(2).op('i32.shl').op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').set(mu[i]!);
      f.get(rstd!);
      ri();
      f.i32Const(2).op('i32.shl').op('i32.add').mem('f32.load', 0, 2).op('f64.promote_f32').set(rs[i]!);
      f.i32Const(0).op('f64.convert_i32_s').tee(sumG[i]!).set(sumGX[i]!);
    }
    f.forRange(j, 0, end, 4, () => {
      f.get(j).get(j).op('i32.add').set(j8);
      f32At(gamma!, null);
      f.set(gam);
      for (let i = 0; i < R; i++) {
        f32At(x!, rowOff[i]!);
        f.get(mu[i]!).op('f64.sub').get(rs[i]!).op('f64.mul').set(xh);
        f32At(dy!, rowOff[i]!);
        f.tee(d);
        f.get(gam).op('f64.mul').set(gj);
        f64Addr(xs!, i);
        f.get(xh).mem('f64.store', 0, 3);
        f64Addr(gs!, i);
        f.get(gj).mem('f64.store', 0, 3);
        f.get(sumG[i]!).get(gj).op('f64.add').set(sumG[i]!);
        f.get(sumGX[i]!).get(gj).get(xh).op('f64.mul').op('f64.add').set(sumGX[i]!);
        if (paramGrads) {
          // dγ += dy·x̂, dβ += dy (rows in order)
          f64Addr(accG!, 0);
          f64Addr(accG!, 0);
          f.mem('f64.load', 0, 3).get(d).get(xh).op('f64.mul').op('f64.add').mem('f64.store', 0, 3);
          f64Addr(accB!, 0);
          f64Addr(accB!, 0);
          f.mem('f64.load', 0, 3).get(d).op('f64.add').mem('f64.store', 0, 3);
        }
      }
    });
    for (let i = 0; i < R; i++) f.get(inv!).get(sumG[i]!).op('f64.mul').set(meanG[i]!);
    f.forRange(j, 0, end, 4, () => {
      f.get(j).get(j).op('i32.add').set(j8);
      for (let i = 0; i < R; i++) {
        // dx = rs·((g − mean(g)) − (x̂·inv)·Σ g x̂)
        f.get(dx!).get(rowOff[i]!).op('i32.add').get(j).op('i32.add');
        f.get(rs[i]!);
        f64Addr(gs!, i);
        f.mem('f64.load', 0, 3).get(meanG[i]!).op('f64.sub');
        f64Addr(xs!, i);
        f.mem('f64.load', 0, 3).get(inv!).op('f64.mul').get(sumGX[i]!).op('f64.mul').op('f64.sub');
        f.op('f64.mul').op('f32.demote_f64').mem('f32.store', 0, 2);
      }
    });
  }, LN_BWD_ROWS);
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
