import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recipe, Transformer, exportCompressed, sparsify, translate } from '../src/index.js';
import { BpeTokenizer } from '../src/text/index.js';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'nmgrad-pack-'));

const app = join(work, 'app');
/** The tarball's file list, from `npm pack --json`. */
let packed: string[] = [];

describe('packaging smoke test', () => {
  // Pack once and install the tarball into an empty project, as a user would.
  beforeAll(() => {
    expect(existsSync(join(root, 'dist/src/index.js')), 'run `npm run build` first').toBe(true);
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
    const info = JSON.parse(out)[0] as { filename: string; files: { path: string }[] };
    packed = info.files.map((f) => f.path);
    const tarball = join(work, info.filename);
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', '--ignore-scripts', tarball], { cwd: app, encoding: 'utf8' });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('the tarball holds the library, the CLI, the license and the recipe spec, and no source maps', () => {
    for (const f of ['LICENSE', 'README.md', 'docs/recipes.md', 'package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/examples/transformer-translate/cli.js']) {
      expect(packed, f).toContain(f);
    }
    expect(packed.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(packed.filter((f) => !f.startsWith('dist/src/') && !f.startsWith('dist/examples/transformer-translate/') && !['LICENSE', 'README.md', 'docs/recipes.md', 'package.json'].includes(f))).toEqual([]);
  });

  it('npm pack → install into a fresh project → import from ESM JS and TypeScript; the embed example runs and type-checks there', () => {
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

  it('the installed bin: `npx nmgrad --help` lists the commands and `npx nmgrad train` runs a tiny training', () => {
    const npx = (args: string[]): string => execFileSync('npx', ['--offline', 'nmgrad', ...args], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const help = npx(['--help']);
    for (const cmd of ['train', 'translate', 'evaluate', 'export']) expect(help).toContain(cmd);
    expect(npx(['train', '--help'])).toContain('--recipe');

    // The smallest run the CLI takes, on its built-in corpus: three steps of a 1-layer model.
    const out = join(work, 'run');
    const log = npx(['train', '--data', 'builtin', '--steps', '3', '--d-model', '16', '--heads', '2', '--ffn', '32', '--layers', '1', '--merges', '30', '--batch-tokens', '300', '--threads', '1', '--beam', '1', '--out', out, '--json']);
    const last = JSON.parse(log.trim().split('\n').at(-1)!) as { summary: { bleu: number; endsHard: boolean; out: string } };
    expect(last.summary.endsHard).toBe(true);
    expect(Number.isFinite(last.summary.bleu)).toBe(true);
    for (const f of ['checkpoint.safetensors', 'config.json', 'tokenizer.json', 'summary.json']) expect(existsSync(join(out, f)), f).toBe(true);
  });
});
