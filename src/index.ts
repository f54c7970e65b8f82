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
export { Module, ModuleList, Parameter } from './nn/module.js';
export { Linear, Embedding, LayerNorm, Dropout, FeedForward, sinusoidalPositions, type LinearLike, type LinearOptions } from './nn/layers.js';
export { MultiHeadAttention, causalMask, type KVCache, type AttentionOptions } from './nn/attention.js';
export { Transformer, TransformerEncoderLayer, TransformerDecoderLayer, paddingMask, type TransformerConfig, type DecoderLayerCache } from './nn/transformer.js';
export { Optimizer, SGD, Adam, AdamW, clipGradNorm, constantLr, inverseSqrtLr, cosineLr, type LrSchedule, type OptimizerState, type AdamOptions } from './nn/optim.js';
export { labelSmoothedLoss, tokenAccuracy } from './nn/loss.js';
export { encodeSafetensors, decodeSafetensors, saveSafetensors, loadSafetensors, saveCheckpoint, loadCheckpoint, writeFileAtomic, type Safetensors } from './nn/checkpoint.js';
export { linearSites, replaceLinears, type LayerSelection, type LinearSite } from './nn/replace.js';
export { FlopCounter, countFlops, withScope, currentScope, type Pass, type FlopCategory, type FlopTotals, type FlopScope } from './autograd/flops.js';
export { Recipe, type RecipeConfig, type RecipeStep, type RecipeKind, type PrunedGrad, type DecayKind, type FrameKind } from './sparse/recipe.js';
export { maskedLinear, nmLatentLinear, type PrunedGradRule } from './sparse/recipe-ops.js';
export { flopReport, formatFlopReport, type FlopReport } from './sparse/flop-report.js';
export { SparseLinear, sparsify } from './nn/sparse-linear.js';
