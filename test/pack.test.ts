import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Recipe, Transformer, exportCompressed, sparsify, translate } from '../src/index.js';
import { BpeTokenizer } from '../src/text/index.js';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'nmgrad-pack-'));

describe('packaging smoke test', () => {
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('npm pack → install into a fresh project → import from ESM JS and TypeScript; the embed example runs and type-checks there', () => {
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

    // The embed example, as a tool author would copy it, against the installed package: an
    // (untrained) exported 1:8 model must translate exactly as the library does in-process.
    const lines = ['a dog runs on the grass .', 'two men play music .', 'the girl reads a book .'];
    const tokenizer = BpeTokenizer.train([...lines, 'ein Hund läuft auf dem Gras .'], 30);
    const model = new Transformer({ srcVocab: tokenizer.size, tgtVocab: tokenizer.size, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 32, shareEmbeddings: true, seed: 3 });
    sparsify(model, Recipe.parse('ste:1:8', { steps: 1 }));
    model.eval();
    exportCompressed(join(app, 'model.safetensors'), model, { metadata: { tokenizer: JSON.stringify(tokenizer.toJSON()) } });
    writeFileSync(join(app, 'ref.txt'), `${lines.join('\n')}\n`);
    copyFileSync(join(root, 'dist/examples/embed/main.js'), join(app, 'embed.mjs'));
    const embedOut = execFileSync('node', ['embed.mjs', 'model.safetensors', 'ref.txt'], { cwd: app, input: `${lines.join('\n')}\n`, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    expect(embedOut.split('\n').slice(0, -1)).toEqual(translate(model, tokenizer, lines));

    const embedTs = readFileSync(join(root, 'examples/embed/main.ts'), 'utf8');
    writeFileSync(join(app, 'embed.ts'), `${embedTs}
// @ts-expect-error: translate takes a list of lines, not one string (the nmgrad types are real)
translate(model, tokenizer, 'one line');
`);
    writeFileSync(
      join(app, 'tsconfig.embed.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, types: ['node'], typeRoots: [join(root, 'node_modules/@types')], skipLibCheck: false }, files: ['embed.ts'] }),
    );
    execFileSync(tsc, ['-p', 'tsconfig.embed.json'], { cwd: app, encoding: 'utf8' });
  });
});
