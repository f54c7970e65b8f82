import { matmulRows, type MatmulSpec } from './matmul.js';

/**
 * One C (+)= op(A)·op(B) product at the given offsets. The single entry point every dense
 * product in nmgrad goes through; it decides whether the worker pool takes part.
 */
export function gemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec): void {
  matmulRows(a, aOff, b, bOff, c, cOff, spec, 0, spec.m);
}
