/**
 * Emits the wasm SIMD GEMM module: a strided panel packer and a register-blocked micro-kernel
 * sweep over packed panels (BLIS/GotoBLAS structure, XNNPACK-style load32_splat of A).
 *
 * The micro-kernel keeps an MR × (4·NV) block of C in MR·NV v128 accumulators. Per k step it
 * loads NV vectors of the packed B row and, for each of the MR rows, one splatted A element,
 * then does MR·NV multiply-adds (f32x4.relaxed_madd where the engine has it, mul + add
 * otherwise). The k loop can be unrolled (memarg offsets, one pointer bump per group), but the
 * default leaves unrolling to V8, which peels the loop itself without hoisting extra loads.
 *
 * Every element of C is the same sequence of f32 operations (k in order, then one add into C)
 * whatever tile, block or thread computes it: edge tiles run the full tile on zero-padded
 * panels and copy out only their valid corner.
 */
import { ARENA_IMPORT } from '../memory/arena.js';
import { F32, I32, ModuleBuilder, V128, transposeHalves, transposedColumn, type FunctionBuilder, type Local } from './assembler.js';

export interface GemmKernelShape {
  /** Rows of the register block. */
  mr: number;
  /** v128 columns of the register block (NR = 4·nv). */
  nv: number;
  /** k steps per unrolled loop iteration. */
  unroll: number;
  /** Use f32x4.relaxed_madd (only where the engine validates it). */
  relaxed: boolean;
}

/**
 * The block chosen by measurement on Zen 5 / V8 (docs/wasm.md): 8 accumulators + 2 B vectors +
 * 4 splats + 1 product fit the 15 xmm registers V8 allocates, so the loop never spills. Larger
 * blocks and explicit unrolling spill (V8 hoists every load of a step or unrolled group) and
 * ran at half the speed.
 */
export const DEFAULT_SHAPE: Omit<GemmKernelShape, 'relaxed'> = { mr: 4, nv: 2, unroll: 1 };

/**
 * Exports (all i32 arguments, addresses in bytes, strides in elements):
 * - `pack(src, dst, rows, cols, rowStride, colStride, panel)`: the logical rows×cols matrix
 *   with element (r, c) at `src + 4·(r·rowStride + c·colStride)` is written as panels of
 *   `panel` rows, column by column, rows past the end zero-padded.
 * - `kernel(packedA, packedB, c, ldc, mc, nc, kc, add, tile, bias)`: C[mc×nc] = Ã·B̃ (add 0),
 *   C += Ã·B̃ (add 1) or C = bias + Ã·B̃ (add 2, the bias row's element for column j at
 *   bias + 4·j: the same f32 add as C += onto rows that hold the bias, without writing them
 *   first), from panels packed with panel = MR (A) and NR (B); `tile` is MR·NR·4 bytes of
 *   scratch for edge tiles.
 * - `batches(a, b, c, offs, count, m, n, k, aRow, aCol, bRow, bCol, add, packA, packB, tile)`:
 *   `count` whole products of one block each (m ≤ the caller's MC, n ≤ NC, k ≤ KC), product i
 *   reading op(A) at a + 4·offs[3i] (element (r, p) at + 4·(r·aRow + p·aCol)), op(B) at
 *   b + 4·offs[3i + 1] (element (p, j) at + 4·(j·bRow + p·bCol)) and writing C (row stride n)
 *   at c + 4·offs[3i + 2]: the same pack and kernel calls as one product of one block, so the
 *   same bits, without a round trip to JS per product.
 */
export function buildGemmModule(shape: GemmKernelShape): Uint8Array {
  const m = new ModuleBuilder().importMemory(ARENA_IMPORT);
  m.func('pack', [I32, I32, I32, I32, I32, I32, I32], [], (f) => emitPack(f));
  m.func('kernel', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], [], (f) => emitKernel(f, shape));
  m.func('batches', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], [], (f) => emitBatches(f, shape, m.indexOf('pack'), m.indexOf('kernel')));
  return m.toBytes();
}

function emitPack(f: FunctionBuilder): void {
  const [src, dst, rows, cols, rowStride, colStride, panel] = f.params as [Local, Local, Local, Local, Local, Local, Local];
  const t0 = f.local(I32);
  const col = f.local(I32);
  const rr = f.local(I32);
  const colAddr = f.local(I32);
  const addr = f.local(I32);
  const rowStep = f.local(I32);
  const colStep = f.local(I32);
  const cols4 = f.local(I32);
  const panelBytes = f.local(I32);
  const [valid, blockBytes, dAt] = [f.local(I32), f.local(I32), f.local(I32)];
  const v = [0, 1, 2, 3].map(() => f.local(V128));
  const t = [0, 1, 2, 3].map(() => f.local(V128));
  f.get(rowStride).i32Const(2).op('i32.shl').set(rowStep);
  f.get(colStride).i32Const(2).op('i32.shl').set(colStep);
  f.get(panel).i32Const(2).op('i32.shl').set(panelBytes);
  f.forRange(t0, 0, rows, panel, () => {
    f.get(src).get(t0).get(rowStep).op('i32.mul').op('i32.add').set(colAddr);
    // Contiguous full panel (rowStride 1, panel a multiple of 4): whole vectors; else a scalar
    // gather with zero padding.
    f.get(rowStride).i32Const(1).op('i32.eq').get(t0).get(panel).op('i32.add').get(rows).op('i32.le_s').op('i32.and');
    f.get(panel).i32Const(3).op('i32.and').op('i32.eqz').op('i32.and');
    f.if(
      () => {
        f.forRange(col, 0, cols, 1, () => {
          f.get(colAddr).set(addr);
          f.forRange(rr, 0, panel, 4, () => {
            f.get(dst).get(addr).mem('v128.load', 0, 2).mem('v128.store', 0, 2);
            f.get(dst).i32Const(16).op('i32.add').set(dst);
            f.get(addr).i32Const(16).op('i32.add').set(addr);
          });
          f.get(colAddr).get(colStep).op('i32.add').set(colAddr);
        });
      },
      () => {
        // Contiguous columns (colStride 1) of a full panel (a multiple of 4 rows): 4×4 blocks,
        // four rows' v128 loads transposed by shuffles into four packed columns; the last
        // cols mod 4 columns, and everything else, by the scalar gather below.
        f.get(colStride).i32Const(1).op('i32.eq').get(t0).get(panel).op('i32.add').get(rows).op('i32.le_s').op('i32.and');
        f.get(panel).i32Const(3).op('i32.and').op('i32.eqz').op('i32.and');
        f.if(() => {
          f.get(cols).i32Const(-4).op('i32.and').set(cols4);
          f.forRange(col, 0, cols4, 4, () => {
            f.forRange(rr, 0, panel, 4, () => {
              // rows t0 + rr .. + 3, columns col .. col + 3
              f.get(colAddr).get(rr).get(rowStep).op('i32.mul').op('i32.add').get(col).i32Const(2).op('i32.shl').op('i32.add').set(addr);
              for (let i = 0; i < 4; i++) {
                f.get(addr).mem('v128.load', 0, 2).set(v[i]!);
                if (i < 3) f.get(addr).get(rowStep).op('i32.add').set(addr);
              }
              transposeHalves(f, v, t);
              // column col + j of the panel starts at dst + 4·(col + j)·panel; these rows at + 4·rr
              f.get(dst).get(col).get(panel).op('i32.mul').get(rr).op('i32.add').i32Const(2).op('i32.shl').op('i32.add').set(addr);
              for (let j = 0; j < 4; j++) {
                f.get(addr);
                transposedColumn(f, t, j);
                f.mem('v128.store', 0, 2);
                if (j < 3) f.get(addr).get(panelBytes).op('i32.add').set(addr);
              }
            });
          });
          // the remaining columns, scalar (the panel is full: no padding)
          f.forRange(col, cols4, cols, 1, () => {
            f.get(colAddr).get(col).i32Const(2).op('i32.shl').op('i32.add').set(addr);
            f.forRange(rr, 0, panel, 1, () => {
              f.get(dst).get(col).get(panel).op('i32.mul').get(rr).op('i32.add').i32Const(2).op('i32.shl').op('i32.add');
              f.get(addr).mem('f32.load').mem('f32.store');
              f.get(addr).get(rowStep).op('i32.add').set(addr);
            });
          });
          f.get(dst).get(cols).get(panelBytes).op('i32.mul').op('i32.add').set(dst);
        }, () => {
          // Any other panel (a partial last one above all): zero the block when rows are
          // missing, then copy the valid rows element by element (no per-element test).
          f.get(rows).get(t0).op('i32.sub').tee(valid).get(panel).get(valid).get(panel).op('i32.lt_s').op('select').set(valid);
          f.get(cols).get(panelBytes).op('i32.mul').set(blockBytes);
          f.get(valid).get(panel).op('i32.lt_s').if(() => {
            f.get(blockBytes).i32Const(-16).op('i32.and').set(addr);
            f.forRange(col, 0, addr, 16, () => void f.get(dst).get(col).op('i32.add').f32x4Const([0, 0, 0, 0]).mem('v128.store', 0, 2));
            f.forRange(col, addr, blockBytes, 4, () => void f.get(dst).get(col).op('i32.add').f32Const(0).mem('f32.store'));
          });
          f.forRange(rr, 0, valid, 1, () => {
            // row t0 + rr: its columns go to dst + 4·rr, one panel (panelBytes) apart
            f.get(colAddr).get(rr).get(rowStep).op('i32.mul').op('i32.add').set(addr);
            f.get(dst).get(rr).i32Const(2).op('i32.shl').op('i32.add').set(dAt);
            f.forRange(col, 0, cols, 1, () => {
              f.get(dAt).get(addr).mem('f32.load').mem('f32.store');
              f.get(addr).get(colStep).op('i32.add').set(addr);
              f.get(dAt).get(panelBytes).op('i32.add').set(dAt);
            });
          });
          f.get(dst).get(blockBytes).op('i32.add').set(dst);
        });
      },
    );
  });
}

function emitBatches(f: FunctionBuilder, shape: GemmKernelShape, pack: number, kernel: number): void {
  const [a, b, c, offs, count, m, n, k, aRow, aCol, bRow, bCol, add, packA, packB, tile] = f.params as Local[];
  const i = f.local(I32);
  const at = f.local(I32);
  f.forRange(i, 0, count!, 1, () => {
    f.get(offs!).get(i).i32Const(12).op('i32.mul').op('i32.add').set(at);
    // op(B): n rows of k (its columns), panels of NR
    f.get(b!).get(at).mem('i32.load', 4).i32Const(2).op('i32.shl').op('i32.add');
    f.get(packB!).get(n!).get(k!).get(bRow!).get(bCol!).i32Const(4 * shape.nv).call(pack);
    // op(A): m rows of k, panels of MR
    f.get(a!).get(at).mem('i32.load', 0).i32Const(2).op('i32.shl').op('i32.add');
    f.get(packA!).get(m!).get(k!).get(aRow!).get(aCol!).i32Const(shape.mr).call(pack);
    f.get(packA!).get(packB!);
    f.get(c!).get(at).mem('i32.load', 8).i32Const(2).op('i32.shl').op('i32.add');
    f.get(n!).get(m!).get(n!).get(k!).get(add!).get(tile!).i32Const(0).call(kernel);
  });
}

function emitKernel(f: FunctionBuilder, shape: GemmKernelShape): void {
  const { mr, nv, unroll, relaxed } = shape;
  const nr = 4 * nv;
  const [pa, pb, c, ldc, mc, nc, kc, add, tile, bias] = f.params as [Local, Local, Local, Local, Local, Local, Local, Local, Local, Local];
  const jr = f.local(I32);
  const ir = f.local(I32);
  const p = f.local(I32);
  const ptrA = f.local(I32);
  const ptrB = f.local(I32);
  const cRow = f.local(I32);
  const ldcBytes = f.local(I32);
  const i = f.local(I32);
  const j = f.local(I32);
  const acc: Local[][] = Array.from({ length: mr }, () => Array.from({ length: nv }, () => f.local(V128)));
  const bVec: Local[] = Array.from({ length: nv }, () => f.local(V128));
  const aVec = f.local(V128);

  const step = (u: number): void => {
    for (let v = 0; v < nv; v++) f.get(ptrB).mem('v128.load', (u * nr + 4 * v) * 4, 2).set(bVec[v]!);
    for (let r = 0; r < mr; r++) {
      f.get(ptrA).mem('v128.load32_splat', (u * mr + r) * 4).set(aVec);
      for (let v = 0; v < nv; v++) {
        if (relaxed) f.get(aVec).get(bVec[v]!).get(acc[r]![v]!).op('f32x4.relaxed_madd');
        else f.get(acc[r]![v]!).get(aVec).get(bVec[v]!).op('f32x4.mul').op('f32x4.add');
        f.set(acc[r]![v]!);
      }
    }
  };
  const bump = (steps: number): void => {
    f.get(ptrA).i32Const(steps * mr * 4).op('i32.add').set(ptrA);
    f.get(ptrB).i32Const(steps * nr * 4).op('i32.add').set(ptrB);
  };
  /** Stores the block at rowPtr(r): the accumulators, or added to what is there (from 'c') or to the bias row ('bias'). */
  const storeBlock = (rowPtr: (r: number) => void, from: 'none' | 'c' | 'bias'): void => {
    for (let r = 0; r < mr; r++) {
      for (let v = 0; v < nv; v++) {
        rowPtr(r);
        if (from === 'c') rowPtr(r);
        else if (from === 'bias') f.get(bias).get(jr).i32Const(2).op('i32.shl').op('i32.add');
        if (from !== 'none') f.mem('v128.load', 16 * v, 2).get(acc[r]![v]!).op('f32x4.add');
        else f.get(acc[r]![v]!);
        f.mem('v128.store', 16 * v, 2);
      }
    }
  };

  f.get(ldc).i32Const(2).op('i32.shl').set(ldcBytes);
  f.forRange(jr, 0, nc, nr, () => {
    f.forRange(ir, 0, mc, mr, () => {
      f.get(pa).get(ir).get(kc).op('i32.mul').i32Const(2).op('i32.shl').op('i32.add').set(ptrA);
      f.get(pb).get(jr).get(kc).op('i32.mul').i32Const(2).op('i32.shl').op('i32.add').set(ptrB);
      for (const row of acc) for (const a of row) f.f32x4Const([0, 0, 0, 0]).set(a);
      f.i32Const(0).set(p);
      f.block((exit) => {
        f.loop((top) => {
          f.get(p).i32Const(unroll).op('i32.add').get(kc).op('i32.gt_s').brIf(exit);
          for (let u = 0; u < unroll; u++) step(u);
          bump(unroll);
          f.get(p).i32Const(unroll).op('i32.add').set(p).br(top);
        });
      });
      f.forRange(p, p, kc, 1, () => {
        step(0);
        bump(1);
      });
      f.get(c).get(ir).get(ldc).op('i32.mul').get(jr).op('i32.add').i32Const(2).op('i32.shl').op('i32.add').set(cRow);
      const cRowOf = (r: number): void => void f.get(cRow).i32Const(r).get(ldcBytes).op('i32.mul').op('i32.add');
      f.get(mc).get(ir).op('i32.sub').i32Const(mr).op('i32.ge_s').get(nc).get(jr).op('i32.sub').i32Const(nr).op('i32.ge_s').op('i32.and');
      f.if(
        () => {
          f.get(add).i32Const(1).op('i32.eq');
          f.if(() => storeBlock(cRowOf, 'c'), () => {
            f.get(add);
            f.if(() => storeBlock(cRowOf, 'bias'), () => storeBlock(cRowOf, 'none'));
          });
        },
        () => {
          storeBlock((r) => void f.get(tile).i32Const(r * nr * 4).op('i32.add'), 'none');
          // Valid corner only: rows < mc − ir, columns < nc − jr.
          f.forRange(i, 0, mr, 1, () => {
            f.get(i).get(ir).op('i32.add').get(mc).op('i32.ge_s');
            f.if(() => void f.i32Const(mr).set(i), () => {
              f.forRange(j, 0, nr, 1, () => {
                f.get(j).get(jr).op('i32.add').get(nc).op('i32.lt_s');
                f.if(() => {
                  const cAddr = (): void => void f.get(cRow).get(i).get(ldcBytes).op('i32.mul').op('i32.add').get(j).i32Const(2).op('i32.shl').op('i32.add');
                  const tileValue = (): void => void f.get(tile).get(i).i32Const(nr).op('i32.mul').get(j).op('i32.add').i32Const(2).op('i32.shl').op('i32.add').mem('f32.load');
                  f.get(add);
                  f.if(
                    () => {
                      cAddr();
                      f.get(add).i32Const(1).op('i32.eq');
                      f.if(() => void cAddr(), () => void f.get(bias).get(jr).get(j).op('i32.add').i32Const(2).op('i32.shl').op('i32.add'), I32);
                      f.mem('f32.load');
                      tileValue();
                      f.op('f32.add').mem('f32.store');
                    },
                    () => {
                      cAddr();
                      tileValue();
                      f.mem('f32.store');
                    },
                  );
                });
              });
            });
          });
        },
      );
    });
  });
}
