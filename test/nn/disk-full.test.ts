import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, Linear, Module, loadCheckpoint, saveCheckpoint } from '../../src/index.js';

// A small tmpfs stands in for a full disk (mounting one needs root; elsewhere the test is skipped).
const base = mkdtempSync(join(tmpdir(), 'nmgrad-full-'));
const disk = join(base, 'disk');
mkdirSync(disk);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', disk]).status === 0;
afterAll(() => {
  if (mounted) spawnSync('umount', [disk]);
  rmSync(base, { recursive: true, force: true });
});

class Net extends Module {
  constructor(width: number) {
    super();
    this.module('fc', new Linear(width, width));
  }
}

describe('a full disk during a checkpoint write', () => {
  it.skipIf(!mounted)('is one DataError naming the file and ENOSPC, and the previous checkpoint stays intact', () => {
    const path = join(disk, 'checkpoint.safetensors');
    const small = new Net(16);
    saveCheckpoint(path, small);
    const big = new Net(256); // 257 KB of weights: more than the disk holds
    expect(() => saveCheckpoint(path, big)).toThrow(DataError);
    expect(() => saveCheckpoint(path, big)).toThrow(/checkpoint\.safetensors: cannot write: no space left on the device \(ENOSPC\); the previous file, if any, is intact/);
    expect(readdirSync(disk)).toEqual(['checkpoint.safetensors']); // no temp file left
    const back = new Net(16);
    loadCheckpoint(path, back);
    expect(back.parameters().map((p) => [...p.data])).toEqual(small.parameters().map((p) => [...p.data]));
  });
});
