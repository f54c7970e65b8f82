/**
 * Opcode tables. Plain ops take no immediate; memory ops take a memarg (alignment, offset).
 * SIMD ops carry the 0xFD prefix and a LEB128 sub-opcode, bulk-memory ops the 0xFC prefix.
 * Numbers are the final WebAssembly 2.0 / relaxed-SIMD encodings.
 */
export const SIMD_PREFIX = 0xfd;
export const MISC_PREFIX = 0xfc;

/** [prefix or -1, opcode] of every op without an immediate. */
export const PLAIN_OPS = {
  unreachable: [-1, 0x00],
  nop: [-1, 0x01],
  return: [-1, 0x0f],
  drop: [-1, 0x1a],
  select: [-1, 0x1b],
  'i32.eqz': [-1, 0x45], 'i32.eq': [-1, 0x46], 'i32.ne': [-1, 0x47],
  'i32.lt_s': [-1, 0x48], 'i32.lt_u': [-1, 0x49], 'i32.gt_s': [-1, 0x4a], 'i32.gt_u': [-1, 0x4b],
  'i32.le_s': [-1, 0x4c], 'i32.le_u': [-1, 0x4d], 'i32.ge_s': [-1, 0x4e], 'i32.ge_u': [-1, 0x4f],
  'f32.eq': [-1, 0x5b], 'f32.ne': [-1, 0x5c], 'f32.lt': [-1, 0x5d], 'f32.gt': [-1, 0x5e], 'f32.le': [-1, 0x5f], 'f32.ge': [-1, 0x60],
  'i32.add': [-1, 0x6a], 'i32.sub': [-1, 0x6b], 'i32.mul': [-1, 0x6c], 'i32.div_s': [-1, 0x6d], 'i32.div_u': [-1, 0x6e],
  'i32.rem_s': [-1, 0x6f], 'i32.rem_u': [-1, 0x70], 'i32.and': [-1, 0x71], 'i32.or': [-1, 0x72], 'i32.xor': [-1, 0x73],
  'i32.shl': [-1, 0x74], 'i32.shr_s': [-1, 0x75], 'i32.shr_u': [-1, 0x76],
  'f32.abs': [-1, 0x8b], 'f32.neg': [-1, 0x8c], 'f32.sqrt': [-1, 0x91],
  'f32.add': [-1, 0x92], 'f32.sub': [-1, 0x93], 'f32.mul': [-1, 0x94], 'f32.div': [-1, 0x95], 'f32.min': [-1, 0x96], 'f32.max': [-1, 0x97],
  'f64.sqrt': [-1, 0x9f], 'f64.add': [-1, 0xa0], 'f64.sub': [-1, 0xa1], 'f64.mul': [-1, 0xa2], 'f64.div': [-1, 0xa3],
  'f32.convert_i32_s': [-1, 0xb2], 'f64.convert_i32_s': [-1, 0xb7], 'f64.promote_f32': [-1, 0xbb], 'f32.demote_f64': [-1, 0xb6],
  'v128.not': [SIMD_PREFIX, 77], 'v128.and': [SIMD_PREFIX, 78], 'v128.andnot': [SIMD_PREFIX, 79], 'v128.or': [SIMD_PREFIX, 80],
  'v128.xor': [SIMD_PREFIX, 81], 'v128.bitselect': [SIMD_PREFIX, 82], 'v128.any_true': [SIMD_PREFIX, 83],
  'i8x16.swizzle': [SIMD_PREFIX, 14],
  'i32x4.splat': [SIMD_PREFIX, 17], 'f32x4.splat': [SIMD_PREFIX, 19],
  'f32x4.eq': [SIMD_PREFIX, 65], 'f32x4.ne': [SIMD_PREFIX, 66], 'f32x4.lt': [SIMD_PREFIX, 67],
  'f32x4.gt': [SIMD_PREFIX, 68], 'f32x4.le': [SIMD_PREFIX, 69], 'f32x4.ge': [SIMD_PREFIX, 70],
  'i32x4.ge_s': [SIMD_PREFIX, 63],
  'f32x4.nearest': [SIMD_PREFIX, 106], 'i32x4.shl': [SIMD_PREFIX, 171], 'i32x4.shr_u': [SIMD_PREFIX, 173], 'i32x4.trunc_sat_f32x4_s': [SIMD_PREFIX, 248],
  'i32x4.add': [SIMD_PREFIX, 174], 'i32x4.sub': [SIMD_PREFIX, 177], 'i32x4.mul': [SIMD_PREFIX, 181],
  'f32x4.abs': [SIMD_PREFIX, 224], 'f32x4.neg': [SIMD_PREFIX, 225], 'f32x4.sqrt': [SIMD_PREFIX, 227],
  'f32x4.add': [SIMD_PREFIX, 228], 'f32x4.sub': [SIMD_PREFIX, 229], 'f32x4.mul': [SIMD_PREFIX, 230], 'f32x4.div': [SIMD_PREFIX, 231],
  'f32x4.min': [SIMD_PREFIX, 232], 'f32x4.max': [SIMD_PREFIX, 233], 'f32x4.pmin': [SIMD_PREFIX, 234], 'f32x4.pmax': [SIMD_PREFIX, 235],
  'f64x2.splat': [SIMD_PREFIX, 20], 'f64x2.promote_low_f32x4': [SIMD_PREFIX, 95],
  'f64x2.add': [SIMD_PREFIX, 240], 'f64x2.sub': [SIMD_PREFIX, 241], 'f64x2.mul': [SIMD_PREFIX, 242], 'f64x2.div': [SIMD_PREFIX, 243],
  'f64x2.sqrt': [SIMD_PREFIX, 239], 'f32x4.demote_f64x2_zero': [SIMD_PREFIX, 94],
  /** Relaxed SIMD: a·b + c, fused or not at the engine's choice (validated only where the runtime has the proposal). */
  'f32x4.relaxed_madd': [SIMD_PREFIX, 0x105],
  'f32x4.relaxed_nmadd': [SIMD_PREFIX, 0x106],
} as const satisfies Record<string, readonly [number, number]>;
export type PlainOp = keyof typeof PLAIN_OPS;

/** [prefix or -1, opcode, natural alignment as log2 bytes] of every load/store. */
export const MEMORY_OPS = {
  'i32.load': [-1, 0x28, 2], 'f32.load': [-1, 0x2a, 2], 'f64.load': [-1, 0x2b, 3],
  'i32.store': [-1, 0x36, 2], 'f32.store': [-1, 0x38, 2], 'f64.store': [-1, 0x39, 3],
  'i32.load8_u': [-1, 0x2d, 0], 'i32.store8': [-1, 0x3a, 0],
  'v128.load': [SIMD_PREFIX, 0, 4], 'v128.load32_splat': [SIMD_PREFIX, 9, 2], 'v128.load64_splat': [SIMD_PREFIX, 10, 3],
  'v128.store': [SIMD_PREFIX, 11, 4], 'v128.load32_zero': [SIMD_PREFIX, 92, 2], 'v128.load64_zero': [SIMD_PREFIX, 93, 3],
} as const satisfies Record<string, readonly [number, number, number]>;
export type MemoryOp = keyof typeof MEMORY_OPS;

/** [opcode, lane count] of lane ops that take a lane index immediate. */
export const LANE_OPS = {
  'i32x4.extract_lane': [27, 4], 'i32x4.replace_lane': [28, 4],
  'f32x4.extract_lane': [31, 4], 'f32x4.replace_lane': [32, 4],
} as const satisfies Record<string, readonly [number, number]>;
export type LaneOp = keyof typeof LANE_OPS;

export const OP = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d, call: 0x10,
  localGet: 0x20, localSet: 0x21, localTee: 0x22, memorySize: 0x3f, memoryGrow: 0x40,
  i32Const: 0x41, f32Const: 0x43, v128Const: 12, i8x16Shuffle: 13, memoryCopy: 10, memoryFill: 11,
} as const;
