import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * Arithmetic on tensor data lives in src/kernels only (behind the Backend seam). Above it,
 * code may compute shapes, offsets and ids, but never index tensor storage in a loop, keep
 * float64 accumulators, or slice buffers. Exempt: gradcheck, the independent float64 oracle
 * (it must not run on the backend it checks), and checkpoint byte I/O.
 */
const FORBIDDEN: [RegExp, string][] = [
  [/\.data\[(?!0\]!;)/, 'indexes tensor storage (.data[...])'],
  [/\bFloat64Array\b/, 'keeps a float64 accumulator'],
  [/\.subarray\(/, 'slices a buffer'],
  [/\b(g|gx|gw|out|y|w|x|vals|keep|scale)\[[a-zA-Z_]\w*\]!?\s*[-+*/]?=(?!=)/, 'writes tensor elements'],
  [/from '\.\.\/(\.\.\/)?kernels\/(js|wasm)\/[^']*\.js'/, 'imports a backend kernel module instead of the Backend'],
];
// checkpoint.ts moves bytes between files and tensors (serialisation, no arithmetic).
const EXEMPT = new Set(['src/autograd/gradcheck.ts', 'src/nn/checkpoint.ts']);

describe('the compute seam', () => {
  it('no numeric loop over tensor data remains outside src/kernels', () => {
    const offences: string[] = [];
    for (const dir of ['src/autograd', 'src/sparse', 'src/nn']) {
      for (const file of sources(join(root, dir))) {
        const rel = relative(root, file);
        if (EXEMPT.has(rel)) continue;
        readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
          for (const [re, why] of FORBIDDEN) if (re.test(line)) offences.push(`${rel}:${i + 1} ${why}: ${line.trim()}`);
        });
      }
    }
    expect(offences).toEqual([]);
  });
});
