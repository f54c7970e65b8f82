/**
 * The Adam update of the map module (map-module.ts builds it): one function per way the weight
 * decay enters, each operation for operation the js update in float64.
 */
import { I32, V128, f32Lanes, forBytes, type FunctionBuilder, type Local } from './assembler.js';

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
export function emitAdam(f: FunctionBuilder, mode: AdamMode): void {
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
