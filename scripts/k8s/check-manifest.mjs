// Checks a Kubernetes Job manifest against the Kubernetes API schema, offline, with the
// kubernetes-models package (its JSON-schema validators: types, enums, required fields) and its
// TypeScript types (excess-property checks: a misspelt or unknown field is an error). Run by
// check-manifest.sh from a folder where kubernetes-models, yaml and typescript resolve.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1/Job';

const [manifest, tsc] = process.argv.slice(2);
const docs = parseAllDocuments(readFileSync(manifest, 'utf8'));
const jobs = [];
for (const d of docs) {
  if (d.errors.length) throw new Error(`${manifest}: YAML: ${d.errors.map(String).join('; ')}`);
  const obj = d.toJS();
  if (obj === null) continue;
  if (obj.apiVersion !== 'batch/v1' || obj.kind !== 'Job') throw new Error(`${manifest}: expected a batch/v1 Job, got ${obj.apiVersion} ${obj.kind}`);
  try {
    new Job(obj).validate();
  } catch (e) {
    console.error(`${manifest}: not a valid Job: ${(e.errors ?? [e]).map((x) => `${x.instancePath ?? ''} ${x.message}${x.params?.allowedValues ? ` (${x.params.allowedValues.join(', ')})` : ''}`).join('; ')}`);
    process.exit(1);
  }
  jobs.push(obj);
}
if (jobs.length === 0) throw new Error(`${manifest}: no Job in it`);
writeFileSync('manifest.ts', `import type { IJob } from 'kubernetes-models/batch/v1/Job';\nexport const jobs: IJob[] = ${JSON.stringify(jobs, null, 2)};\n`);
writeFileSync('tsconfig.json', JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: true, types: [] }, files: ['manifest.ts'] }));
try {
  execFileSync(tsc, ['-p', 'tsconfig.json'], { stdio: 'pipe', encoding: 'utf8' });
} catch (e) {
  console.error(`${manifest}: fields unknown to the Kubernetes API:\n${e.stdout || e.message}`);
  process.exit(1);
}
const ver = JSON.parse(readFileSync('node_modules/kubernetes-models/package.json', 'utf8')).version;
console.log(`${manifest}: ${jobs.length} Job(s) valid against the Kubernetes API schema (kubernetes-models ${ver}: schema and unknown-field checks)`);
