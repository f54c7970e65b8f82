/**
 * The compute seam. Every piece of arithmetic autograd, sparse and nn perform on tensor data
 * goes through one `Backend`: allocation, dense products, the N:M kernels, elementwise work,
 * reductions, row-wise norms, shape movement, gather/scatter, dropout and optimizer updates.
 * Autograd keeps the op semantics (shape checks, backward rules, FLOP reports); a backend owns
 * loops, threads and memory layout. `js` is the reference; others register themselves and
 * may implement a subset (see `withFallback`).
 */
import { BackendError, ShapeError } from '../errors.js';
import type { Rng } from './random.js';

/** C (+)= op(A)·op(B) over many products of one shape, each at its own element offsets. */
export interface BatchedGemmArgs {
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  aOffs: Int32Array;
  bOffs: Int32Array;
  cOffs: Int32Array;
  spec: MatmulSpec;
}

/** One dense product C[m×n] (+)= op(A)·op(B), the shape every backend's gemm takes. */
export interface MatmulSpec {
  m: number;
  n: number;
  k: number;
  /** A is stored [K×M] and used transposed. */
  transA: boolean;
  /** B is stored [N×K] and used transposed. */
  transB: boolean;
  /** C += A·B instead of C = A·B. */
  accumulate: boolean;
}

/** The contract of Backend.gemmBias, checked once per call by every backend: C is overwritten, bias has n values. */
/**
 * crossEntropyWithGrad as its definition: softmaxRows (log), crossEntropyLoss and, in place over
 * the log-probabilities in gx, crossEntropyBackward, called in turn on `k`.
 */
export function crossEntropyInTurn(k: Pick<Backend, 'softmaxRows' | 'crossEntropyLoss' | 'crossEntropyBackward'>, ...[logits, targets, rows, classes, ignore, eps, scale, gx]: Parameters<Backend['crossEntropyWithGrad']>): { total: number; count: number } {
  k.softmaxRows(logits, rows, classes, gx, true);
  const loss = k.crossEntropyLoss(gx, targets, rows, classes, ignore, eps);
  k.crossEntropyBackward(gx, targets, rows, classes, ignore, eps, scale, gx);
  return loss;
}

export function checkGemmBias(op: string, spec: MatmulSpec, bias: Float32Array): void {
  if (spec.accumulate || bias.length !== spec.n) {
    throw new ShapeError(op, `a bias needs accumulate = false and ${spec.n} values, got accumulate = ${spec.accumulate} and ${bias.length}`);
  }
}

/** One product at element offsets: the row-range task arguments of every backend's GEMM. */
export interface GemmArgs {
  a: Float32Array;
  aOff: number;
  b: Float32Array;
  bOff: number;
  c: Float32Array;
  cOff: number;
  spec: MatmulSpec;
}

/**
 * The one batched-GEMM dispatch, shared by the backends: a single product runs as `gemm`
 * (split by rows); batches whose outputs coincide (a broadcast operand receiving its gradient)
 * accumulate into the same matrix, so they run one after another; otherwise `splitBatches`
 * runs whole products per thread.
 */
export function dispatchBatchedGemm(args: BatchedGemmArgs, gemm: Backend['gemm'], splitBatches: (args: BatchedGemmArgs) => void): void {
  const nb = args.aOffs.length;
  if (nb === 1) {
    gemm(args.a, args.aOffs[0]!, args.b, args.bOffs[0]!, args.c, args.cOffs[0]!, args.spec);
    return;
  }
  if (new Set(args.cOffs).size !== nb) {
    for (let i = 0; i < nb; i++) gemm(args.a, args.aOffs[i]!, args.b, args.bOffs[i]!, args.c, args.cOffs[i]!, args.spec);
    return;
  }
  splitBatches(args);
}

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';
/** `pow` takes its exponent as the op parameter; `gelu-tanh` is GELU's tanh approximation. */
export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'tanh' | 'sigmoid' | 'relu' | 'abs' | 'pow' | 'gelu' | 'gelu-tanh';

/**
 * A [rows, cols] weight compressed to its N:M pattern, backend-neutral: `values` are the kept
 * weights (rows × cols/m groups × n, storage order) and `indices` their ascending offsets
 * within each group. Backends may cache their own layout of a pattern keyed by `indices`
 * (patterns are immutable), never by `values`, which change every step.
 */
export interface NMWeight {
  readonly shape: readonly [number, number];
  readonly n: number;
  readonly m: number;
  readonly values: Float32Array;
  readonly indices: Uint8Array;
}

export interface LayerNormGrads {
  dx: Float32Array | null;
  dGamma: Float32Array | null;
  dBeta: Float32Array | null;
}

export interface AdamParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decay applied to the weights, not added to the gradient. */
  decoupled: boolean;
  /** Bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ. */
  bc1: number;
  bc2: number;
}

export interface SgdParams {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}

/**
 * The compute seam: every kernel nmgrad runs on tensor data (allocation, dense and N:M products,
 * elementwise, reductions, softmax / layer-norm rows, shape moves, optimizer updates). `js` is the
 * reference; others (`wasm`) may implement a subset and fall through to `js` (`withFallback`).
 * Register one with `registerBackend`, pick it with `setBackend` or `NMGRAD_BACKEND`.
 */
export interface Backend {
  readonly name: string;

  // ---- storage --------------------------------------------------------------------------
  /** Zeroed float32 storage; large buffers may live on shared memory for the backend's threads. */
  alloc(n: number): Float32Array;
  /**
   * Storage with unspecified contents, for an output the caller writes in full before reading
   * it (saves zeroing a recycled buffer). NaN-filled under NMGRAD_POISON_UNINIT=1.
   */
  allocUninit(n: number): Float32Array;
  allocI32(n: number): Int32Array;
  /** A copy of `src` in fresh storage. */
  copy(src: Float32Array): Float32Array;
  /** dst += src (gradient accumulation). */
  addInto(dst: Float32Array, src: Float32Array): void;
  /** Nested JS arrays of a row-major buffer (a number for a 0-d shape). */
  toNested(data: Float32Array, shape: readonly number[]): unknown;

  // ---- dense products (MatmulSpec forms) -------------------------------------------------
  gemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec): void;
  /** c = op(a)·op(b) + bias on every row (bias of length spec.n; spec.accumulate is false): a Linear's forward. */
  gemmBias(a: Float32Array, b: Float32Array, c: Float32Array, spec: MatmulSpec, bias: Float32Array): void;
  gemmBatched(args: BatchedGemmArgs): void;
  /** out[r, j] += v[j]. */
  addRowVector(out: Float32Array, rows: number, cols: number, v: Float32Array): void;
  /** Σ_r g[r, j] (float64 accumulation). */
  columnSums(g: Float32Array, rows: number, cols: number): Float32Array;

  // ---- elementwise -----------------------------------------------------------------------
  /** out = a ⊙ b under numpy broadcasting; outShape is the broadcast shape. */
  binary(op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], out: Float32Array): void;
  /** Gradients of `binary` for g at outShape, each summed back to its operand's shape. */
  binaryBackward(op: BinaryOp, g: Float32Array, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], needA: boolean, needB: boolean): [Float32Array | null, Float32Array | null];
  unary(op: UnaryOp, x: Float32Array, out: Float32Array, param: number): void;
  /** gx = g ⊙ f'(x) with y = f(x) available. */
  unaryBackward(op: UnaryOp, x: Float32Array, y: Float32Array, g: Float32Array, gx: Float32Array, param: number): void;
  /** out[i] = x[i] / d. */
  divScalar(x: Float32Array, d: number, out: Float32Array): void;
  /** out[i] = cond[i] ≠ 0 ? a[i] : b[i] (all at the output shape). */
  where(cond: Float32Array, a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** out[i] = (cond[i] ≠ 0) === whenSet ? g[i] : 0. */
  selectGrad(cond: Float32Array, g: Float32Array, whenSet: boolean, out: Float32Array): void;

  // ---- reductions over the middle dim of an [outer, len, inner] view ---------------------
  sumAxis(x: Float32Array, outer: number, len: number, inner: number, out: Float32Array): void;
  /** out[o, l, i] = g[o, i]: the backward of sumAxis. */
  repeatAxis(g: Float32Array, outer: number, len: number, inner: number, out: Float32Array): void;
  maxAxis(x: Float32Array, outer: number, len: number, inner: number, out: Float32Array, argmax: Int32Array): void;
  /** out[o, arg, i] = g[o, i], zero elsewhere. */
  maxAxisBackward(g: Float32Array, argmax: Int32Array, outer: number, len: number, inner: number, out: Float32Array): void;
  /** acc + Σ x² (float64), a running sum over several buffers (gradient clipping). */
  sumSquares(x: Float32Array, acc: number): number;
  scaleInPlace(x: Float32Array, s: number): void;

  // ---- row-wise norms over [rows, cols] --------------------------------------------------
  softmaxRows(x: Float32Array, rows: number, cols: number, out: Float32Array, logSpace: boolean): void;
  softmaxBackwardRows(y: Float32Array, dy: Float32Array, rows: number, cols: number, dx: Float32Array): void;
  logSoftmaxBackwardRows(y: Float32Array, dy: Float32Array, rows: number, cols: number, dx: Float32Array): void;
  layerNormRows(x: Float32Array, rows: number, cols: number, gamma: Float32Array | null, beta: Float32Array | null, eps: number, out: Float32Array, meanOut: Float32Array, rstdOut: Float32Array): void;
  layerNormBackwardRows(x: Float32Array, dy: Float32Array, rows: number, cols: number, gamma: Float32Array | null, mean: Float32Array, rstd: Float32Array, need: { dx: boolean; dGamma: boolean; dBeta: boolean }): LayerNormGrads;
  /** Σ over non-ignored rows of −(1−ε)·logp[t] − ε·mean(logp); targets already validated. */
  crossEntropyLoss(logp: Float32Array, targets: Int32Array, rows: number, classes: number, ignore: number, smoothing: number): { total: number; count: number };
  crossEntropyBackward(logp: Float32Array, targets: Int32Array, rows: number, classes: number, ignore: number, smoothing: number, scale: number, gx: Float32Array): void;
  /**
   * The training step's loss in one sweep over the logits: the loss of logits (log-softmax
   * inside, as crossEntropyLoss of softmaxRows' log-probabilities) and, into gx, its gradient
   * scaled by `scale` (as crossEntropyBackward) — bitwise what those three calls give.
   */
  crossEntropyWithGrad(logits: Float32Array, targets: Int32Array, rows: number, classes: number, ignore: number, smoothing: number, scale: number, gx: Float32Array): { total: number; count: number };

  // ---- shape movement --------------------------------------------------------------------
  /** out = src permuted: out.shape[i] = shape[perm[i]]. */
  permute(src: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void;
  /** out = x with `value` wherever `mask` (broadcast from maskShape to shape) is non-zero. */
  maskedFill(x: Float32Array, shape: readonly number[], mask: Float32Array, maskShape: readonly number[], value: number, out: Float32Array): void;
  /** Materialises src broadcast to outShape. */
  expand(src: Float32Array, shape: readonly number[], outShape: readonly number[], out: Float32Array): void;
  /** Sums g down to a broadcast-compatible target shape (returns g itself when equal). */
  sumToShape(g: Float32Array, gShape: readonly number[], target: readonly number[]): Float32Array;
  /** `count` blocks of `width` elements: dst[dstOff + i·dstStride ..] = src[srcOff + i·srcStride ..]. */
  copyBlocks(src: Float32Array, srcOff: number, srcStride: number, dst: Float32Array, dstOff: number, dstStride: number, width: number, count: number): void;

  // ---- gather / scatter / random masks ---------------------------------------------------
  /** out[i, :] = weight[ids[i], :] (ids already validated). */
  gatherRows(weight: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void;
  /** gw[ids[i], :] += g[i, :]. */
  scatterAddRows(g: Float32Array, ids: Int32Array, dim: number, gw: Float32Array): void;
  /** keep[i] = scale with probability 1−p else 0, one rng.uniform() per element in order. */
  dropoutMask(rng: Rng, p: number, scale: number, keep: Float32Array): void;

  // ---- N:M sparsity ----------------------------------------------------------------------
  /**
   * The highest density N/M at which this backend's compressed kernels (forward + dX + kept dW)
   * beat its dense products of W ⊙ E; a hard N:M phase above it runs dense. Measured by the
   * `sparse` bench suite's denser patterns.
   */
  readonly nmCompressedMaxDensity: number;
  /** Offsets (ascending) of the N largest |w| of each group; ties to the lower index. */
  nmKeepOffsets(data: Float32Array, rows: number, cols: number, n: number, m: number, out: Uint8Array): void;
  /** y [rows, out] = x [rows, in] · Wᵀ (+ bias). */
  nmForward(x: Float32Array, rows: number, w: NMWeight, bias: Float32Array | null, y: Float32Array): void;
  /** dX [rows, in] = dY [rows, out] · W. */
  nmInputGrad(dy: Float32Array, rows: number, w: NMWeight): Float32Array;
  /** dYᵀ·X at the kept positions only, in W's storage order ([nnz]). */
  nmKeptWeightGrad(dy: Float32Array, x: Float32Array, rows: number, w: NMWeight): Float32Array;
  /** values[e] = dense[kept position of entry e]. */
  nmGather(dense: Float32Array, w: NMWeight, values: Float32Array): void;
  /** dense[kept position of entry e] = values[e] (other positions untouched). */
  nmScatter(values: Float32Array, w: NMWeight, dense: Float32Array): void;
  /** out = W ⊙ s elementwise (the masked weight W ⊙ (E + α·Ē)). */
  mulInto(a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** E + α·Ē from a 0/1 mask. */
  maskScale(keep: Float32Array, alpha: number): Float32Array;
  /** Where keep = 0: gw = coef·gw + λ·w (pruned weights' gradient rule). */
  prunedGrad(gw: Float32Array, keep: Float32Array, w: Float32Array, coef: number, lambda: number): void;
  /** Number of non-zero elements (kept positions of a 0/1 mask). */
  countNonZero(x: Float32Array): number;
  /** 0/1 mask keeping the `keep` largest |w| of the tensor (ties to the lower flat index). */
  topMagnitudeMask(data: Float32Array, keep: number, out: Float32Array): void;

  // ---- optimizer updates (in place) ------------------------------------------------------
  sgdUpdate(w: Float32Array, g: Float32Array, velocity: Float32Array, p: SgdParams): void;
  adamUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, p: AdamParams): void;
}

const registry = new Map<string, Backend>();
let active: Backend | null = null;
let fallbackBase: Backend | null = null;

/**
 * Adds a backend to the registry (the first one registered, `js`, is the fallback every other
 * backend is completed from). Re-registering a name replaces it.
 */
export function registerBackend(backend: Backend): void {
  if (!backend.name || typeof backend.name !== 'string') throw new BackendError('registerBackend', 'a backend needs a non-empty name');
  registry.set(backend.name, backend);
  fallbackBase ??= backend;
  if (active?.name === backend.name) active = backend;
}

/** Names of the registered backends, in registration order. */
export function listBackends(): string[] {
  return [...registry.keys()];
}

function lookup(where: string, name: string): Backend {
  const b = registry.get(name);
  if (b === undefined) throw new BackendError(where, `unknown backend '${name}'; registered backends: ${listBackends().join(', ')}`);
  return b;
}

/** Selects the backend every op uses from now on. */
export function setBackend(name: string): void {
  active = lookup('setBackend', name);
}

/** Fastest first: the default is the first of these that is registered (wasm registers only where SIMD validates). */
const PREFERENCE = ['wasm', 'js'];

/** The backend used when neither setBackend nor NMGRAD_BACKEND chose one. */
export function defaultBackendName(): string {
  return PREFERENCE.find((name) => registry.has(name)) ?? listBackends()[0] ?? 'js';
}

/** The backend in use: set by setBackend, else NMGRAD_BACKEND, else defaultBackendName(). */
export function getBackend(): Backend {
  if (active !== null) return active;
  const env = process.env.NMGRAD_BACKEND;
  active = env !== undefined && env !== '' ? lookup('NMGRAD_BACKEND', env) : lookup('getBackend', defaultBackendName());
  return active;
}

const details = new Map<string, () => string>();

/** Registers a one-line description of what a backend runs (shown by describeBackend). */
export function setBackendDetail(name: string, detail: () => string): void {
  details.set(name, detail);
}

/** `name (detail)` of the active backend, e.g. for a CLI's start-up line. */
export function describeBackend(): string {
  const { name } = getBackend();
  const detail = details.get(name);
  return detail ? `${name} (${detail()})` : name;
}

/** A registered backend by name, without selecting it (tests, cross-backend checks). */
export function backendByName(name: string): Backend {
  return lookup('backendByName', name);
}

/**
 * Completes a partial backend with the methods of `base` (default: the first registered, `js`),
 * so a new backend can start with one kernel and grow. Missing methods run the base's code on
 * the same buffers.
 */
export function withFallback(partial: Partial<Backend> & { name: string }, base: Backend | null = fallbackBase): Backend {
  if (base === null) throw new BackendError('withFallback', `no base backend is registered to complete '${partial.name}'`);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(base) as (keyof Backend)[]) {
    const own = partial[key];
    out[key] = own !== undefined ? own : base[key];
  }
  for (const [key, v] of Object.entries(partial)) out[key] = v;
  return out as unknown as Backend;
}

/** Runs fn with `name` as the active backend, restoring the previous choice afterwards. */
export function withBackend<T>(name: string, fn: () => T): T {
  const prev = active;
  active = lookup('withBackend', name);
  try {
    return fn();
  } finally {
    active = prev;
  }
}
