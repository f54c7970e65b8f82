/**
 * The wasm SIMD dense product with the exact contract of `matmulRows` in ../matmul.ts:
 * rows [rowStart, rowEnd) of C (+)= op(A)·op(B) for every MatmulSpec form.
 *
 * Memory model: each thread owns one instance with its own (non-shared, growable) memory;
 * a call copies the operand rows it needs in, runs packing and the micro-kernel in wasm, and
 * copies its C rows out. The copies are O(n²) against O(n³) arithmetic; docs/wasm.md has the
 * measured share on the Transformer shapes and why this beat one shared memory.
 *
 * Blocking (KC × NC panels of B, MC × KC blocks of A) follows GotoBLAS. Per output element the
 * f32 operation sequence depends only on k and KC, never on the row range or tile position,
 * so results are bitwise identical however rows are split between threads.
 */
import { WorkerError } from '../../errors.js';
import { addRowVector } from '../elementwise.js';
import { matmulRows as jsMatmulRows, type GemmArgs, type MatmulSpec } from '../matmul.js';
import type { BatchedGemmArgs } from '../backend.js';
import { DEFAULT_SHAPE, buildGemmModule, type GemmKernelShape } from './gemm-module.js';
import { hasRelaxedSimd } from './features.js';
import { growMemory, wasmApi, type WasmMemory } from './runtime.js';

const NC = 1024;
const KC = 256;

type Pack = (src: number, dst: number, rows: number, cols: number, rowStride: number, colStride: number, panel: number) => void;
type Kernel = (pa: number, pb: number, c: number, ldc: number, mc: number, nc: number, kc: number, add: number, tile: number) => void;
type FillRows = (dst: number, rows: number, rowBytes: number, src: number) => void;

export interface WasmGemm {
  readonly shape: GemmKernelShape;
  /**
   * Same arguments and semantics as matmulRows. `seq` names the dispatch (pool.ts): calls with
   * the same seq are chunks of one product, so op(B) packed by the first is reused. With
   * `bias` (length n, spec.accumulate false: checkGemmBias, done once by the caller) every row
   * of C starts as the bias and the product is added to it: C = op(A)·op(B) + bias.
   */
  matmulRows(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec, rowStart: number, rowEnd: number, seq?: number, bias?: Float32Array | null): void;
}

const roundUp = (x: number, to: number): number => Math.ceil(x / to) * to;

/** Compiles and instantiates one GEMM module (one per thread: its memory is private); options override the measured defaults. */
export function createWasmGemm(options: Partial<GemmKernelShape> & { mc?: number; kc?: number } = {}): WasmGemm {
  const api = wasmApi();
  if (api === null) throw new WorkerError('wasm.gemm', 'this runtime has no WebAssembly');
  const shape: GemmKernelShape = { ...DEFAULT_SHAPE, relaxed: hasRelaxedSimd(), ...options };
  const nr = 4 * shape.nv;
  const mc = roundUp(options.mc ?? 120, shape.mr);
  const kcBlock = options.kc ?? KC;
  const inst = new api.Instance(new api.Module(buildGemmModule(shape)));
  const memory = inst.exports.memory as WasmMemory;
  const pack = inst.exports.pack as Pack;
  const kernel = inst.exports.kernel as Kernel;
  const fillRows = inst.exports.fillRows as FillRows;
  // Fixed regions first: the edge tile, packed A (MC×KC); packed B and the operands after.
  const tileAt = 0;
  const packAAt = 1024;
  const operandsAt = packAAt + mc * kcBlock * 4;
  let heap = new Float32Array(memory.buffer);

  const reserve = (bytes: number, spec: MatmulSpec): void => {
    if (growMemory(memory, bytes, 'wasm.gemm', () => `a [${spec.m}×${spec.k}]·[${spec.k}×${spec.n}] product`)) heap = new Float32Array(memory.buffer);
  };

  /** The product whose packed B (and, for op(A) = Aᵀ, whole A) the instance holds: its dispatch's seq and shape, if any. */
  let packedFor: { seq: number; aOff: number; bOff: number; m: number; k: number; n: number; transA: boolean; transB: boolean } | null = null;

  /** Floats of op(B) packed whole: NC-column blocks of NR-padded panels, KC-row slices inside. */
  const packedBFloats = (n: number, k: number): number => (Math.floor(n / NC) * roundUp(NC, nr) + (n % NC === 0 ? 0 : roundUp(n % NC, nr))) * k;
  /** Float offset of the panel of columns [jc, jc + NC), rows [pc, pc + KC) in the packed B. */
  const panelAt = (jc: number, pc: number, n: number, k: number): number => (jc / NC) * roundUp(NC, nr) * k + roundUp(Math.min(NC, n - jc), nr) * pc;

  function matmulRows(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec, rowStart: number, rowEnd: number, seq?: number, bias: Float32Array | null = null): void {
    const { m, n, k, transA, transB, accumulate } = spec;
    if (rowEnd <= rowStart || n === 0) return;
    const rows = rowEnd - rowStart;
    if (k === 0) {
      if (bias !== null) for (let r = rowStart; r < rowEnd; r++) c.set(bias, cOff + r * n);
      else if (!accumulate) c.fill(0, cOff + rowStart * n, cOff + rowEnd * n);
      return;
    }
    // B packed whole at a fixed address, then the copies of A, B and C. Chunks of one dispatch
    // (same seq) share op(B), and for op(A) = Aᵀ all of A (its rows are columns there, so a
    // chunk's share is strided): a thread that runs several chunks copies and packs them once.
    const pbAt = operandsAt;
    const aAt = pbAt + packedBFloats(n, k) * 4;
    const bAt = aAt + roundUp(transA ? k * m : rows * k, 4) * 4;
    const cAt = bAt + roundUp(k * n, 4) * 4;
    const biasAt = cAt + roundUp(rows * n, 4) * 4;
    reserve(biasAt + (bias === null ? 0 : n * 4), spec);
    const p = packedFor;
    const cached = seq !== undefined && p !== null && p.seq === seq && p.aOff === aOff && p.bOff === bOff && p.m === m && p.k === k && p.n === n && p.transA === transA && p.transB === transB;
    // op(B) element (p, j) at bAt + 4·(j·bRow + p·bCol): packed as panels of NR columns.
    const [bRow, bCol] = transB ? [k, 1] : [1, n];
    if (!cached) {
      packedFor = null;
      heap.set(b.subarray(bOff, bOff + k * n), bAt / 4);
      for (let jc = 0; jc < n; jc += NC) {
        const nc = Math.min(NC, n - jc);
        for (let pc = 0; pc < k; pc += kcBlock) pack(bAt + 4 * (jc * bRow + pc * bCol), pbAt + 4 * panelAt(jc, pc, n, k), nc, Math.min(kcBlock, k - pc), bRow, bCol, nr);
      }
      if (transA) heap.set(a.subarray(aOff, aOff + k * m), aAt / 4);
      if (seq !== undefined) packedFor = { seq, aOff, bOff, m, k, n, transA, transB };
    }
    // Row i of the chunk's op(A), element p, lives at a0 + 4·(i·aRow + p·aCol).
    let a0 = aAt;
    let aRow: number, aCol: number;
    if (!transA) {
      heap.set(a.subarray(aOff + rowStart * k, aOff + rowEnd * k), aAt / 4);
      [aRow, aCol] = [k, 1];
    } else {
      a0 = aAt + 4 * rowStart; // all of A was copied above (or by an earlier chunk)
      [aRow, aCol] = [1, m];
    }
    if (accumulate) heap.set(c.subarray(cOff + rowStart * n, cOff + rowEnd * n), cAt / 4);
    if (bias !== null) {
      heap.set(bias, biasAt / 4);
      fillRows(cAt, rows, n * 4, biasAt);
    }
    const startsFromC = accumulate || bias !== null;
    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc);
      for (let pc = 0; pc < k; pc += kcBlock) {
        const kc = Math.min(kcBlock, k - pc);
        const add = startsFromC || pc > 0 ? 1 : 0;
        const pb = pbAt + 4 * panelAt(jc, pc, n, k);
        for (let ic = 0; ic < rows; ic += mc) {
          const mcNow = Math.min(mc, rows - ic);
          pack(a0 + 4 * (ic * aRow + pc * aCol), packAAt, mcNow, kc, aRow, aCol, shape.mr);
          kernel(packAAt, pb, cAt + 4 * (ic * n + jc), n, mcNow, nc, kc, add, tileAt);
        }
      }
    }
    c.set(heap.subarray(cAt / 4, cAt / 4 + rows * n), cOff + rowStart * n);
  }

  return { shape, matmulRows };
}

let perThread: WasmGemm | null = null;

/** This thread's GEMM instance, compiled on first use (each worker compiles its own). */
export function threadGemm(): WasmGemm {
  perThread ??= createWasmGemm();
  return perThread;
}

/** matmulRows on this thread's wasm instance. */
export function wasmMatmulRows(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec, rowStart: number, rowEnd: number): void {
  threadGemm().matmulRows(a, aOff, b, bOff, c, cOff, spec, rowStart, rowEnd);
}

/**
 * Below this m·n·k the JS kernel is faster (the call, copies and packing of a tiny product
 * outweigh its arithmetic): measured crossover between 4·4·4 (wasm 0.88× js) and 5·5·5 (2.0×).
 * The choice depends on the whole product's shape only, so every thread of a split takes it alike.
 */
export const WASM_MIN_VOLUME = 100;

function rowsKernel(spec: MatmulSpec): typeof jsMatmulRows {
  return spec.m * spec.n * spec.k < WASM_MIN_VOLUME ? jsMatmulRows : wasmMatmulRows;
}

/** The js kernels' argument record (one task shape for both backends), plus an optional bias row. */
export interface WasmGemmArgs extends GemmArgs {
  bias?: Float32Array | null;
}
export type WasmBatchedGemmArgs = BatchedGemmArgs;

/** Pool task: rows [rowStart, rowEnd) of one product (wasm, or JS below WASM_MIN_VOLUME). */
export function wasmGemmRows(args: WasmGemmArgs, rowStart: number, rowEnd: number, seq?: number): void {
  const { a, aOff, b, bOff, c, cOff, spec } = args;
  const bias = args.bias ?? null;
  if (spec.m * spec.n * spec.k < WASM_MIN_VOLUME) {
    jsMatmulRows(a, aOff, b, bOff, c, cOff, spec, rowStart, rowEnd);
    if (bias !== null) addRowVector(c.subarray(cOff + rowStart * spec.n, cOff + rowEnd * spec.n), rowEnd - rowStart, spec.n, bias);
  } else threadGemm().matmulRows(a, aOff, b, bOff, c, cOff, spec, rowStart, rowEnd, seq, bias);
}

/** Pool task: whole products [start, end) of a batch. */
export function wasmGemmBatches(args: WasmBatchedGemmArgs, start: number, end: number): void {
  const rows = rowsKernel(args.spec);
  for (let i = start; i < end; i++) rows(args.a, args.aOffs[i]!, args.b, args.bOffs[i]!, args.c, args.cOffs[i]!, args.spec, 0, args.spec.m);
}
