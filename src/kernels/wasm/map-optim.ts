/**
 * The Adam update of the map module (map-module.ts builds it): one function per way the weight
 * decay enters, in float32 lanes (four elements per v128).
 */
import { I32, V128, forBytes, type FunctionBuilder } from './assembler.js';

/** How Adam's weight decay enters: none, added to the gradient (L2), or decoupled (AdamW). */
export const ADAM_MODES = ['plain', 'l2', 'decoupled'] as const;

export type AdamMode = (typeof ADAM_MODES)[number];

/**
 * Adam over `bytes / 4` elements (a multiple of 4) in float32, the js adamUpdate's formula and
 * association (m = β₁·m + c1·g; v = β₂·v + (c2·g)·g; w − (lr·(m / bc1)) / (√(v / bc2) + eps)),
 * with every operation rounded to f32 instead of float64 between stores: within the f32 bound of
 * the js kernel, not its bits. The constants come from the caller as float64 (c1 = 1 − β₁,
 * c2 = 1 − β₂, decay = 1 − lr·wd) and are rounded to f32 once.
 */
export function emitAdam(f: FunctionBuilder, mode: AdamMode): void {
  const [w, g, m, v, bytes] = f.params.slice(0, 5);
  const [lr, b1, c1, b2, c2, bc1, bc2, eps, wd, decay] = f.params.slice(5).map((p) => {
    const l = f.local(V128);
    f.get(p).op('f32.demote_f64').op('f32x4.splat').set(l);
    return l;
  });
  const [gv, wv, mv, vv] = Array.from({ length: 4 }, () => f.local(V128));
  forBytes(f, bytes!, (j) => {
    const at = (base: typeof w): void => void f.get(base!).get(j).op('i32.add');
    at(g);
    f.mem('v128.load', 0, 2).set(gv);
    at(w);
    f.mem('v128.load', 0, 2).set(wv);
    if (mode === 'decoupled') f.get(wv).get(decay!).op('f32x4.mul').set(wv);
    else if (mode === 'l2') f.get(gv).get(wd!).get(wv).op('f32x4.mul').op('f32x4.add').set(gv);
    at(m);
    f.get(b1!);
    at(m);
    f.mem('v128.load', 0, 2).op('f32x4.mul').get(c1!).get(gv).op('f32x4.mul').op('f32x4.add').tee(mv).mem('v128.store', 0, 2);
    at(v);
    f.get(b2!);
    at(v);
    f.mem('v128.load', 0, 2).op('f32x4.mul').get(c2!).get(gv).op('f32x4.mul').get(gv).op('f32x4.mul').op('f32x4.add').tee(vv).mem('v128.store', 0, 2);
    at(w);
    f.get(wv);
    f.get(lr!).get(mv).get(bc1!).op('f32x4.div').op('f32x4.mul');
    f.get(vv).get(bc2!).op('f32x4.div').op('f32x4.sqrt').get(eps!).op('f32x4.add');
    f.op('f32x4.div').op('f32x4.sub').mem('v128.store', 0, 2);
  });
}
