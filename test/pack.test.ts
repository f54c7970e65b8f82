import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'nmgrad-pack-'));

describe('packaging smoke test', () => {
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('npm pack → install into a fresh project → import from ESM JS and TypeScript', () => {
    expect(existsSync(join(root, 'dist/src/index.js')), 'run `npm run build` first').toBe(true);
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
    const tarball = join(work, JSON.parse(out)[0].filename as string);
    const app = join(work, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', '--ignore-scripts', tarball], { cwd: app, encoding: 'utf8' });

    const js = `import { Tensor, Rng, linear, crossEntropy } from 'nmgrad';
const rng = new Rng(1);
const x = Tensor.randn([4, 3], rng);
const w = Tensor.randn([2, 3], rng, 0.5, 0, true);
const loss = crossEntropy(linear(x, w).relu(), [0, 1, 1, 0]);
loss.backward();
console.log(JSON.stringify({ loss: loss.item(), grad: w.grad.shape }));
`;
    writeFileSync(join(app, 'main.mjs'), js);
    const res = JSON.parse(execFileSync('node', ['main.mjs'], { cwd: app, encoding: 'utf8' }));
    expect(Number.isFinite(res.loss)).toBe(true);
    expect(res.grad).toEqual([2, 3]);

    const ts = `import { Tensor, Rng, matmul, type GradcheckResult } from 'nmgrad';
const a: Tensor = Tensor.randn([2, 3], new Rng(2), 1, 0, true);
const y: Tensor = matmul(a, Tensor.ones([3, 1])).sum();
y.backward();
const shape: readonly number[] = a.grad!.shape;
const r: GradcheckResult | null = null;
export { shape, r };
// @ts-expect-error: matmul takes tensors, not numbers (proves types resolve, not any)
matmul(1, 2);
`;
    writeFileSync(join(app, 'main.ts'), ts);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, types: [], skipLibCheck: false }, files: ['main.ts'] }),
    );
    const tsc = join(root, 'node_modules/.bin/tsc');
    execFileSync(tsc, ['-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
  });
});
