// The public API of nmgrad (re-exports only).
import './autograd/methods.js';

export { NmgradError, ShapeError, SparsityConfigError, DataError, AutogradError, WorkerError } from './errors.js';
export { Rng } from './kernels/random.js';
export { Tensor, noGrad, isGradEnabled, type TapeNode, type NestedArray } from './autograd/tensor.js';
export { gradcheck, type GradcheckOptions, type GradcheckResult } from './autograd/gradcheck.js';
export { add, sub, mul, div, neg, pow, exp, log, sqrt, tanh, sigmoid, relu, gelu, abs, type TensorLike } from './autograd/ops/elementwise.js';
export { sum, mean, max, argmax, type Axes } from './autograd/ops/reduce.js';
export { reshape, permute, transpose, slice, concat, stack, unsqueeze, squeeze, broadcastTo, expand } from './autograd/ops/shape.js';
export { matmul, linear } from './autograd/ops/matmul.js';
export { softmax, logSoftmax, layerNorm, embedding, dropout, where, maskedFill, crossEntropy, type CrossEntropyOptions } from './autograd/ops/nn.js';
export { nmMask, unstructuredMask, validateNM } from './sparse/mask.js';
export { NMSparseTensor, type NMSparseJSON } from './sparse/nm-tensor.js';
export { sparseLinear, sparseLinearValues } from './sparse/linear-op.js';
export { getThreads, setThreads, shutdownPool } from './kernels/threads/pool.js';
