// Compares two study folders cell by cell: every cell of EXPECTED must be in ACTUAL with the
// same summary (all numbers, bit for bit; the wall-clock fields aside) and the same final
// checkpoint (the SHA-256 of its data section: weights, optimizer moments, masks), and the
// merged reports (results.json, results.md) must be byte-identical.
//   node scripts/slurm/same-cells.mjs EXPECTED ACTUAL
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [expected, actual] = process.argv.slice(2);
if (!expected || !actual) {
  console.error('usage: same-cells.mjs EXPECTED_DIR ACTUAL_DIR');
  process.exit(2);
}
const TIMES = new Set(['trainSeconds', 'wallSeconds']);
const problems = [];

function summary(dir) {
  const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  return JSON.stringify(Object.fromEntries(Object.entries(s).filter(([k]) => !TIMES.has(k))));
}

function checkpointDataSha(dir) {
  const bytes = readFileSync(join(dir, 'checkpoint.safetensors'));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  return header.__metadata__?.['nmgrad.data_sha256'] ?? 'none';
}

const cells = readdirSync(expected).filter((e) => statSync(join(expected, e)).isDirectory() && existsSync(join(expected, e, 'summary.json'))).sort();
if (cells.length === 0) problems.push(`${expected}: no finished cells`);
for (const cell of cells) {
  const a = join(expected, cell);
  const b = join(actual, cell);
  if (!existsSync(join(b, 'summary.json'))) {
    problems.push(`${cell}: not finished in ${actual}`);
    continue;
  }
  const same = summary(a) === summary(b);
  const shaA = checkpointDataSha(a);
  const shaB = checkpointDataSha(b);
  console.log(`  ${cell}: summary ${same ? 'identical' : 'DIFFERENT'}, checkpoint data ${shaA === shaB ? `identical (${shaA.slice(0, 12)})` : `DIFFERENT (${shaA.slice(0, 12)} vs ${shaB.slice(0, 12)})`}`);
  if (!same) problems.push(`${cell}: summary differs:\n    ${summary(a)}\n    ${summary(b)}`);
  if (shaA !== shaB) problems.push(`${cell}: final checkpoint differs`);
}
for (const f of ['results.json', 'results.md']) {
  const same = existsSync(join(actual, f)) && readFileSync(join(expected, f)).equals(readFileSync(join(actual, f)));
  console.log(`  ${f}: ${same ? 'byte-identical' : 'DIFFERENT'}`);
  if (!same) problems.push(`${f} differs`);
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
