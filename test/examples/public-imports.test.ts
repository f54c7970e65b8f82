import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
const publicEntries = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => (k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`));

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every module specifier in static imports/exports, side-effect imports and dynamic import(). */
function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [/\b(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]!);
  return out;
}

describe('examples use only the public API', () => {
  it('finds the specifiers of every import form', () => {
    const src = `import { a } from 'nmgrad';\nimport type { B } from "nmgrad/text";\nexport { c } from './x.js';\nimport './side.js';\nconst m = await import('../../src/y.js');\nimport {\n  d,\n} from 'node:fs';`;
    expect(specifiers(src).sort()).toEqual(['../../src/y.js', './side.js', './x.js', 'nmgrad', 'nmgrad/text', 'node:fs'].sort());
  });

  it('every example imports nmgrad through package entry points, node built-ins, or its own folder', () => {
    expect(publicEntries).toEqual(expect.arrayContaining(['nmgrad', 'nmgrad/text']));
    const examples = join(root, 'examples');
    const offenders: string[] = [];
    let checked = 0;
    for (const file of tsFiles(examples)) {
      const own = join(examples, relative(examples, file).split(sep)[0]!);
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        checked++;
        if (publicEntries.includes(spec) || spec.startsWith('node:')) continue;
        const inOwnFolder = spec.startsWith('.') && !relative(own, resolve(dirname(file), spec)).startsWith('..');
        if (!inOwnFolder) offenders.push(`${relative(root, file)}: '${spec}'`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(offenders).toEqual([]);
  });
});
