/**
 * The wasm SIMD dense product with the exact contract of `matmulRows` in ../js/gemm.ts:
 * rows [rowStart, rowEnd) of C (+)= op(A)·op(B) for every MatmulSpec form.
 *
 * Memory model: the module imports the tensor arena (../memory/arena.ts), so operands that live
 * there — every tensor of 2048+ elements — are read and written in place: packing reads A and
 * B where they lie and the micro-kernel writes C rows directly. Anything else (small or
 * caller-made arrays) is staged through this thread's scratch, as are the packed panels.
 *
 * Blocking (KC × NC panels of B, MC × KC blocks of A) follows GotoBLAS. Per output element the
 * f32 operation sequence depends only on k and KC, never on the row range or tile position,
 * so results are bitwise identical however rows are split between threads.
 */
import { addRowVector, matmulRows as jsMatmulRows } from '../js/fallbacks.js';
import { type GemmArgs, type MatmulSpec } from '../backend.js';
import type { BatchedGemmArgs } from '../backend.js';
import { DEFAULT_SHAPE, buildGemmModule, type GemmKernelShape } from './gemm-module.js';
import { hasRelaxedSimd } from './features.js';
import { heapF32, heapI32, instantiateOnArena, ptrOf, scratch } from '../memory/arena.js';
import { WASM_MIN_VOLUME } from './placement.js';

const NC = 1024;
const KC = 256;
/** Scratch for the kernel's edge tile (MR × NR floats at most). */
const TILE_BYTES = 1024;

type Pack = (src: number, dst: number, rows: number, cols: number, rowStride: number, colStride: number, panel: number) => void;
type Kernel = (pa: number, pb: number, c: number, ldc: number, mc: number, nc: number, kc: number, add: number, tile: number, bias: number) => void;
type Batches = (a: number, b: number, c: number, offs: number, count: number, m: number, n: number, k: number, aRow: number, aCol: number, bRow: number, bCol: number, add: number, packA: number, packB: number, tile: number) => void;

export interface WasmGemm {
  readonly shape: GemmKernelShape;
  /**
   * Same arguments and semantics as matmulRows. `seq` names the dispatch (pool.ts): calls with
   * the same seq are chunks of one product, so op(B) packed by the first is reused. With
   * `bias` (length n, spec.accumulate false: checkGemmBias, done once by the caller) every row
   * of C starts as the bias and the product is added to it: C = op(A)·op(B) + bias.
   */
  matmulRows(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number, spec: MatmulSpec, rowStart: number, rowEnd: number, seq?: number, bias?: Float32Array | null): void;
  /**
   * Whole products [start, end) of a batch: product i is C at cOffs[i] (+)= op(A at aOffs[i])·op(B
   * at bOffs[i]), the same bits as matmulRows over all its rows. Products of one block with
   * every operand in the arena run in one wasm call; others one matmulRows each.
   */
  matmulBatches(a: Float32Array, aOffs: ArrayLike<number>, b: Float32Array, bOffs: ArrayLike<number>, c: Float32Array, cOffs: ArrayLike<number>, spec: MatmulSpec, start: number, end: number): void;
}

const roundUp = (x: number, to: number): number => Math.ceil(x / to) * to;

/**
 * Element strides of op(A) (row i, element p at 4·(i·aRow + p·aCol)) and op(B) (element (p, j)
 * at 4·(j·bRow + p·bCol)) as A and B lie, row-major, in a product of `spec`.
 */
function operandStrides({ m, n, k, transA, transB }: MatmulSpec): { aRow: number; aCol: number; bRow: number; bCol: number } {
  const [aRow, aCol] = transA ? [1, m] : [k, 1];
  const [bRow, bCol] = transB ? [k, 1] : [1, n];
  return { aRow, aCol, bRow, bCol };
}

/** Compiles and instantiates one GEMM module on this thread's arena; options override the measured defaults. */
export function createWasmGemm(options: Partial<GemmKernelShape> & { mc?: number; kc?: number } = {}): WasmGemm {
  const shape: GemmKernelShape = { ...DEFAULT_SHAPE, relaxed: hasRelaxedSimd(), ...options };
  const nr = 4 * shape.nv;
  const mc = roundUp(options.mc ?? 120, shape.mr);
  const kcBlock = options.kc ?? KC;
  const inst = instantiateOnArena(buildGemmModule(shape), 'wasm.gemm');
  const pack = inst.exports.pack as Pack;
  const kernel = inst.exports.kernel as Kernel;
  const batches = inst.exports.batches as Batches;

  /** The product whose packed B (and, for op(A) = Aᵀ, staged A) the scratch holds: its dispatch's seq and shape, if any. */
  let packedFor: { seq: number; base: number; aOff: number; bOff: number; m: number; k: number; n: number; transA: boolean; transB: boolean } | null = null;

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
    // Operands in the arena are used where they lie; any other is staged in this thread's
    // scratch. Scratch: the edge tile, packed A (MC×KC), op(B) packed whole, then staged
    // operands. Chunks of one dispatch (same seq) share the packed op(B), and for op(A) = Aᵀ a
    // staged A (its rows are columns there, so a chunk's share is strided).
    const [pa, pb, pc] = [ptrOf(a), ptrOf(b), ptrOf(c)];
    const pBias = bias === null ? -1 : ptrOf(bias);
    const pbBytes = packedBFloats(n, k) * 4;
    const aBytes = pa >= 0 ? 0 : roundUp(transA ? k * m : rows * k, 4) * 4;
    const bBytes = pb >= 0 ? 0 : roundUp(k * n, 4) * 4;
    const cBytes = pc >= 0 ? 0 : roundUp(rows * n, 4) * 4;
    const biasBytes = bias === null || pBias >= 0 ? 0 : roundUp(n, 4) * 4;
    const packABytes = mc * kcBlock * 4;
    const base = scratch(TILE_BYTES + packABytes + pbBytes + aBytes + bBytes + cBytes + biasBytes, 'wasm.gemm');
    const heap = heapF32();
    const tileAt = base;
    const packAAt = tileAt + TILE_BYTES;
    const pbAt = packAAt + packABytes;
    const aAt = pbAt + pbBytes;
    const bAt = aAt + aBytes;
    const cAt = bAt + bBytes;
    const biasAt = cAt + cBytes;
    const p = packedFor;
    const cached = seq !== undefined && p !== null && p.seq === seq && p.base === base && p.aOff === aOff && p.bOff === bOff && p.m === m && p.k === k && p.n === n && p.transA === transA && p.transB === transB;
    // op(B) element (p, j) at bSrc + 4·(j·bRow + p·bCol): packed as panels of NR columns.
    const { aRow, aCol, bRow, bCol } = operandStrides(spec);
    if (!cached) {
      packedFor = null;
      let bSrc = pb + 4 * bOff;
      if (pb < 0) {
        heap.set(b.subarray(bOff, bOff + k * n), bAt / 4);
        bSrc = bAt;
      }
      for (let jc = 0; jc < n; jc += NC) {
        const nc = Math.min(NC, n - jc);
        for (let pc0 = 0; pc0 < k; pc0 += kcBlock) pack(bSrc + 4 * (jc * bRow + pc0 * bCol), pbAt + 4 * panelAt(jc, pc0, n, k), nc, Math.min(kcBlock, k - pc0), bRow, bCol, nr);
      }
      if (transA && pa < 0) heap.set(a.subarray(aOff, aOff + k * m), aAt / 4);
      if (seq !== undefined) packedFor = { seq, base, aOff, bOff, m, k, n, transA, transB };
    }
    // Row i of the chunk's op(A), element p, lives at a0 + 4·(i·aRow + p·aCol).
    let a0: number;
    if (!transA) {
      if (pa >= 0) a0 = pa + 4 * (aOff + rowStart * k);
      else {
        heap.set(a.subarray(aOff + rowStart * k, aOff + rowEnd * k), aAt / 4);
        a0 = aAt;
      }
    } else a0 = (pa >= 0 ? pa + 4 * aOff : aAt) + 4 * rowStart; // a staged A was copied whole above (or by an earlier chunk)
    let c0 = pc + 4 * (cOff + rowStart * n);
    if (pc < 0) {
      c0 = cAt;
      if (accumulate) heap.set(c.subarray(cOff + rowStart * n, cOff + rowEnd * n), cAt / 4);
    }
    // With a bias, the first k block adds the product to the bias row (kernel add 2): the bits of
    // adding it to rows filled with the bias, without writing them first.
    let biasSrc = pBias;
    if (bias !== null && pBias < 0) {
      heap.set(bias, biasAt / 4);
      biasSrc = biasAt;
    }
    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc);
      for (let pc0 = 0; pc0 < k; pc0 += kcBlock) {
        const kc = Math.min(kcBlock, k - pc0);
        const add = accumulate || pc0 > 0 ? 1 : bias !== null ? 2 : 0;
        const panel = pbAt + 4 * panelAt(jc, pc0, n, k);
        for (let ic = 0; ic < rows; ic += mc) {
          const mcNow = Math.min(mc, rows - ic);
          pack(a0 + 4 * (ic * aRow + pc0 * aCol), packAAt, mcNow, kc, aRow, aCol, shape.mr);
          kernel(packAAt, panel, c0 + 4 * (ic * n + jc), n, mcNow, nc, kc, add, tileAt, add === 2 ? biasSrc + 4 * jc : 0);
        }
      }
    }
    if (pc < 0) c.set(heap.subarray(cAt / 4, cAt / 4 + rows * n), cOff + rowStart * n);
  }

  function matmulBatches(a: Float32Array, aOffs: ArrayLike<number>, b: Float32Array, bOffs: ArrayLike<number>, c: Float32Array, cOffs: ArrayLike<number>, spec: MatmulSpec, start: number, end: number): void {
    const { m, n, k, accumulate } = spec;
    const count = end - start;
    const [pa, pb, pc] = [ptrOf(a), ptrOf(b), ptrOf(c)];
    if (count <= 0) return;
    if (m > mc || n > NC || k > kcBlock || k === 0 || n === 0 || pa < 0 || pb < 0 || pc < 0) {
      for (let i = start; i < end; i++) matmulRows(a, aOffs[i]!, b, bOffs[i]!, c, cOffs[i]!, spec, 0, m);
      return;
    }
    const nr = 4 * shape.nv;
    const packABytes = roundUp(m, shape.mr) * k * 4;
    const packBBytes = roundUp(n, nr) * k * 4;
    const base = scratch(TILE_BYTES + packABytes + packBBytes + 12 * count, 'wasm.gemm');
    const tileAt = base;
    const packAAt = tileAt + TILE_BYTES;
    const packBAt = packAAt + packABytes;
    const offsAt = packBAt + packBBytes;
    const heap = heapI32();
    for (let i = 0; i < count; i++) {
      heap[offsAt / 4 + 3 * i] = aOffs[start + i]!;
      heap[offsAt / 4 + 3 * i + 1] = bOffs[start + i]!;
      heap[offsAt / 4 + 3 * i + 2] = cOffs[start + i]!;
    }
    // The packed B of the last matmulRows product may lie where this call packs: forget it.
    packedFor = null;
    const { aRow, aCol, bRow, bCol } = operandStrides(spec);
    batches(pa, pb, pc, offsAt, count, m, n, k, aRow, aCol, bRow, bCol, accumulate ? 1 : 0, packAAt, packBAt, tileAt);
  }

  return { shape, matmulRows, matmulBatches };
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
  const { spec } = args;
  if (rowsKernel(spec) === wasmMatmulRows) {
    threadGemm().matmulBatches(args.a, args.aOffs, args.b, args.bOffs, args.c, args.cOffs, spec, start, end);
    return;
  }
  for (let i = start; i < end; i++) jsMatmulRows(args.a, args.aOffs[i]!, args.b, args.bOffs[i]!, args.c, args.cOffs[i]!, spec, 0, spec.m);
}
