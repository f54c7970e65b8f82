/** U8 tensors of safetensors files (sparsity masks, N:M in-group offsets). */
import { DataError, fmtShape } from '../errors.js';

/** A `U8` safetensors tensor (masks, N:M in-group offsets): raw bytes and a shape. */
export interface ByteTensor {
  readonly dtype: 'U8';
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** Wraps bytes as a U8 tensor of `shape` (no copy); throws DataError when the sizes disagree. */
export function byteTensor(data: Uint8Array, shape: readonly number[]): ByteTensor {
  const size = shape.reduce((x, y) => x * y, 1);
  if (size !== data.length) throw new DataError('byteTensor', `shape ${fmtShape(shape)} needs ${size} bytes, got ${data.length}`);
  return { dtype: 'U8', shape: [...shape], data };
}
