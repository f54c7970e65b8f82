import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_POINTS, publicApi, type ApiEntry } from '../scripts/public-api.js';

const root = resolve(import.meta.dirname, '..');

describe('API reference', () => {
  // One walk of the public API through the TypeScript 7 compiler (about a second).
  let entries: ApiEntry[] = [];
  beforeAll(() => {
    entries = publicApi(root);
  });

  it('every export of every entry point has a doc comment on its declaration', () => {
    expect(entries.map((e) => e.subpath)).toEqual(ENTRY_POINTS.map((e) => e.subpath));
    for (const entry of entries) expect(entry.exports.length, `${entry.subpath} exports nothing`).toBeGreaterThan(5);
    // The names the reference would show blank, with where to add the comment.
    const undocumented = entries.flatMap((e) => e.exports.filter((x) => x.doc === '').map((x) => `${e.subpath}: ${x.name} (${x.file}:${x.line})`));
    expect(undocumented).toEqual([]);
  });

  it('re-exports are followed to their declarations', () => {
    const [main] = entries;
    const recipe = main!.exports.find((e) => e.name === 'Recipe');
    expect(recipe).toMatchObject({ kind: 'class', file: 'src/sparse/recipe.ts' });
    expect(recipe!.members.map((m) => m.name)).toEqual(expect.arrayContaining(['at', 'describe', 'parse']));
    expect(main!.exports.find((e) => e.name === 'fit')).toMatchObject({ kind: 'function', file: 'src/train/trainer.ts' });
  });
});
