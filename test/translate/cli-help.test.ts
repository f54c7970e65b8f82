import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { editDistance, nearest } from '../../examples/transformer-translate/help.js';

const cli = join(resolve(import.meta.dirname, '../..'), 'dist/examples/transformer-translate/cli.js');
const run = (...args: string[]) => spawnSync('node', [cli, ...args], { encoding: 'utf8' });
const COMMANDS = ['train', 'translate', 'evaluate', 'compare', 'export', 'download'];

describe('translate CLI help', () => {
  it('--help, -h and help with no command list every command on one line each, exit 0', () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = run(...args);
      expect(r.status, args.join(' ')).toBe(0);
      for (const c of COMMANDS) expect(r.stdout, c).toMatch(new RegExp(`^  ${c} +\\S.*$`, 'm'));
      expect(r.stdout).toMatch(/no command: train/);
      expect(r.stdout).not.toMatch(/--recipe/); // the overview, not train's flags
    }
  });

  it("each command's --help (and help <command>) keeps its flags, exit 0", () => {
    for (const [cmd, flag] of [['train', '--recipe STR'], ['translate', '--run DIR|FILE'], ['evaluate', '--hyp FILE'], ['compare', '--recipes LIST'], ['export', '--out FILE'], ['download', '--dir DIR']] as const) {
      for (const r of [run(cmd, '--help'), run('help', cmd)]) {
        expect(r.status, cmd).toBe(0);
        expect(r.stdout).toContain(`usage: npm run translate -- ${cmd} [flags]`);
        expect(r.stdout).toContain(flag);
      }
    }
  });

  it('a mistyped command suggests the nearest one; an unrelated word lists the commands', () => {
    for (const [typo, want] of [['trian', 'train'], ['exprot', 'export'], ['evalute', 'evaluate'], ['transalte', 'translate'], ['comp', 'compare']]) {
      const r = run(typo!);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`unknown command '${typo}'; did you mean '${want}'?`);
    }
    const r = run('frobnicate');
    expect(r.stderr).toMatch(/unknown command 'frobnicate' \(commands: train, translate, evaluate, compare, average, export, download/);
    expect(r.stderr).not.toMatch(/did you mean/);
    expect(run('help', 'trian').stderr).toContain("did you mean 'train'?");
  });

  it('edit distance matches hand-counted cases; nearest prefers prefixes and close typos', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('flaw', 'lawn')).toBe(2);
    expect(editDistance('same', 'same')).toBe(0);
    expect(nearest('dow', COMMANDS)).toBe('download');
    expect(nearest('xyzzy', COMMANDS)).toBeUndefined();
  });
});
