/**
 * Typed errors. Every error names the op or layer that raised it and the offending
 * shapes or values, so a failure deep inside a model points at its cause.
 */
export class NmgradError extends Error {
  /** The op, layer or component that raised the error (e.g. `matmul`, `ffn.0.linear1`). */
  readonly where: string;
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.where = where;
    this.name = new.target.name;
  }
}

/** Incompatible or invalid shapes, axes or lengths. */
export class ShapeError extends NmgradError {}

/** An invalid N:M / sparsity / recipe configuration. */
export class SparsityConfigError extends NmgradError {}

/** Bad input data (corrupt files, out-of-range ids, invalid text). */
export class DataError extends NmgradError {}

/** Misuse of the autograd engine (backward twice, non-scalar without seed, ...). */
export class AutogradError extends NmgradError {}

/** Memory for a tensor could not be allocated (the shape is too large for this process). */
export class AllocationError extends NmgradError {}

/** A worker thread failed or the pool could not run a job. */
export class WorkerError extends NmgradError {}

/** An argument outside its valid range (learning rate, probability, smoothing, a non-integer seed, ...). */
export class ValueError extends NmgradError {}

/** An unknown or unusable compute backend. */
export class BackendError extends NmgradError {}

/** Formats a shape the way error messages print it: `[2, 3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
