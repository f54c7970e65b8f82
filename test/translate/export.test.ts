import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NMLinear, loadSafetensors } from '../../src/index.js';
import { corpusBleu } from '../../src/text/index.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { loadTranslator, loadTranslationRun, type TranslationConfig } from '../../src/index.js';
import { train, type Splits } from '../../examples/transformer-translate/train.js';
import { translateAll } from '../../examples/transformer-translate/translate.js';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/examples/transformer-translate/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-export-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const splits: Splits = { ...generateBuiltinCorpus({ seed: 6, train: 20000, val: 50, test: 50 }), name: 'builtin-export' };
/**
 * The tiny preset's model (d64, 4 heads, FFN 256, 2+2 layers, 600 merges: the same file sizes as
 * the full preset run) on a short schedule ending in hard 1:8: the test checks identity, not quality.
 */
const config: TranslationConfig = {
  model: { srcVocab: 0, tgtVocab: 0, dModel: 64, heads: 4, ffn: 256, encoderLayers: 2, decoderLayers: 2, dropout: 0, maxLen: 128, shareEmbeddings: true, tieOutput: true, seed: 6 },
  recipe: 'pmd:1:8,dense=4,finetune=16', sparsify: 'ffn', steps: 40, batchTokens: 600, lr: 3e-3, warmup: 20, seed: 6, labelSmoothing: 0.1, maxLen: 100, data: 'builtin', merges: 600,
};

describe('compressed export of a trained run', () => {
  const dir = join(tmp, 'run');
  const model = join(tmp, 'model.safetensors');
  const src = splits.test.slice(0, 30).map((p) => p.en);
  const refs = splits.test.slice(0, 30).map((p) => p.de);
  const srcFile = join(tmp, 'src.en');
  const refFile = join(tmp, 'ref.de');

  it('`export` writes hard N:M layers compressed, no optimizer state; sizes quoted', async () => {
    await train({ config, out: dir, log: () => {}, json: true, splits });
    const summary = JSON.parse(execFileSync('node', [cli, 'export', '--run', dir, '--out', model, '--json'], { encoding: 'utf8' }));
    const file = loadSafetensors(model);
    const { run } = loadTranslationRun(dir);
    expect(run.sparse.length).toBe(8);
    for (const l of run.sparse) {
      expect(file.tensors.get(`${l.path}.weight.values`)!.shape).toEqual([l.outFeatures, l.inFeatures / 8]);
      expect(file.bytes.get(`${l.path}.weight.indices`)!.shape).toEqual([l.outFeatures, l.inFeatures / 8]);
      expect(file.tensors.has(`${l.path}.weight`)).toBe(false);
    }
    expect([...file.tensors.keys()].some((k) => k.startsWith('optimizer.'))).toBe(false);
    expect(JSON.parse(file.metadata.nm_layers!)['encoder.0.ffn.fc1']).toEqual({ n: 1, m: 8, shape: [256, 64] });
    const checkpoint = statSync(join(dir, 'checkpoint.safetensors')).size;
    const dense = run.model.namedParameters().reduce((s, [, p]) => s + p.size * 4, 0);
    const sparseElems = run.sparse.reduce((s, l) => s + l.weight.size, 0);
    expect(summary).toEqual({ out: model, bytes: statSync(model).size, denseWeightBytes: dense, checkpointBytes: checkpoint, compressedLayers: 8 });
    // Data section: dense weights, less the 1:8 layers' dense bytes, plus 5 bytes per kept weight; then the header.
    const header = Number(readFileSync(model).readBigUInt64LE(0));
    expect(statSync(model).size).toBe(8 + header + dense - sparseElems * 4 + (sparseElems / 8) * 5);
    console.log(`tiny preset sizes: training checkpoint ${checkpoint} B, dense weights ${dense} B, exported ${statSync(model).size} B (${(statSync(model).size / dense).toFixed(3)} × dense weights; header ${header} B)`);
  }, 600_000);

  it('the exported model translates exactly like the full run: library, CLI translate / evaluate', () => {
    const full = loadTranslationRun(dir).run;
    const exported = loadTranslator(model);
    expect(exported.model.namedModules().filter(([, m]) => m instanceof NMLinear).length).toBe(8);
    const greedy = translateAll(full.model, full.tokenizer, src);
    expect(translateAll(exported.model, exported.tokenizer, src)).toEqual(greedy);
    expect(translateAll(exported.model, exported.tokenizer, src.slice(0, 8), { beam: 3 })).toEqual(translateAll(full.model, full.tokenizer, src.slice(0, 8), { beam: 3 }));
    writeFileSync(srcFile, `${src.join('\n')}\n`);
    writeFileSync(refFile, `${refs.join('\n')}\n`);
    const viaCli = execFileSync('node', [cli, 'translate', '--run', model], { input: `${src.join('\n')}\n`, encoding: 'utf8' });
    expect(viaCli.trimEnd().split('\n')).toEqual(greedy);
    const evalOf = (run: string): unknown => JSON.parse(execFileSync('node', [cli, 'evaluate', '--run', run, '--src', srcFile, '--ref', refFile, '--json'], { encoding: 'utf8' }));
    expect(evalOf(model)).toEqual(evalOf(dir));
  }, 600_000);

  it('the embed example translates stdin with the exported model and prints BLEU against the reference', () => {
    const full = loadTranslationRun(dir).run;
    const r = spawnSync('node', [join(root, 'dist/examples/embed/main.js'), model, refFile], { input: `${src.join('\n')}\n`, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const hyps = translateAll(full.model, full.tokenizer, src);
    expect(r.stdout.trimEnd().split('\n')).toEqual(hyps);
    const bleu = corpusBleu(hyps, [refs]).score;
    expect(r.stderr).toContain(`BLEU ${bleu.toFixed(2)}  chrF2 `);
    expect(r.stderr).toContain('(30 lines, sacreBLEU 13a, cased)');
  }, 300_000);
});
