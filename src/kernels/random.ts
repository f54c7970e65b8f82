import { ValueError } from '../errors.js';

/**
 * Seeded pseudo-random numbers (xoshiro128**, seeded through splitmix32). One generator is
 * passed explicitly wherever randomness is needed, so the same seed gives the same run.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal: number | null = null;

  constructor(seed = 0) {
    // `>>> 0` would silently map NaN to 0, 1.5 to 1 and 2^32 to 0: refuse anything it would alter.
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new ValueError('Rng', `seed must be an integer in [0, 4294967295] (the generator is 32-bit), got ${seed}`);
    }
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /**
   * keep[i] = scale where the i-th next uniform() is ≥ p, else 0: exactly what a loop of
   * `uniform() >= p` gives, with the state held in locals for the whole buffer and written back
   * once (the dropout mask kernel). u/2³² ≥ p ⟺ u ≥ ⌈p·2³²⌉ for an integer u (p·2³² is exact),
   * compared as signed 32-bit integers (both offset by 2³¹), and the kept value is stored as
   * its float32 bit pattern under a 0 / −1 mask, so the loop has no branch and no float math.
   */
  fillKeepMask(keep: Float32Array, p: number, scale: number): void {
    const n = keep.length;
    if (n === 0) return;
    const { threshold, bits } = keepMaskWords(p, scale);
    const out = new Int32Array(keep.buffer, keep.byteOffset, n);
    let s0 = this.s0 | 0;
    let s1 = this.s1 | 0;
    let s2 = this.s2 | 0;
    let s3 = this.s3 | 0;
    for (let i = 0; i < n; i++) {
      const r = Math.imul(s1, 5);
      const u = Math.imul((r << 7) | (r >>> 25), 9) ^ -2147483648;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      // `bool | 0` is 0 or 1 without a branch (Number(bool) measured slower); TS needs the cast.
      out[i] = bits & -(((u >= threshold) as unknown as number) | 0);
    }
    // The same number representation nextU32 leaves (xor results signed, the rotation unsigned),
    // so getState() reads as it would after the per-element loop.
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3 >>> 0;
  }

  /**
   * Moves the generator n draws of nextU32 ahead in O(log n) (the state update is linear over
   * GF(2): applies the cached powers M^(2^k) of its 128×128 bit matrix), so a range of a long
   * stream can be drawn from its start without drawing what precedes it.
   */
  advance(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new ValueError('Rng.advance', `the number of draws must be a non-negative safe integer, got ${n}`);
    if (n === 0) return;
    const v = Int32Array.of(this.s0, this.s1, this.s2, this.s3);
    const tmp = new Int32Array(4);
    for (let k = 0; n > 0; k++) {
      if (n % 2 === 1) {
        applyBitMatrix(jumpMatrix(k), v, tmp);
        v.set(tmp);
      }
      n = Math.floor(n / 2);
    }
    // The representation nextU32 leaves: xor results signed, the rotated word unsigned.
    this.s0 = v[0]!;
    this.s1 = v[1]!;
    this.s2 = v[2]!;
    this.s3 = v[3]! >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of randomness. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }

  /** Serialisable state, for checkpoints. */
  getState(): number[] {
    return [this.s0, this.s1, this.s2, this.s3, this.spareNormal === null ? NaN : this.spareNormal];
  }

  setState(state: readonly number[]): void {
    this.s0 = state[0]! >>> 0;
    this.s1 = state[1]! >>> 0;
    this.s2 = state[2]! >>> 0;
    this.s3 = state[3]! >>> 0;
    const spare = state[4];
    this.spareNormal = spare === undefined || Number.isNaN(spare) ? null : spare;
  }
}

/**
 * M^(2^k) for the xoshiro128 state update M, as 128 columns of four words each: column c is the
 * image of the state with only bit c set (bit c&31 of word c>>5). Built on first use per thread.
 */
const jumpMatrices: Int32Array[] = [];

function jumpMatrix(k: number): Int32Array {
  while (jumpMatrices.length <= k) {
    const t = new Int32Array(128 * 4);
    const v = new Int32Array(4);
    const out = new Int32Array(4);
    const prev = jumpMatrices[jumpMatrices.length - 1];
    for (let c = 0; c < 128; c++) {
      v.fill(0);
      v[c >> 5] = 1 << (c & 31);
      if (prev === undefined) {
        // One step of the linear update (nextU32 without its output).
        const tt = v[1]! << 9;
        v[2]! ^= v[0]!;
        v[3]! ^= v[1]!;
        v[1]! ^= v[2]!;
        v[0]! ^= v[3]!;
        v[2]! ^= tt;
        v[3] = (v[3]! << 11) | (v[3]! >>> 21);
        out.set(v);
      } else {
        applyBitMatrix(prev, prev.subarray(c * 4, c * 4 + 4), out);
      }
      t.set(out, c * 4);
    }
    jumpMatrices.push(t);
  }
  return jumpMatrices[k]!;
}

/** out = T·v over GF(2): the xor of the columns of T at the set bits of v. */
function applyBitMatrix(t: Int32Array, v: Int32Array, out: Int32Array): void {
  let o0 = 0;
  let o1 = 0;
  let o2 = 0;
  let o3 = 0;
  for (let w = 0; w < 4; w++) {
    const word = v[w]!;
    for (let b = 0; b < 32; b++) {
      const m = -((word >>> b) & 1); // all ones where the bit is set: no branch to mispredict
      const c = (w * 32 + b) * 4;
      o0 ^= t[c]! & m;
      o1 ^= t[c + 1]! & m;
      o2 ^= t[c + 2]! & m;
      o3 ^= t[c + 3]! & m;
    }
  }
  out[0] = o0;
  out[1] = o1;
  out[2] = o2;
  out[3] = o3;
}

/**
 * The two words of the branch-free dropout-mask loop (Rng.fillKeepMask, and the wasm kernel that
 * repeats it): a draw u (offset by 2³¹, as a signed 32-bit integer) keeps its element when
 * u ≥ threshold, and a kept element is stored as the float32 bit pattern `bits` of scale.
 */
export function keepMaskWords(p: number, scale: number): { threshold: number; bits: number } {
  const bound = Math.ceil(p * 4294967296);
  const never = !(bound <= 4294967295); // also NaN: uniform() >= NaN is false
  const threshold = never ? 0 : (bound - 2147483648) | 0;
  const bits = new Int32Array(Float32Array.of(never ? 0 : scale).buffer)[0]! | 0;
  return { threshold, bits };
}

/**
 * The states of four generators 0, q, 2q and 3q draws on from `state` (q = 2^log2q) into
 * `lanes`, transposed for SIMD lanes ([s0 of the four, s1 …, s2 …, s3 …]), and `state` moved
 * 4q draws on: four applications of one jump matrix, no allocation (the wasm dropout mask).
 */
export function jumpLanes(state: Int32Array, log2q: number, lanes: Int32Array): void {
  const t = jumpMatrix(log2q);
  for (let j = 0; j < 4; j++) {
    for (let w = 0; w < 4; w++) lanes[4 * w + j] = state[w]!;
    applyBitMatrix(t, state, jumpScratch);
    state.set(jumpScratch);
  }
}
const jumpScratch = new Int32Array(4);

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** keep[i] = scale with probability 1 − p, else 0: one uniform draw per element, in order. */
export function dropoutMask(rng: Rng, p: number, scale: number, keep: Float32Array): void {
  rng.fillKeepMask(keep, p, scale);
}

/** mean + std·N(0, 1), drawn in order (the sequence is part of a seed's meaning). */
export function fillNormal(out: Float32Array, rng: Rng, std: number, mean: number): void {
  for (let i = 0; i < out.length; i++) out[i] = mean + std * rng.normal();
}

export function fillUniform(out: Float32Array, rng: Rng, low: number, high: number): void {
  for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * rng.uniform();
}

/** out[i] = start + i·step. */
export function fillArange(out: Float32Array, start: number, step: number): void {
  for (let i = 0; i < out.length; i++) out[i] = start + i * step;
}
