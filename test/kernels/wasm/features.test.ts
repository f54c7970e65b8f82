import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = fileURLToPath(new URL('../../../dist/src/', import.meta.url));

/** Runs a module script in a fresh node (its own V8 flags), returning stdout. */
function child(script: string, opts: { flags?: string[]; env?: Record<string, string> } = {}): string {
  return execFileSync(process.execPath, [...(opts.flags ?? []), '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, NMGRAD_RELAXED_SIMD: '', ...opts.env },
  }).trim();
}

/** What a fresh process reports: relaxed SIMD on the main thread, in a worker, and the GEMM block it builds. */
const REPORT = `
  import { Worker } from 'node:worker_threads';
  import { hasRelaxedSimd } from '${dist}kernels/wasm/features.js';
  import { createWasmGemm } from '${dist}kernels/wasm/gemm.js';
  const main = hasRelaxedSimd();
  const gemm = createWasmGemm().shape.relaxed;
  const w = new Worker("Promise.all([import('node:worker_threads'), import('${dist}kernels/wasm/features.js')]).then(([t, m]) => t.parentPort.postMessage(m.hasRelaxedSimd()))", { eval: true });
  w.on('message', (worker) => { console.log(JSON.stringify({ main, worker, gemm })); process.exit(0); });`;

describe('relaxed SIMD detection', () => {
  it('is on wherever the engine can run it, with or without the Node 20 flag, on every thread', () => {
    // The engine's capability: a node started with the flag (a no-op where relaxed SIMD is on by default).
    const capable = JSON.parse(child(REPORT, { flags: ['--experimental-wasm-relaxed-simd'] })) as { main: boolean };
    const plain = JSON.parse(child(REPORT)) as { main: boolean; worker: boolean; gemm: boolean };
    expect(plain).toEqual({ main: capable.main, worker: capable.main, gemm: capable.main });
  });

  it('NMGRAD_RELAXED_SIMD=0 keeps mul + add kernels even where the engine has relaxed SIMD', () => {
    const off = JSON.parse(child(REPORT, { flags: ['--experimental-wasm-relaxed-simd'], env: { NMGRAD_RELAXED_SIMD: '0' } }));
    expect(off).toEqual({ main: false, worker: false, gemm: false });
  });

  it('a bad NMGRAD_RELAXED_SIMD value is a ValueError that names the variable and the value', () => {
    const script = `import { hasRelaxedSimd } from '${dist}kernels/wasm/features.js'; hasRelaxedSimd();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NMGRAD_RELAXED_SIMD: 'yes' } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ValueError/);
    expect(r.stderr).toMatch(/NMGRAD_RELAXED_SIMD must be 0 or 1, got 'yes'/);
  });
});
