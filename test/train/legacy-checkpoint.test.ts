import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, loadTranslationRun, noGrad, saveTranslationRun } from '../../src/index.js';

// A run folder written by nmgrad before checkpoints carried the sparse state themselves (the
// translation example kept the masks in its training state): tiny Transformer, pmd 1:8 with
// 2 dense, 3 decay and 3 fine-tune steps, saved at step 8. The logits were recorded with the
// code that wrote it, on the input below, in evaluation mode.
const fixture = join(import.meta.dirname, '../fixtures/run-v1');
const expected = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/run-v1-expected-logits.json'), 'utf8')) as {
  step: number; src: number[]; tgtIn: number[]; logitsShape: number[]; logits: number[];
};
const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-legacy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function logits(dir: string): Float32Array {
  const { run, state } = loadTranslationRun(dir);
  expect(state.step).toBe(expected.step);
  const m = run.model.eval();
  const out = noGrad(() => m.forward(Int32Array.from(expected.src), [1, expected.src.length], Int32Array.from(expected.tgtIn), [1, expected.tgtIn.length], 0));
  expect(out.shape).toEqual(expected.logitsShape);
  return Float32Array.from(out.data);
}

describe('checkpoints written before the sparse state had its own entry', () => {
  it('still load, with their masks, to the logits they computed when written', () => {
    expect(Object.keys(loadSafetensors(join(fixture, 'checkpoint.safetensors')).metadata)).not.toContain('nmgrad.sparse');
    const { run } = loadTranslationRun(fixture);
    expect(run.sparse).toHaveLength(4);
    for (const l of run.sparse) expect(l.keep!.reduce((n, v) => n + v, 0)).toBe(l.weight.size / 8);
    expect(logits(fixture)).toEqual(Float32Array.from(expected.logits));
  });

  it('re-saved by this version, the same run computes the same logits from its own sparse entry', () => {
    const dir = join(tmp, 'resaved');
    cpSync(fixture, dir, { recursive: true });
    const { run, state } = loadTranslationRun(dir);
    saveTranslationRun(dir, run, state);
    expect(Object.keys(loadSafetensors(join(dir, 'checkpoint.safetensors')).metadata)).toContain('nmgrad.sparse');
    expect(logits(dir)).toEqual(Float32Array.from(expected.logits));
  });
});
