import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError, Rng, Tensor, WorkerError, crossEntropy, linear } from '../../src/index.js';
import { backendByName, defaultBackendName, getBackend, listBackends, registerBackend, setBackend, withBackend, withFallback, type Backend } from '../../src/kernels/backends.js';
import { CROSS_CHECK_RTOL, crossCheckBackend } from '../../src/kernels/cross-check.js';
import { matmulNaive } from '../../src/kernels/js/gemm.js';
import { assertFreshBuild } from '../../src/kernels/threads/build-check.js';
import { hasSimd } from '../../src/kernels/wasm/features.js';

const root = resolve(import.meta.dirname, '../..');

describe('backend registry', () => {
  afterAll(() => setBackend('js'));

  it('js is always registered; wasm wherever a SIMD module validates, and then it is the default', () => {
    expect(listBackends()).toContain('js');
    expect(listBackends().includes('wasm')).toBe(hasSimd());
    expect(defaultBackendName()).toBe(hasSimd() ? 'wasm' : 'js');
    expect(getBackend().name).toBe(process.env.NMGRAD_BACKEND || defaultBackendName());
  });

  it('an unknown name is a BackendError listing the registered backends', () => {
    expect(() => setBackend('cuda')).toThrow(BackendError);
    expect(() => setBackend('cuda')).toThrow(/setBackend: unknown backend 'cuda'; registered backends: js/);
  });

  it('NMGRAD_BACKEND picks the backend of a fresh process, and a bad value names the variable', () => {
    const script = "import { getBackend } from './dist/src/index.js'; console.log(getBackend().name);";
    const run = (value: string): string => execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env: { ...process.env, NMGRAD_BACKEND: value }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    expect(run('js')).toBe('js');
    if (hasSimd()) expect(run('wasm')).toBe('wasm');
    expect(run('')).toBe(defaultBackendName()); // unset: the fastest backend this runtime validates
    expect(() => run('nope')).toThrow(/NMGRAD_BACKEND: unknown backend 'nope'; registered backends: js/);
  });

  it('a partial backend falls through to js, and ops run on it (naive-gemm probe)', () => {
    let gemmCalls = 0;
    const probe: Backend = withFallback({
      name: 'naive-gemm-probe',
      gemm(a, aOff, b, bOff, c, cOff, spec) {
        gemmCalls++;
        const { m, n, k, transA, transB } = spec;
        const prod = matmulNaive(a.subarray(aOff, aOff + m * k), b.subarray(bOff, bOff + k * n), { m, n, k, transA, transB });
        for (let i = 0; i < m * n; i++) c[cOff + i] = (spec.accumulate ? c[cOff + i]! : 0) + prod[i]!;
      },
    });
    expect(probe.softmaxRows).toBe(backendByName('js').softmaxRows);
    registerBackend(probe);
    expect(listBackends()).toEqual(expect.arrayContaining(['js', 'naive-gemm-probe']));
    const rng = new Rng(3);
    const x = Tensor.randn([5, 8], rng);
    const w = Tensor.randn([3, 8], rng, 1, 0, true);
    const loss = (): [number, Float32Array] => {
      w.grad = null;
      const l = crossEntropy(linear(x, w), [0, 2, 1, 1, 0]);
      l.backward();
      return [l.item(), Float32Array.from(w.grad!.data)];
    };
    const [refLoss, refGrad] = withBackend('js', loss);
    const [probeLoss, probeGrad] = withBackend('naive-gemm-probe', loss);
    expect(gemmCalls).toBeGreaterThanOrEqual(2);
    expect(Math.abs(probeLoss - refLoss)).toBeLessThan(1e-5);
    probeGrad.forEach((v, i) => expect(Math.abs(v - refGrad[i]!)).toBeLessThan(1e-5));
    expect(crossCheckBackend(probe).ok).toBe(true);
  });

  it('the cross-backend check catches a wrong kernel and names it', () => {
    const broken = withFallback({ name: 'broken', unary: (op, x, out, p) => { backendByName('js').unary(op, x, out, p); if (op === 'tanh') out[0] = out[0]! + 1e-3; } });
    const report = crossCheckBackend(broken);
    expect(report.ok).toBe(false);
    expect(report.failures.map((f) => f.kernel)).toEqual(['unary tanh (+ backward)']);
    expect(report.failures[0]!.maxError).toBeGreaterThan(report.failures[0]!.tolerance);
  });
});

describe('cross-backend check: every registered backend against js', () => {
  for (const name of listBackends()) {
    it(`${name} agrees with js within ${CROSS_CHECK_RTOL}·(|x| + scale)`, () => {
      const report = crossCheckBackend(backendByName(name));
      expect(report.cases.length).toBeGreaterThan(20);
      expect(report.failures).toEqual([]);
    });
  }
});

describe('stale-build detection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nmgrad-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (path: string, text: string): void => {
    mkdirSync(resolve(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  const compiled = (path: string, source: string): void => {
    write(`dist/${path.replace(/\.ts$/, '.js')}`, '// compiled');
    write(`dist/${path.replace(/\.ts$/, '.js')}.map`, JSON.stringify({ version: 3, sources: [], sourcesContent: [source] }));
  };

  it('passes when every module of the worker closure was built from the current source', () => {
    const entry = "import { a } from './a.js';\nimport type { T } from '../b.js';\n";
    write('src/w/entry.ts', entry);
    write('src/w/a.ts', 'export const a = 1;\n');
    write('src/b.ts', 'export type T = number;\n');
    compiled('src/w/entry.ts', entry);
    compiled('src/w/a.ts', 'export const a = 1;\n');
    compiled('src/b.ts', 'export type T = number;\n');
    expect(() => assertFreshBuild(join(dir, 'src/w/entry.ts'), join(dir, 'dist/src/w/entry.js'))).not.toThrow();
  });

  it('throws a WorkerError naming each changed or uncompiled source', () => {
    const entry = "import { a } from './a2.js';\nimport { c } from './c.js';\n";
    write('src/w/entry2.ts', entry);
    write('src/w/a2.ts', 'export const a = 2; // edited after the build\n');
    write('src/w/c.ts', 'export const c = 3;\n');
    compiled('src/w/entry2.ts', entry);
    compiled('src/w/a2.ts', 'export const a = 1;\n');
    let err: unknown;
    try {
      assertFreshBuild(join(dir, 'src/w/entry2.ts'), join(dir, 'dist/src/w/entry2.js'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WorkerError);
    expect(String((err as Error).message)).toMatch(/a2\.ts.*c\.ts \(not compiled\).*run `npm run build`/);
  });

  it('the real worker closure matches the build (tests ran `npm run build` first)', () => {
    expect(() => assertFreshBuild(join(root, 'src/kernels/worker.ts'), join(root, 'dist/src/kernels/worker.js'))).not.toThrow();
  });
});
