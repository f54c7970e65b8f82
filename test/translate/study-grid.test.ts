import fc from 'fast-check';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assignShards, expandGrid, expectedCost, parseNmList, parseSchedule, parseSeeds, parseShard, type Cell } from '../../examples/transformer-translate/study/grid.js';
import { canonicalJson, cellConfig, configDifferences, hashConfig, manifestFor, prepareCellDir, RunConfigMismatchError } from '../../examples/transformer-translate/study/runs.js';
import type { RunConfig } from '../../examples/transformer-translate/model-io.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-study-grid-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('study grid', () => {
  it('crosses templates with patterns and seeds, dense once per seed, in report order', () => {
    const cells = expandGrid({ recipes: ['srste', 'pmd,decay=linear', 'unstructured'], nm: [[2, 4], [1, 8]], seeds: [1, 2], steps: 100, schedule: null });
    expect(cells.map((c) => c.name)).toEqual([
      'dense_seed1', 'dense_seed2',
      'srste-2-4_seed1', 'srste-2-4_seed2', 'srste-1-8_seed1', 'srste-1-8_seed2',
      'pmd-2-4_decay_linear_seed1', 'pmd-2-4_decay_linear_seed2', 'pmd-1-8_decay_linear_seed1', 'pmd-1-8_decay_linear_seed2',
      'unstructured-2-4_seed1', 'unstructured-2-4_seed2', 'unstructured-1-8_seed1', 'unstructured-1-8_seed2',
    ]);
    expect(cells.find((c) => c.name === 'pmd-1-8_decay_linear_seed2')).toMatchObject({ recipe: 'pmd:1:8,decay=linear', family: 'pmd,decay=linear', nm: '1:8', seed: 2 });
  });

  it('applies the schedule split to decay recipes only, and never over their own dense/finetune', () => {
    const cells = expandGrid({ recipes: ['srste', 'pmd', 'ssd,finetune=10', 'gradual'], nm: [[1, 8]], seeds: [1], steps: 2000, schedule: parseSchedule('10/30/60') });
    expect(cells.map((c) => c.recipe)).toEqual(['dense', 'srste:1:8', 'pmd:1:8,dense=200,finetune=1200', 'ssd:1:8,finetune=10', 'gradual:1:8,dense=200,finetune=1200']);
  });

  it('templates with their own N:M are not crossed; without --nm there is no automatic dense', () => {
    const cells = expandGrid({ recipes: ['srste:1:8', 'pmd:2:4,dense=5'], nm: [], seeds: [3], steps: 50, schedule: null });
    expect(cells.map((c) => c.recipe)).toEqual(['srste:1:8', 'pmd:2:4,dense=5']);
    expect(() => expandGrid({ recipes: ['srste'], nm: [], seeds: [1], steps: 50, schedule: null })).toThrow(/'srste' carry no N:M: add --nm/);
    expect(() => expandGrid({ recipes: ['pmd:1:8', 'pmd:1:8'], nm: [], seeds: [1], steps: 50, schedule: null })).toThrow(/holds the cell 'pmd-1-8_seed1' twice/);
    expect(() => expandGrid({ recipes: ['pmd,bogus=1'], nm: [[1, 8]], seeds: [1], steps: 50, schedule: null })).toThrow(/unknown or invalid option 'bogus=1'/);
  });

  it('flag parsers name the flag and the offending value', () => {
    expect(parseNmList('2:4, 1:16')).toEqual([[2, 4], [1, 16]]);
    expect(() => parseNmList('2-4')).toThrow(/--nm: '2-4' is not N:M/);
    expect(() => parseNmList('5:4')).toThrow(/N must not exceed M/);
    expect(() => parseSeeds('1,2,1')).toThrow(/--seeds: seed 1 is listed twice/);
    expect(() => parseSeeds('1,x')).toThrow(/positive integers, got 'x'/);
    // Seeds are 32-bit: a larger one would silently train like its value modulo 2^32.
    expect(() => parseSeeds('1,4294967297')).toThrow(/positive integers, got '4294967297' \(at most 4294967295\)/);
    expect(() => parseSchedule('10/30/50')).toThrow(/sum to 100, got 10\+30\+50/);
    expect(parseShard('3/4')).toEqual({ index: 3, count: 4 });
    expect(() => parseShard('4/4')).toThrow(/--shard: shards of 4 are numbered 0..3, got 4/);
    expect(() => parseShard('1of4')).toThrow(/expected i\/n/);
  });

  it('expected cost follows the FLOP rules: dense 1 per step, hard sparse phases cheaper, PMD dearer than SSD', () => {
    expect(expectedCost('dense', 100)).toBe(100);
    expect(expectedCost('unstructured:1:8', 100)).toBe(100); // runs as a masked dense product
    // fixed 1:8 from step 0: forward, dX and dW all at ρ = 1/8 on the sparse half of each step.
    expect(expectedCost('fixed:1:8', 100)).toBeCloseTo(100 * (0.5 + 0.5 / 8), 9);
    // srste keeps a dense dW: (2ρ + 1)/3 on the sparse half.
    expect(expectedCost('srste:1:8', 100)).toBeCloseTo(100 * (0.5 + (0.5 * (2 / 8 + 1)) / 3), 9);
    expect(expectedCost('pmd:1:8,dense=10,finetune=60', 100)).toBeGreaterThan(expectedCost('ssd:1:8,dense=10,finetune=60', 100));
  });

  it('shards cover every cell exactly once, deterministically, with loads within one cell of each other', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 8 }), (costs, count) => {
        const cells: Cell[] = costs.map((cost, i) => ({ name: `c${i}`, recipe: 'dense', family: 'dense', nm: 'dense', seed: i + 1, cost }));
        const a = assignShards(cells, count);
        expect(assignShards(cells, count)).toEqual(a);
        expect(a.every((s) => Number.isInteger(s) && s >= 0 && s < count)).toBe(true);
        const load = new Array<number>(count).fill(0);
        a.forEach((s, i) => (load[s]! += costs[i]!));
        // Longest-first greedy: no shard exceeds the lightest by more than one cell's cost.
        if (costs.length >= count) expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(Math.max(...costs));
      }),
    );
  });
});

function runConfig(steps: number): RunConfig {
  return {
    model: { srcVocab: 0, tgtVocab: 0, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 128, shareEmbeddings: true, tieOutput: true, seed: 1 },
    recipe: 'srste:1:8', sparsify: 'ffn', steps, batchTokens: 300, lr: 3e-3, warmup: 10, seed: 1, labelSmoothing: 0.1, maxLen: 100, data: '/some/path', merges: 50,
  };
}

describe('run folder configuration check', () => {
  it('hashes ignore key order and the data path, and change with any setting', () => {
    const a = cellConfig(runConfig(8), 'builtin', null);
    const b = cellConfig({ ...runConfig(8), data: '/elsewhere' }, 'builtin', null);
    expect(hashConfig(a)).toBe(hashConfig(b));
    expect(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] })).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
    expect(hashConfig(cellConfig(runConfig(9), 'builtin', null))).not.toBe(hashConfig(a));
    expect(hashConfig(cellConfig(runConfig(8), 'builtin', 10))).not.toBe(hashConfig(a));
    expect(configDifferences(a, cellConfig(runConfig(6), 'builtin', null))).toEqual(['run.steps: 8 → 6']);
  });

  it('reuses a folder only with the same configuration; refuses another one, naming the field, unless forced', () => {
    const dir = join(tmp, 'cell');
    const m8 = manifestFor('cell', cellConfig(runConfig(8), 'builtin', null));
    expect(prepareCellDir(dir, m8, false)).toBe('fresh');
    writeFileSync(join(dir, 'checkpoint.safetensors'), 'x');
    expect(prepareCellDir(dir, m8, false)).toBe('resume');
    writeFileSync(join(dir, 'summary.json'), '{}');
    expect(prepareCellDir(dir, m8, false)).toBe('done');
    const m6 = manifestFor('cell', cellConfig(runConfig(6), 'builtin', null));
    expect(() => prepareCellDir(dir, m6, false)).toThrow(RunConfigMismatchError);
    expect(() => prepareCellDir(dir, m6, false)).toThrow(/differs from the requested one .*: run\.steps: 8 → 6\. Use another --out, or --force/);
    expect(existsSync(join(dir, 'summary.json'))).toBe(true); // a refusal touches nothing
    expect(prepareCellDir(dir, m6, true)).toBe('fresh');
    expect(existsSync(join(dir, 'summary.json'))).toBe(false);
    expect(prepareCellDir(dir, m6, false)).toBe('fresh');
  });

  it('a folder from before config hashing (summary but no manifest) is not trusted', () => {
    const dir = join(tmp, 'legacy');
    mkdirSync(dir);
    writeFileSync(join(dir, 'summary.json'), '{}');
    expect(() => prepareCellDir(dir, manifestFor('legacy', cellConfig(runConfig(8), 'builtin', null)), false)).toThrow(/no study-cell\.json, so its configuration cannot be verified/);
  });
});
