import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-sparse-mlp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('examples/sparse-mlp', () => {
  it('trains with fit and a recipe, pauses, resumes to a hard 1:4 model, exports and reloads it to the same accuracy', () => {
    const dir = join(tmp, 'run');
    const r = spawnSync('node', [join(root, 'dist/examples/sparse-mlp/main.js'), dir], { encoding: 'utf8', env: { ...process.env, NMGRAD_THREADS: '1' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^paused at step 250; resuming /m);
    expect(r.stdout).toMatch(/step 600\/600 {2}loss \d\.\d+ {2}phase finetune {2}α 0\.000 {2}N:M 1:4/);
    const acc = /test accuracy (\d+\.\d)%/.exec(r.stdout)![1]!;
    expect(Number(acc)).toBeGreaterThan(60); // 4 classes: chance is 25%
    expect(r.stdout).toMatch(new RegExp(`layers fc1, fc2; reloaded accuracy ${acc.replace('.', '\\.')}%`));
    expect(readdirSync(dir).sort()).toEqual(expect.arrayContaining(['checkpoint.safetensors', 'config.json', 'metrics.jsonl', 'model.safetensors']));
  });
});
