/**
 * Emits the wasm SIMD module of the streaming elementwise kernels: same-shape add / sub / mul /
 * div, relu and its backward, and the strided copies (permute, masked fill). Each is one f32 operation per element, which IEEE 754 rounds the
 * same way as the js kernels' float64 operation rounded back to float32 (double rounding is
 * harmless for +, −, ×, ÷ from binary64 to binary32), so the results are bitwise those of the
 * js backend, NaN, ±0 and ±∞ included.
 *
 * Exports (byte addresses; `bytes` a multiple of 16, the caller pads the regions):
 * - `add`, `sub`, `mul`, `div` (a, b, out, bytes): out = a ∘ b.
 * - `addScalar` … `divScalar` (a, s, out, bytes): out = a ∘ s for an f32 scalar s.
 * - `relu(x, out, bytes)`: out = x > 0 ? x : 0 (NaN → 0, as in js).
 * - `reluBackward(x, g, gx, bytes)`: gx = g · (x > 0 ? 1 : 0).
 * - `permute4(src, dst, d0, d1, d2, d3, s0, s1, s2, s3)`: dst (row-major [d0, d1, d2, d3]) at
 *   (i0, i1, i2, i3) = src at Σ iₖ·sₖ (strides in bytes): any permute of rank ≤ 4 as 32-bit copies.
 * - `maskedFill4(x, mask, out, d0, d1, d2, d3, m0, m1, m2, m3, value)`: out = mask at Σ iₖ·mₖ
 *   (byte strides, 0 along broadcast dims) ≠ 0 ? value : x, over the row-major [d0, d1, d2, d3]
 *   x and out; f32 loads, stores and `select` keep every bit (NaN payloads too).
 * - `layerNorm(x, gamma, beta, out, mean, rstd, rows, cols, eps)`: the js layerNormRows with γ
 *   and β, operation for operation in float64 (sums in column order, μ = s / cols,
 *   1/√(var/cols + eps), (x − μ)·rstd·γ + β rounded to f32), so bitwise the js result.
 * - `layerNormBackward(x, dy, gamma, mean, rstd, dx, xs, gs, accG, accB, rows, cols, inv)`: the js
 *   layerNormInputGradRows with γ (dx) and layerNormParamGradCols (dγ, dβ added to the float64
 *   accumulators accG, accB in row order), operation for operation in float64; xs, gs are
 *   float64 scratch, LN_BWD_ROWS rows each (inv = 1 / cols).
 * - `layerNormBackwardDx(…)`: the same arguments, dx only (accG, accB untouched).
 * - `layerNormParamGrads(x, dy, mean, rstd, accG, accB, rows, cols, c0, c1)`: the js
 *   layerNormParamGradCols over columns [c0, c1) (accG, accB: float64, c1 − c0 each, zeroed),
 *   two columns per f64x2, each in row order: bitwise its sums.
 * - `keepMask(state, out, q, threshold, bits)`: four xoshiro128** generators side by side, one
 *   per i32x4 lane (state: four v128 words s0..s3, lane j = generator j), each drawing q values:
 *   lane j writes out[j·q + i] = (draw i, offset by 2³¹, ≥ threshold) ? bits : 0 as 32-bit words
 *   (q a multiple of 4: four steps at a time, transposed so that each lane stores one v128) —
 *   the loop of Rng.fillKeepMask, four quarters at once when lane j starts j·q draws ahead. The
 *   lanes' final states are written back.
 */
import { ARENA_IMPORT } from '../memory/arena.js';
import { F32, F64, I32, ModuleBuilder, V128, f32Lanes, transposeHalves, transposedColumn, type FunctionBuilder, type Local, type ValType } from './assembler.js';

export const MAP_BINARY_OPS = ['add', 'sub', 'mul', 'div'] as const;
export type MapBinaryOp = (typeof MAP_BINARY_OPS)[number];

/** for j in [0, bytes) step 16: body(j). */
function forBytes(f: FunctionBuilder, bytes: Local, body: (j: Local) => void): void {
  const j = f.local(I32);
  f.forRange(j, 0, bytes, 16, () => body(j));
}

const load = (f: FunctionBuilder, base: Local, j: Local): void => {
  f.get(base).get(j).op('i32.add').mem('v128.load', 0, 0);
};

function emitBinary(f: FunctionBuilder, op: MapBinaryOp): void {
  const [a, b, out, bytes] = f.params as Local[];
  forBytes(f, bytes!, (j) => {
    f.get(out!).get(j).op('i32.add');
    load(f, a!, j);
    load(f, b!, j);
    f.op(`f32x4.${op}`).mem('v128.store', 0, 0);
  });
}

/** out = a ∘ s for one f32 scalar s (a broadcast scalar operand): one f32 operation per element. */
function emitBinaryScalar(f: FunctionBuilder, op: MapBinaryOp): void {
  const [a, sc, out, bytes] = f.params as Local[];
  const sv = f.local(V128);
  f.get(sc!).op('f32x4.splat').set(sv);
  forBytes(f, bytes!, (j) => {
    f.get(out!).get(j).op('i32.add');
    load(f, a!, j);
    f.get(sv).op(`f32x4.${op}`).mem('v128.store', 0, 0);
  });
}

function emitRelu(f: FunctionBuilder): void {
  const [x, out, bytes] = f.params as Local[];
  const ZERO: [number, number, number, number] = [0, 0, 0, 0];
  const v = f.local(V128);
  forBytes(f, bytes!, (j) => {
    f.get(out!).get(j).op('i32.add');
    load(f, x!, j);
    f.set(v);
    // bitselect(x, 0, x > 0)
    f.get(v).f32x4Const(ZERO).get(v).f32x4Const(ZERO).op('f32x4.gt').op('v128.bitselect');
    f.mem('v128.store', 0, 0);
  });
}

function emitReluBackward(f: FunctionBuilder): void {
  const [x, g, gx, bytes] = f.params as Local[];
  forBytes(f, bytes!, (j) => {
    f.get(gx!).get(j).op('i32.add');
    load(f, g!, j);
    // g · bitselect(1, 0, x > 0)
    f.f32x4Const([1, 1, 1, 1]).f32x4Const([0, 0, 0, 0]);
    load(f, x!, j);
    f.f32x4Const([0, 0, 0, 0]).op('f32x4.gt').op('v128.bitselect');
    f.op('f32x4.mul').mem('v128.store', 0, 0);
  });
}

function emitPermute4(f: FunctionBuilder): void {
  const [src, dst, d0, d1, d2, d3, s0, s1, s2, s3] = f.params as Local[];
  const [i0, i1, i2, i3, p0, p1, p2, q, o] = Array.from({ length: 9 }, () => f.local(I32));
  f.get(dst!).set(o);
  f.forRange(i0, 0, d0!, 1, () => {
    f.get(src!).get(i0).get(s0!).op('i32.mul').op('i32.add').set(p0);
    f.forRange(i1, 0, d1!, 1, () => {
      f.get(p0).get(i1).get(s1!).op('i32.mul').op('i32.add').set(p1);
      f.forRange(i2, 0, d2!, 1, () => {
        f.get(p1).get(i2).get(s2!).op('i32.mul').op('i32.add').set(p2);
        f.get(p2).set(q);
        f.forRange(i3, 0, d3!, 1, () => {
          f.get(o).get(q).mem('i32.load', 0, 2).mem('i32.store', 0, 2);
          f.get(o).i32Const(4).op('i32.add').set(o);
          f.get(q).get(s3!).op('i32.add').set(q);
        });
      });
    });
  });
}

function emitMaskedFill4(f: FunctionBuilder): void {
  const [x, mask, out, d0, d1, d2, d3, m0, m1, m2, m3, value] = f.params as Local[];
  const [i0, i1, i2, i3, p0, p1, q, o] = Array.from({ length: 8 }, () => f.local(I32));
  f.forRange(i0, 0, d0!, 1, () => {
    f.get(mask!).get(i0).get(m0!).op('i32.mul').op('i32.add').set(p0);
    f.forRange(i1, 0, d1!, 1, () => {
      f.get(p0).get(i1).get(m1!).op('i32.mul').op('i32.add').set(p1);
      f.forRange(i2, 0, d2!, 1, () => {
        f.get(p1).get(i2).get(m2!).op('i32.mul').op('i32.add').set(q);
        f.forRange(i3, 0, d3!, 1, () => {
          // out[o] = mask[q] != 0 ? value : x[o]   (o = the running element offset in bytes)
          f.get(out!).get(o).op('i32.add');
          f.get(value!);
          f.get(x!).get(o).op('i32.add').mem('f32.load', 0, 2);
          f.get(q).mem('f32.load', 0, 2).f32Const(0).op('f32.ne');
          f.op('select').mem('f32.store', 0, 2);
          f.get(o).i32Const(4).op('i32.add').set(o);
          f.get(q).get(m3!).op('i32.add').set(q);
        });
      });
    });
  });
}

/**
 * Rows of the layer norms go in blocks of LN_ROWS, their loops interleaved: each row's float64
 * sums are one chain of dependent adds (latency-bound), so four rows side by side run four chains
 * at once. Every row keeps its own operation sequence, so the results do not change.
 */
const LN_ROWS = 4;

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

function emitLayerNorm(f: FunctionBuilder): void {
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
function emitLayerNormBackward(f: FunctionBuilder, paramGrads: boolean): void {
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
function emitLayerNormParamGrads(f: FunctionBuilder): void {
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
function emitColumnSums(f: FunctionBuilder): void {
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

/** How Adam's weight decay enters: none, added to the gradient (L2), or decoupled (AdamW). */
export const ADAM_MODES = ['plain', 'l2', 'decoupled'] as const;
export type AdamMode = (typeof ADAM_MODES)[number];

/**
 * Adam over `bytes / 4` elements (a multiple of 4), operation for operation the js adamUpdate in
 * float64 — m and v rounded to f32 when stored and read back as stored, as are w after a
 * decoupled decay and the new w — two elements per f64x2 (every operation is IEEE-exact in both,
 * so the bits are the js kernel's). The f64 constants come from the caller, computed as the js
 * kernel computes them (c1 = 1 − β₁, c2 = 1 − β₂, decay = 1 − lr·wd).
 */
function emitAdam(f: FunctionBuilder, mode: AdamMode): void {
  const [w, g, m, v, bytes] = f.params.slice(0, 5) as Local[];
  const [lr, b1, c1, b2, c2, bc1, bc2, eps, wd, decay] = f.params.slice(5).map((p) => {
    const l = f.local(V128);
    f.get(p).op('f64x2.splat').set(l);
    return l;
  });
  const j = f.local(I32);
  const [gv, wv, mv, vv, half] = Array.from({ length: 5 }, () => f.local(V128));
  const out = [f.local(V128), f.local(V128)];
  const outM = [f.local(V128), f.local(V128)];
  const outV = [f.local(V128), f.local(V128)];
  /** f64x2 of f32 lanes [2h, 2h + 1] of the v128 at base + j. */
  const promote = (base: Local, h: number): void => {
    f.get(base).get(j).op('i32.add').mem('v128.load', 0, 2);
    if (h === 1) {
      f.set(half);
      f.get(half).get(half).shuffle(f32Lanes([2, 3, 2, 3]));
    }
    f.op('f64x2.promote_low_f32x4');
  };
  /** Rounds the f64x2 on the stack to f32 and back (the js kernel's store and reload). */
  const roundTrip = (): void => void f.op('f32x4.demote_f64x2_zero').op('f64x2.promote_low_f32x4');
  forBytes(f, bytes!, (jj) => {
    f.get(jj).set(j);
    for (let h = 0; h < 2; h++) {
      promote(g!, h);
      f.set(gv);
      promote(w!, h);
      f.set(wv);
      if (mode === 'decoupled') {
        f.get(wv).get(decay!).op('f64x2.mul');
        roundTrip();
        f.set(wv);
      } else if (mode === 'l2') {
        f.get(gv).get(wd!).get(wv).op('f64x2.mul').op('f64x2.add').set(gv);
      }
      // m = b1·m + c1·g; v = b2·v + (c2·g)·g, each rounded to f32 as stored
      promote(m!, h);
      f.get(b1!).op('f64x2.mul').get(c1!).get(gv).op('f64x2.mul').op('f64x2.add');
      roundTrip();
      f.set(mv);
      promote(v!, h);
      f.get(b2!).op('f64x2.mul').get(c2!).get(gv).op('f64x2.mul').get(gv).op('f64x2.mul').op('f64x2.add');
      roundTrip();
      f.set(vv);
      // w − (lr·(m / bc1)) / (√(v / bc2) + eps)
      f.get(wv);
      f.get(lr!).get(mv).get(bc1!).op('f64x2.div').op('f64x2.mul');
      f.get(vv).get(bc2!).op('f64x2.div').op('f64x2.sqrt').get(eps!).op('f64x2.add');
      f.op('f64x2.div').op('f64x2.sub').op('f32x4.demote_f64x2_zero').set(out[h]!);
      f.get(mv).op('f32x4.demote_f64x2_zero').set(outM[h]!);
      f.get(vv).op('f32x4.demote_f64x2_zero').set(outV[h]!);
    }
    // the two demoted halves (lanes 0, 1 of each) side by side
    for (const [base, pair] of [[w!, out], [m!, outM], [v!, outV]] as const) {
      f.get(base).get(j).op('i32.add').get(pair[0]!).get(pair[1]!).shuffle(f32Lanes([0, 1, 4, 5])).mem('v128.store', 0, 2);
    }
  });
}

function emitKeepMask(f: FunctionBuilder): void {
  const [state, out, q, threshold, bits] = f.params as Local[];
  const [s0, s1, s2, s3, t, thr, bv, c5, c9, sign] = Array.from({ length: 10 }, () => f.local(V128));
  const r = Array.from({ length: 4 }, () => f.local(V128));
  const [end, qb] = [f.local(I32), f.local(I32)];
  const at = Array.from({ length: 4 }, () => f.local(I32));
  const rotl = (v: Local, k: number): void => {
    f.get(v).i32Const(k).op('i32x4.shl').get(v).i32Const(32 - k).op('i32x4.shr_u').op('v128.or');
  };
  const splat = (c: number | Local, into: Local): void => {
    f.push(c).op('i32x4.splat').set(into);
  };
  for (const [i, s] of [s0, s1, s2, s3].entries()) f.get(state).mem('v128.load', 16 * i, 0).set(s);
  splat(threshold!, thr);
  splat(bits!, bv);
  splat(5, c5);
  splat(9, c9);
  splat(-2147483648, sign);
  f.get(q).i32Const(4).op('i32.mul').set(qb);
  // Lane j writes at[j] = out + j·q·4, each pointer moving 16 bytes every four steps.
  f.get(out).set(at[0]!);
  for (let j = 1; j < 4; j++) f.get(at[j - 1]!).get(qb).op('i32.add').set(at[j]!);
  f.get(at[1]!).set(end);
  f.block((exit) => {
    f.loop((top) => {
      f.get(at[0]!).get(end).op('i32.ge_u').brIf(exit);
      for (let u = 0; u < 4; u++) {
        // r = rotl(s1 · 5, 7) · 9 ^ 2³¹ (the draw, offset), t = s1 << 9
        f.get(s1).get(c5).op('i32x4.mul').set(r[u]!);
        rotl(r[u]!, 7);
        f.get(c9).op('i32x4.mul').get(sign).op('v128.xor');
        // r = bits where the draw ≥ threshold (signed), else 0
        f.get(thr).op('i32x4.ge_s').get(bv).op('v128.and').set(r[u]!);
        f.get(s1).i32Const(9).op('i32x4.shl').set(t);
        f.get(s2).get(s0).op('v128.xor').set(s2);
        f.get(s3).get(s1).op('v128.xor').set(s3);
        f.get(s1).get(s2).op('v128.xor').set(s1);
        f.get(s0).get(s3).op('v128.xor').set(s0);
        f.get(s2).get(t).op('v128.xor').set(s2);
        rotl(s3, 11);
        f.set(s3);
      }
      // Four steps of four lanes, transposed: lane j's four consecutive words in one store (the
      // halves reuse the steps' registers).
      const halves = [t, r[1]!, r[0]!, r[3]!];
      transposeHalves(f, r, halves);
      for (let j = 0; j < 4; j++) {
        f.get(at[j]!);
        transposedColumn(f, halves, j);
        f.mem('v128.store', 0, 2);
        f.get(at[j]!).i32Const(16).op('i32.add').set(at[j]!);
      }
      f.br(top);
    });
  });
  for (const [i, s] of [s0, s1, s2, s3].entries()) f.get(state).get(s).mem('v128.store', 16 * i, 0);
}

export function buildMapModule(): Uint8Array {
  const m = new ModuleBuilder().importMemory(ARENA_IMPORT);
  for (const op of MAP_BINARY_OPS) m.func(op, [I32, I32, I32, I32], [], (f) => emitBinary(f, op));
  for (const op of MAP_BINARY_OPS) m.func(`${op}Scalar`, [I32, F32, I32, I32], [], (f) => emitBinaryScalar(f, op));
  m.func('relu', [I32, I32, I32], [], emitRelu);
  m.func('reluBackward', [I32, I32, I32, I32], [], emitReluBackward);
  m.func('permute4', Array.from({ length: 10 }, (): ValType => I32), [], emitPermute4);
  m.func('maskedFill4', [...Array.from({ length: 11 }, (): ValType => I32), F32], [], emitMaskedFill4);
  m.func('layerNormBackward', [...Array.from({ length: 12 }, (): ValType => I32), F64], [], (f) => emitLayerNormBackward(f, true));
  m.func('layerNormBackwardDx', [...Array.from({ length: 12 }, (): ValType => I32), F64], [], (f) => emitLayerNormBackward(f, false));
  m.func('layerNorm', [...Array.from({ length: 8 }, (): ValType => I32), F64], [], emitLayerNorm);
  m.func('keepMask', [I32, I32, I32, I32, I32], [], emitKeepMask);
  m.func('layerNormParamGrads', Array.from({ length: 10 }, (): ValType => I32), [], emitLayerNormParamGrads);
  m.func('columnSums', Array.from({ length: 6 }, (): ValType => I32), [], emitColumnSums);
  for (const mode of ADAM_MODES) m.func(`adam_${mode}`, [...Array.from({ length: 5 }, (): ValType => I32), ...Array.from({ length: 10 }, (): ValType => F64)], [], (f) => emitAdam(f, mode));
  return m.toBytes();
}
