import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout of src/kernels (docs/architecture.md, "Inside src/kernels"): each folder says what
 * is inside and imports only go down. These checks read the import lines of the sources, so a
 * move that breaks the layout fails here, not in a code review.
 */
const root = resolve(import.meta.dirname, '../..');
const K = 'src/kernels/';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = sources(join(root, 'src')).map((f) => relative(root, f));
const text = new Map(files.map((f) => [f, readFileSync(join(root, f), 'utf8')]));

/** The src files `file` imports (static imports and re-exports, type-only ones included). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const m of text.get(file)!.matchAll(/^(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|^import\s*['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    out.push(relative(root, resolve(root, dirname(file), (m[1] ?? m[2])!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

const inKernels = (f: string): boolean => f.startsWith(K);
const under = (folder: string) => (f: string): boolean => f.startsWith(K + folder + '/');
/** The vocabulary at the top of src/kernels that backends build on: it imports no backend, pool or task table. */
const VOCABULARY = ['backend.ts', 'shape.ts', 'random.ts', 'fill.ts', 'nm-structure.ts'].map((f) => K + f);
/** What the layers above src/kernels may import from it: the seam and its vocabulary, storage, and the pool's settings. */
const SEAM = [...['backends.ts', 'shape.ts', 'random.ts', 'fill.ts', 'nm-structure.ts'].map((f) => K + f), K + 'memory/storage.ts', K + 'threads/pool.ts'];
/** What a sibling backend may take from js/: the backend object and the loops it falls back to. */
const JS_PUBLIC = [K + 'js/backend.ts', K + 'js/fallbacks.ts'];

function offences(from: (f: string) => boolean, rule: (target: string, file: string) => string | null): string[] {
  const out: string[] = [];
  for (const f of files.filter(from)) {
    for (const t of importsOf(f)) {
      const why = rule(t, f);
      if (why !== null) out.push(`${f} imports ${t}: ${why}`);
    }
  }
  return out;
}

describe('the layout of src/kernels', () => {
  it('threads/ runs the task table it is given: it imports no kernel, backend or task table', () => {
    expect(offences(under('threads'), (t) => (inKernels(t) && !under('threads')(t) && !under('memory')(t) ? 'the pool may import only threads/ and memory/' : null))).toEqual([]);
  });

  it('memory/ imports nothing above it', () => {
    expect(offences(under('memory'), (t) => (inKernels(t) && !under('memory')(t) ? 'memory/ sits below every other kernel folder' : null))).toEqual([]);
  });

  it('js/ and wasm/ do not import each other\'s internals', () => {
    expect([
      ...offences(under('js'), (t) => (under('wasm')(t) ? 'js/ is the reference: it imports nothing of wasm/' : null)),
      ...offences(under('wasm'), (t) => (under('js')(t) && !JS_PUBLIC.includes(t) ? `wasm/ may take from js/ only ${JS_PUBLIC.join(', ')}` : null)),
    ]).toEqual([]);
  });

  it('the vocabulary at the top of src/kernels imports no backend, pool or task table', () => {
    expect(offences((f) => VOCABULARY.includes(f), (t) => (inKernels(t) && !VOCABULARY.includes(t) && !under('memory')(t) ? 'the seam and its vocabulary sit below the backends' : null))).toEqual([]);
  });

  it('in a backend, only backend.ts and the *-dispatch.ts files hand work to the pool', () => {
    const mayDispatch = (f: string): boolean => f.endsWith('/backend.ts') || f.endsWith('-dispatch.ts');
    expect(offences((f) => under('js')(f) || under('wasm')(f), (t, f) => (t === K + 'threads/pool.ts' && !mayDispatch(f) ? 'a kernel or task module must not import the pool' : null))).toEqual([]);
  });

  it('what a worker loads never imports the pool (the task tables\' import closure)', () => {
    const seen = new Set<string>();
    const queue = [K + 'js/tasks.ts', K + 'wasm/tasks.ts', K + 'threads/serve.ts', K + 'threads/faults.ts'];
    while (queue.length > 0) {
      const f = queue.pop()!;
      if (seen.has(f) || !text.has(f)) continue;
      seen.add(f);
      queue.push(...importsOf(f));
    }
    expect([...seen].filter((f) => f === K + 'threads/pool.ts' || f.endsWith('-dispatch.ts') || f === K + 'js/backend.ts' || f === K + 'wasm/backend.ts')).toEqual([]);
  });

  it('the layers above import only the seam and its vocabulary from src/kernels', () => {
    expect(offences((f) => !inKernels(f), (t) => (inKernels(t) && !SEAM.includes(t) ? 'go through the Backend (kernels/backends.ts)' : null))).toEqual([]);
  });

  it('src/kernels has no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const t of importsOf(f)) if (inKernels(t) && text.has(t)) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files.filter(inKernels)) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('no source file in src/ passes 450 lines', () => {
    const long = files.map((f) => [f, text.get(f)!.split('\n').length - (text.get(f)!.endsWith('\n') ? 1 : 0)] as const).filter(([, n]) => n > 450);
    expect(long.map(([f, n]) => `${f}: ${n} lines`)).toEqual([]);
  });
});
