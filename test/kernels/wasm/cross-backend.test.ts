import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backendByName, listBackends } from '../../../src/kernels/backends.js';
import { matmulNaive } from '../../../src/kernels/js/gemm.js';
import { type MatmulSpec } from '../../../src/kernels/backend.js';
import { Rng } from '../../../src/kernels/random.js';
import { allocF32 } from '../../../src/kernels/memory/storage.js';
import { setParallelMinCost, setThreads } from '../../../src/kernels/threads/pool.js';
import { hasSimd } from '../../../src/kernels/wasm/features.js';
import { RUNS, restoreThreadsAfterAll } from '../../helpers.js';

function rand(n: number, rng: Rng): Float32Array {
  const a = allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** The float64 product with C₀ added, and the Σ|a||b| + |C₀| scale of its f32 rounding error. */
function oracle(a: Float32Array, b: Float32Array, c0: Float32Array | null, spec: MatmulSpec): { want: Float64Array; mag: Float64Array } {
  const ref = matmulNaive(a, b, spec);
  const mag = matmulNaive(a.map(Math.abs), b.map(Math.abs), spec);
  const want = Float64Array.from(ref, (v, i) => v + (c0 ? c0[i]! : 0));
  return { want, mag: Float64Array.from(mag, (v, i) => v + (c0 ? Math.abs(c0[i]!) : 0)) };
}

const arbDim = fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constantFrom(16, 17, 31, 33, 64, 65, 127, 257));
const arbSpec = fc.record({ m: arbDim, n: arbDim, k: arbDim, transA: fc.boolean(), transB: fc.boolean(), accumulate: fc.boolean() });

restoreThreadsAfterAll();

describe.runIf(hasSimd())('cross-backend: wasm dense products against js and a float64 oracle', () => {
  it('registers wherever a SIMD module validates', () => {
    expect(listBackends()).toContain('wasm');
  });

  it('gemm: every MatmulSpec form, 1 and 2 threads; wasm and js both within the f32 error bound of float64', () => {
    setParallelMinCost(0);
    const wasm = backendByName('wasm');
    const js = backendByName('js');
    fc.assert(
      fc.property(arbSpec, fc.nat(1000), fc.constantFrom(1, 2), (spec, seed, threads) => {
        setThreads(threads);
        const rng = new Rng(seed);
        const { m, n, k } = spec;
        const a = rand(m * k, rng);
        const b = rand(k * n, rng);
        const c0 = rand(m * n, rng);
        const cw = Float32Array.from(c0);
        const cj = Float32Array.from(c0);
        wasm.gemm(a, 0, b, 0, cw, 0, spec);
        js.gemm(a, 0, b, 0, cj, 0, spec);
        const { want, mag } = oracle(a, b, spec.accumulate ? c0 : null, spec);
        const u = 2 ** -23;
        for (let i = 0; i < m * n; i++) {
          const tol = (k + 2) * u * mag[i]! + 1e-30;
          if (!(Math.abs(cw[i]! - want[i]!) <= tol)) expect.fail(`wasm C[${i}] = ${cw[i]}, float64 ${want[i]} ± ${tol} (${JSON.stringify(spec)})`);
          if (!(Math.abs(cw[i]! - cj[i]!) <= 2 * tol)) expect.fail(`wasm C[${i}] = ${cw[i]} vs js ${cj[i]} (${JSON.stringify(spec)})`);
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('gemmBatched with a broadcast operand (repeated offsets) and an accumulated shared output', () => {
    setParallelMinCost(0);
    const wasm = backendByName('wasm');
    const js = backendByName('js');
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), arbSpec, fc.boolean(), fc.nat(1000), fc.constantFrom(1, 2, 3), (nb, spec, sharedC, seed, threads) => {
        setThreads(threads);
        const rng = new Rng(seed);
        const { m, n, k } = spec;
        // A per batch, one B broadcast over the batch; C per batch, or one C all batches accumulate into.
        const a = rand(nb * m * k, rng);
        const b = rand(k * n, rng);
        const cSpec: MatmulSpec = sharedC ? { ...spec, accumulate: true } : spec;
        const c0 = rand((sharedC ? 1 : nb) * m * n, rng);
        const args = (c: Float32Array) => ({
          a, b, c, spec: cSpec,
          aOffs: Int32Array.from({ length: nb }, (_, i) => i * m * k),
          bOffs: new Int32Array(nb),
          cOffs: Int32Array.from({ length: nb }, (_, i) => (sharedC ? 0 : i * m * n)),
        });
        const cw = Float32Array.from(c0);
        const cj = Float32Array.from(c0);
        wasm.gemmBatched(args(cw));
        js.gemmBatched(args(cj));
        const want = new Float64Array(c0.length);
        const mag = new Float64Array(c0.length);
        for (let i = 0; i < c0.length; i++) [want[i], mag[i]] = [cSpec.accumulate ? c0[i]! : 0, cSpec.accumulate ? Math.abs(c0[i]!) : 0];
        for (let t = 0; t < nb; t++) {
          const o = oracle(a.subarray(t * m * k, (t + 1) * m * k), b, null, spec);
          const base = sharedC ? 0 : t * m * n;
          for (let i = 0; i < m * n; i++) {
            want[base + i] += o.want[i]!;
            mag[base + i] += o.mag[i]!;
          }
        }
        const u = 2 ** -23;
        for (let i = 0; i < c0.length; i++) {
          const tol = (nb * k + 2 * nb) * u * mag[i]! + 1e-30;
          if (!(Math.abs(cw[i]! - want[i]!) <= tol)) expect.fail(`wasm C[${i}] = ${cw[i]}, float64 ${want[i]} ± ${tol}`);
          if (!(Math.abs(cw[i]! - cj[i]!) <= 2 * tol)) expect.fail(`wasm C[${i}] = ${cw[i]} vs js ${cj[i]}`);
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });
});
