import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/examples/transformer-translate/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-study-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A grid small enough for a test: 6 cells of 6 steps of a 16-wide, 1+1-layer model. */
const GRID = [
  'compare', '--recipes', 'srste;pmd', '--nm', '1:8', '--seeds', '1,2', '--schedule', 'paper', '--steps', '6',
  '--d-model', '16', '--ffn', '32', '--heads', '2', '--layers', '1', '--merges', '50', '--batch-tokens', '300', '--eval-sentences', '10', '--threads', '1', '--quiet',
];

function compare(...extra: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('node', [cli, ...GRID, ...extra], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const REPORT = ['results.md', 'results.json', 'results.svg'];
const read = (dir: string): string[] => REPORT.map((f) => readFileSync(join(dir, f), 'utf8'));

describe('study runner: grid, shards, merge, config check', () => {
  it('merging two shards gives the same report, byte for byte, as one unsharded run', () => {
    const whole = join(tmp, 'whole');
    const s0 = join(tmp, 'shard0');
    const s1 = join(tmp, 'shard1');
    const merged = join(tmp, 'merged');
    expect(compare('--out', whole).status).toBe(0);
    expect(compare('--out', s0, '--shard', '0/2').status).toBe(0);
    expect(compare('--out', s1, '--shard', '1/2').status).toBe(0);
    const m = compare('--out', merged, '--merge', s0, s1);
    expect(m.stderr).toBe('');
    expect(m.status).toBe(0);
    const expected = read(whole);
    expect(read(merged)).toEqual(expected);
    expect(expected[0]).toMatch(/Cells: 6 of 6 done\./);
    expect(expected[0]).toMatch(/\| pmd \| 1:8 \| 2 \| /);
    const json = JSON.parse(expected[1]!) as { complete: boolean; cells: { status: string }[]; groups: { family: string; bleu: { n: number } }[] };
    expect(json.complete).toBe(true);
    expect(json.cells.map((c) => c.status)).toEqual(new Array(6).fill('done'));
    expect(json.groups.map((g) => [g.family, g.bleu.n])).toEqual([['dense', 2], ['srste', 2], ['pmd', 2]]);
    // The same runs found twice (whole and the shards) are the same results and merge alike.
    expect(compare('--out', join(tmp, 'merged2'), '--merge', whole, s0, s1).status).toBe(0);
    expect(read(join(tmp, 'merged2'))).toEqual(expected);
  }, 300_000);

  it('a merge of some shards lists the missing cells (exactly the other shard\'s) and exits 3', () => {
    const partial = join(tmp, 'partial');
    const r = compare('--out', partial, '--merge', join(tmp, 'shard0'));
    expect(r.status).toBe(3);
    const listed = compare('--out', join(tmp, 'shard1'), '--list', '--shard', '1/2', '--json');
    const shard1 = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; shard: number; status: string });
    expect(shard1.length).toBeGreaterThan(0);
    expect(shard1.every((c) => c.shard === 1 && c.status === 'done')).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`${shard1.length} of 6 cells not done: ${shard1.map((c) => c.name).join(', ')}`));
    const md = readFileSync(join(partial, 'results.md'), 'utf8');
    expect(md).toMatch(new RegExp(`Missing cells \\(${shard1.length}\\): ${shard1.map((c) => c.name).join(', ')}`));
    expect(JSON.parse(readFileSync(join(partial, 'results.json'), 'utf8')).missing).toEqual(shard1.map((c) => c.name));
  }, 120_000);

  it('a run folder with another configuration is refused with the differing field named; --merge does not count it', () => {
    const r = compare('--out', join(tmp, 'whole'), '--steps', '7');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/saved configuration .* differs from the requested one .*run\.steps: 6 → 7.*--force/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const m = compare('--out', join(tmp, 'm7'), '--steps', '7', '--merge', join(tmp, 'whole'));
    expect(m.status).toBe(3);
    expect(readFileSync(join(tmp, 'm7', 'results.md'), 'utf8')).toMatch(/Found only with another configuration \(6\)/);
  }, 120_000);

  it('the committed worked example (docs/study/tiny) is rebuilt byte for byte from its committed run summaries', () => {
    const out = join(tmp, 'tiny');
    const r = spawnSync('node', [cli, 'compare', '--study', 'tiny', '--merge', join(root, 'docs/study/tiny/cells'), '--out', out, '--quiet'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(read(out)).toEqual(read(join(root, 'docs/study/tiny')));
  }, 60_000);

  it('flag errors are one clear line', () => {
    for (const [args, re] of [
      [['--shard', '2/2'], /numbered 0\.\.1, got 2/],
      [['--nm', '1:9x'], /'1:9x' is not N:M/],
      [['--study', 'nope'], /unknown study preset 'nope'/],
      [['--merge'], /--merge needs at least one value/],
      [['--merge', tmp, '--shard', '0/2'], /--merge: cannot be combined with --shard/],
      [['--shards', '4'], /--shards: only applies to --list/],
      [['--seed', '3'], /give --seed or --seeds, not both/],
      [['--resume', tmp], /compare resumes interrupted cells by itself/],
      [['--beam', '4'], /--beam: not supported by compare/],
    ] as [string[], RegExp][]) {
      const r = compare('--out', join(tmp, 'err'), ...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
