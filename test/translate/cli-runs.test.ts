import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH as cliPath, TINY as S, runCli, writeDataFolder } from './cli-fixture.js';

// No command may destroy a run: averaging, exporting and a second trainer are refused before
// they write, and a start that fails leaves nothing that blocks a rerun.
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-cli-runs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const data = join(tmp, 'data');

const cli = (args: string[]): ReturnType<typeof runCli> => runCli(args);

function trainRun(dir: string, ...extra: string[]): void {
  const r = cli(['train', ...S, '--data', data, '--out', dir, ...extra]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

const files = (dir: string): Record<string, Buffer> => Object.fromEntries(readdirSync(dir).filter((f) => f.includes('.')).map((f) => [f, readFileSync(join(dir, f))]));

beforeAll(() => {
  writeDataFolder(data);
  trainRun(join(tmp, 'run'), '--steps', '100', '--keep', '2');
});

describe('commands that write never destroy a run', () => {
  it('average --out the run itself, or a folder holding another run, is refused; --overwrite replaces the other run', () => {
    const run = join(tmp, 'run');
    const before = files(run);
    const self = cli(['average', '--run', run, '--out', run]);
    expect(self.status).toBe(2);
    expect(self.stderr).toMatch(/is the run being averaged; write the average to another folder/);
    expect(files(run)).toEqual(before);
    expect(existsSync(join(run, 'checkpoints', 'step-100.safetensors'))).toBe(true);
    const other = join(tmp, 'other');
    trainRun(other, '--steps', '2');
    const otherBefore = files(other);
    const clobber = cli(['average', '--run', run, '--out', other]);
    expect(clobber.status).toBe(2);
    expect(clobber.stderr).toMatch(/already holds a run .*pass --overwrite to replace it/);
    expect(files(other)).toEqual(otherBefore);
    expect(cli(['average', '--run', run, '--out', other, '--overwrite']).status).toBe(0);
    expect(cli(['translate', '--run', other, '--threads', '1'])).toMatchObject({ status: 0 });
  });

  it("export --out onto the run's own files, an existing file, a FIFO or through a dangling link is refused", () => {
    const run = join(tmp, 'run');
    const before = files(run);
    for (const f of ['checkpoint.safetensors', 'config.json']) {
      const r = cli(['export', '--run', run, '--out', join(run, f)]);
      expect(r.status, f).toBe(2);
      expect(r.stderr, f).toMatch(new RegExp(`is the run's own ${f.replace('.', '\\.')}; export to a file outside the run's files`));
    }
    expect(files(run)).toEqual(before);
    const existing = join(tmp, 'existing.safetensors');
    writeFileSync(existing, 'not mine');
    expect(cli(['export', '--run', run, '--out', existing]).stderr).toMatch(/already exists; choose another --out or pass --overwrite/);
    expect(readFileSync(existing, 'utf8')).toBe('not mine');
    expect(cli(['export', '--run', run, '--out', existing, '--overwrite']).status).toBe(0);
    const fifo = join(tmp, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status === 0) {
      const r = cli(['export', '--run', run, '--out', fifo, '--overwrite']);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/is a special file \(FIFO, device or socket\); refusing to write over it/);
    }
    const dangling = join(tmp, 'dangling.safetensors');
    symlinkSync(join(tmp, 'nowhere', 'x'), dangling);
    const r = cli(['export', '--run', run, '--out', dangling]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is a symbolic link that leads nowhere/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a second trainer of the same folder is refused, naming the process that holds it', async () => {
    const dir = join(tmp, 'busy');
    const first = spawn('node', [cliPath, 'train', ...S, '--data', data, '--out', dir, '--steps', '400'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 600 && !existsSync(join(dir, '.lock')); i++) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(join(dir, '.lock'))).toBe(true);
      const again = cli(['train', ...S, '--data', data, '--out', dir, '--steps', '400']);
      expect(again.status).toBe(2);
      expect(again.stderr).toMatch(new RegExp(`is being trained by process ${first.pid}|already holds a run`));
      const resumed = cli(['train', '--resume', dir, '--threads', '1', '--json']);
      if (existsSync(join(dir, 'config.json'))) expect(resumed.stderr).toMatch(new RegExp(`is being trained by process ${first.pid} \\(lock file`));
      expect(resumed.status).not.toBe(0);
    } finally {
      first.kill('SIGKILL');
    }
  });

  it('a start that fails before its first checkpoint leaves no folder behind, so the same command can run again', () => {
    const dir = join(tmp, 'failed-start');
    const r = cli(['train', ...S, '--data', data, '--out', dir, '--steps', '5', '--batch-tokens', '8']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/more than the batch budget 8/);
    expect(existsSync(dir)).toBe(false);
    trainRun(dir, '--steps', '2');
  });

  it('--resume with fewer steps than the checkpoint says that a run can only be extended', () => {
    const r = cli(['train', '--resume', join(tmp, 'run'), '--steps', '5', '--threads', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--steps 5 is below the checkpoint's step 100; a run can only be extended/);
  });

  it('--select best that never evaluates and --average beyond the kept checkpoints say so in the summary', () => {
    const best = join(tmp, 'best-never');
    trainRun(best, '--steps', '20', '--eval-every', '50', '--select', 'best');
    const s1 = JSON.parse(readFileSync(join(best, 'summary.json'), 'utf8')) as { warnings: string[]; checkpoint: string };
    expect(s1.warnings.join('\n')).toMatch(/evaluate\.every \(50\) is more than the run's 20 steps/);
    const avg = join(tmp, 'avg-one');
    trainRun(avg, '--steps', '20', '--average', '3');
    const s2 = JSON.parse(readFileSync(join(avg, 'summary.json'), 'utf8')) as { warnings: string[]; checkpoint: string };
    expect(s2.warnings.join('\n')).toMatch(/--average 3 asked for 3 checkpoints but the run kept 1 .*the average is of 1/);
    expect(s2.checkpoint).toBe('average of steps 20');
  });
});
