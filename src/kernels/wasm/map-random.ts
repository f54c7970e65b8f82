/**
 * The dropout keep-mask kernel of the map module (map-module.ts builds it): four xoshiro128**
 * generators side by side, one per lane, each the js Rng.fillKeepMask loop.
 */
import { I32, V128, transposeHalves, transposedColumn, type FunctionBuilder, type Local } from './assembler.js';

export function emitKeepMask(f: FunctionBuilder): void {
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
