/** `npm run bench -- <suite ...> [--json FILE] [--quick]`: runs tinybench suites, prints a table. */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { printTable, type BenchRecord, type Suite } from './lib.js';
import { matmulSuite } from './matmul.js';
import { sparseSuite } from './sparse.js';
import { recipesSuite } from './recipes.js';
import { tokenizerSuite } from './tokenizer.js';
import { trainStepSuite } from './train-step.js';
import { decodeSuite } from './decode.js';
import { decodeCommitsSuite } from './decode-commits.js';
import { elementwiseSuite } from './elementwise.js';
import { peersSuite } from './peers.js';

const SUITES: Record<string, Suite> = {
  matmul: matmulSuite,
  sparse: sparseSuite,
  recipes: recipesSuite,
  tokenizer: tokenizerSuite,
  'train-step': trainStepSuite,
  decode: decodeSuite,
  'decode-commits': decodeCommitsSuite,
  elementwise: elementwiseSuite,
  peers: peersSuite,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let json: string | null = null;
  let quick = false;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') {
      json = args[++i] ?? null;
      if (json === null) throw new Error('--json needs a file name');
    } else if (a === '--quick') quick = true;
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- <${Object.keys(SUITES).join('|')}|all> [--json FILE] [--quick]`);
      return;
    } else names.push(a);
  }
  const chosen = names.length === 0 || names.includes('all') ? Object.keys(SUITES) : names;
  for (const n of chosen) if (!SUITES[n]) throw new Error(`unknown suite '${n}'; suites: ${Object.keys(SUITES).join(', ')}`);
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, node ${process.version}`);
  const all: BenchRecord[] = [];
  for (const n of chosen) {
    console.log(`\n== ${n} ==`);
    const recs = await SUITES[n]!({ quick });
    printTable(recs);
    all.push(...recs);
  }
  if (json) {
    writeFileSync(json, JSON.stringify(all, null, 2));
    console.log(`\nwrote ${all.length} records to ${json}`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
