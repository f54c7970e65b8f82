/**
 * Workers run compiled JavaScript; under a TypeScript runner (vitest) the calling thread runs
 * the sources. This check makes the two impossible to diverge silently: every module the
 * worker entry loads (its static import closure) must have been compiled from the source as
 * it is now. The build's source maps carry the source text (`inlineSources`), so the check
 * compares contents, not timestamps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WorkerError } from '../../errors.js';

const checked = new Set<string>();

/** Static relative imports (`import … from './x.js'`, `import './x.js'`) of a source file. */
function relativeImports(source: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?['"](\.{1,2}\/[^'"]+)\.js['"]/g;
  for (let m = re.exec(source); m !== null; m = re.exec(source)) out.push(m[1]!);
  return out;
}

/**
 * Throws a WorkerError naming the stale or missing compiled modules unless `builtEntry` (e.g.
 * dist/src/kernels/worker.js) and its import closure match `sourceEntry` and its own.
 */
export function assertFreshBuild(sourceEntry: string, builtEntry: string): void {
  if (checked.has(sourceEntry)) return;
  const srcRoot = dirname(sourceEntry);
  const distRoot = dirname(builtEntry);
  const stale: string[] = [];
  const seen = new Set<string>();
  const queue = [sourceEntry];
  while (queue.length > 0) {
    const ts = queue.pop()!;
    if (seen.has(ts)) continue;
    seen.add(ts);
    const text = readFileSync(ts, 'utf8');
    const js = resolve(distRoot, relative(srcRoot, ts)).replace(/\.ts$/, '.js');
    const map = `${js}.map`;
    let builtFrom: string | undefined;
    if (existsSync(js) && existsSync(map)) {
      const parsed = JSON.parse(readFileSync(map, 'utf8')) as { sourcesContent?: (string | null)[] };
      builtFrom = parsed.sourcesContent?.[0] ?? undefined;
    }
    if (builtFrom !== text) stale.push(relative(process.cwd(), ts) + (existsSync(js) ? '' : ' (not compiled)'));
    for (const spec of relativeImports(text)) {
      const next = resolve(dirname(ts), `${spec}.ts`);
      if (existsSync(next)) queue.push(next);
    }
  }
  if (stale.length > 0) {
    throw new WorkerError('pool', `the compiled worker code in ${relative(process.cwd(), distRoot) || distRoot} is stale: ${stale.sort().join(', ')} changed since the last build, so workers and this thread would run different code; run \`npm run build\``);
  }
  checked.add(sourceEntry);
}

/**
 * Workers need JavaScript: under a TypeScript runner (vitest, tsx) a `src/**.ts` module maps to
 * its compiled twin in `dist/src/**.js`.
 */
export function runtimeUrl(moduleUrl: string): string {
  if (!moduleUrl.endsWith('.ts')) return moduleUrl;
  const path = fileURLToPath(moduleUrl);
  const m = /^(.*)[\\/]src[\\/](.*)\.ts$/.exec(path);
  if (!m) return moduleUrl;
  return pathToFileURL(`${m[1]}/dist/src/${m[2]}.js`).href;
}

/**
 * The worker entry beside the pool's folder (src/kernels/worker.ts: it imports every backend's
 * task table, which the pool must not), as the compiled module the workers run.
 */
export function workerUrl(poolUrl: string): URL {
  const own = new URL(poolUrl.endsWith('.ts') ? '../worker.ts' : '../worker.js', poolUrl).href;
  const url = new URL(runtimeUrl(own));
  if (!existsSync(url)) {
    throw new WorkerError('pool', `worker entry ${fileURLToPath(url)} is missing: run \`npm run build\` (workers run compiled JavaScript)`);
  }
  // Under a TypeScript runner the workers run dist/ while this thread runs src/: refuse to
  // start unless every module the worker loads was compiled from the current source.
  if (own !== url.href) assertFreshBuild(fileURLToPath(own), fileURLToPath(url));
  return url;
}
