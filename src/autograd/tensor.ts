/**
 * The Tensor class with its chainable methods installed: any import of this module (the
 * package root included) gets `x.matmul(w).relu()`. Ops import `tensor-core.js` directly.
 */
import './methods.js';

export { Tensor, noGrad, isGradEnabled, result, type TapeNode, type NestedArray } from './tensor-core.js';
