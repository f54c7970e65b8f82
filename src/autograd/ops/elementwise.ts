import { getBackend, type BinaryOp, type UnaryOp } from '../../kernels/backends.js';
import { broadcastShapes, sizeOf } from '../../kernels/shape.js';
import { currentScope, report } from '../flops.js';
import { Tensor, result } from '../tensor-core.js';

/** An operand of the binary ops: a tensor, or a number taken as a 0-d tensor. */
export type TensorLike = Tensor | number;

export function toTensor(x: TensorLike): Tensor {
  return typeof x === 'number' ? Tensor.scalar(x) : x;
}

function binary(op: BinaryOp, aIn: TensorLike, bIn: TensorLike): Tensor {
  const a = toTensor(aIn);
  const b = toTensor(bIn);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const backend = getBackend();
  const out = backend.allocUninit(a.size === 0 || b.size === 0 ? 0 : sizeOf(shape));
  backend.binary(op, a.data, a.shape, b.data, b.shape, shape, out);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', out.length);
  return result(op, out, shape, [a, b], (g) => {
    report(scope, 'backward-input', 'elementwise', g.length * ((a.requiresGrad ? 1 : 0) + (b.requiresGrad ? 1 : 0)));
    return getBackend().binaryBackward(op, g, a.data, a.shape, b.data, b.shape, shape, a.requiresGrad, b.requiresGrad);
  });
}

/** a + b elementwise, numpy broadcasting; throws ShapeError when the shapes do not broadcast. */
export const add = (a: TensorLike, b: TensorLike): Tensor => binary('add', a, b);
/** a − b elementwise, numpy broadcasting; throws ShapeError when the shapes do not broadcast. */
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('sub', a, b);
/** a ⊙ b elementwise, numpy broadcasting; throws ShapeError when the shapes do not broadcast. */
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('mul', a, b);
/** a / b elementwise, numpy broadcasting; throws ShapeError when the shapes do not broadcast. */
export const div = (a: TensorLike, b: TensorLike): Tensor => binary('div', a, b);

/**
 * A unary op: the backend computes f(x) and g ⊙ f'(x) (with y = f(x) at hand, so exp and tanh
 * reuse their output). `param` is pow's exponent.
 */
function unary(name: string, op: UnaryOp, x: Tensor, param = 0): Tensor {
  const n = x.size;
  const out = getBackend().allocUninit(n);
  getBackend().unary(op, x.data, out, param);
  const scope = currentScope();
  report(scope, 'forward', 'elementwise', n);
  return result(name, out, x.shape, [x], (g) => {
    report(scope, 'backward-input', 'elementwise', 2 * n);
    // g is this node's alone (the sweep hands each node its own gradient buffer): the
    // elementwise backward overwrites it in place and passes it on.
    getBackend().unaryBackward(op, x.data, out, g, g, param);
    return [g];
  });
}

/** −x elementwise. */
export const neg = (x: Tensor): Tensor => unary('neg', 'neg', x);
/** eˣ elementwise. */
export const exp = (x: Tensor): Tensor => unary('exp', 'exp', x);
/** Natural logarithm elementwise (−∞ at 0, NaN below; the bad-value checks report those). */
export const log = (x: Tensor): Tensor => unary('log', 'log', x);
/** √x elementwise. */
export const sqrt = (x: Tensor): Tensor => unary('sqrt', 'sqrt', x);
/** tanh(x) elementwise. */
export const tanh = (x: Tensor): Tensor => unary('tanh', 'tanh', x);
/** 1 / (1 + e⁻ˣ) elementwise. */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', 'sigmoid', x);
/** max(x, 0) elementwise (gradient 0 at x = 0). */
export const relu = (x: Tensor): Tensor => unary('relu', 'relu', x);
/** |x| elementwise (gradient sign(x), 0 at x = 0). */
export const abs = (x: Tensor): Tensor => unary('abs', 'abs', x);

/** x^p for a scalar exponent p. */
export function pow(x: Tensor, p: number): Tensor {
  return unary('pow', 'pow', x, p);
}

/** GELU: exact (erf) by default, like PyTorch; `'tanh'` selects the tanh approximation. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return unary('gelu', approximate === 'tanh' ? 'gelu-tanh' : 'gelu', x);
}
