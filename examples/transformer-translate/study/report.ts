/**
 * The merged study report: which cells are done, missing or mismatched; per recipe × N:M the
 * mean ± sd and 95% t-interval over seeds of BLEU and chrF; paired (same-seed) differences
 * against dense, against SR-STE and against unstructured sparsity at the same N:M density;
 * training FLOPs × dense and inference FLOPs per token.
 * Everything here is a function of the run summaries only (no paths, no wall times), so
 * merging shards gives the same bytes as one unsharded run.
 */
import { DataError } from 'nmgrad';
import type { Cell } from './grid.js';
import type { CellSummary, FoundCell } from './runs.js';
import { pairedDifference, summarize, type PairedDifference, type Summary } from './stats.js';

export interface ExpectedCell extends Cell {
  hash: string;
}

export interface Collected {
  results: Map<string, CellSummary>;
  missing: ExpectedCell[];
  /** Cells found only with another configuration (listed with where they were found). */
  mismatched: { cell: ExpectedCell; dirs: string[] }[];
}

const sameResult = (a: CellSummary, b: CellSummary): boolean =>
  a.scores.bleu === b.scores.bleu && a.scores.chrf === b.scores.chrf && a.flops.training === b.flops.training && a.keptParams === b.keptParams;

/** Matches found run folders to the grid by name and configuration hash. */
export function collect(expected: readonly ExpectedCell[], found: readonly FoundCell[]): Collected {
  const results = new Map<string, CellSummary>();
  const missing: ExpectedCell[] = [];
  const mismatched: Collected['mismatched'] = [];
  for (const cell of expected) {
    const named = found.filter((f) => f.manifest.name === cell.name);
    const matching = named.filter((f) => f.manifest.hash === cell.hash);
    if (matching.length === 0) {
      if (named.length > 0) mismatched.push({ cell, dirs: named.map((f) => f.dir) });
      else missing.push(cell);
      continue;
    }
    const first = matching[0]!;
    const other = matching.find((f) => !sameResult(f.summary, first.summary));
    if (other) throw new DataError(cell.name, `two runs with the same configuration disagree: ${first.dir} (BLEU ${first.summary.scores.bleu}) and ${other.dir} (BLEU ${other.summary.scores.bleu})`);
    results.set(cell.name, first.summary);
  }
  return { results, missing, mismatched };
}

export interface GroupStats {
  family: string;
  nm: string;
  seeds: number[];
  bleu: Summary;
  chrf: Summary;
  trainingFlopsRelative: number;
  inferenceMflopsPerToken: number | null;
  keptParams: number;
  totalParams: number;
  vsDense: { bleu: PairedDifference | null; chrf: PairedDifference | null } | null;
  vsSrste: { bleu: PairedDifference | null; chrf: PairedDifference | null } | null;
  /** Against unstructured sparsity at the same density (the paper's first claim compares the two). */
  vsUnstructured: { bleu: PairedDifference | null; chrf: PairedDifference | null } | null;
}

const mean = (v: number[]): number => v.reduce((s, x) => s + x, 0) / v.length;

/** Per recipe × N:M statistics over the finished seeds, in grid order. */
export function groupStats(expected: readonly ExpectedCell[], results: ReadonlyMap<string, CellSummary>): GroupStats[] {
  const keys: { family: string; nm: string }[] = [];
  for (const c of expected) if (!keys.some((k) => k.family === c.family && k.nm === c.nm)) keys.push({ family: c.family, nm: c.nm });
  const metric = (family: string, nm: string, pick: (s: CellSummary) => number): Map<number, number> =>
    new Map(expected.filter((c) => c.family === family && c.nm === nm && results.has(c.name)).map((c) => [c.seed, pick(results.get(c.name)!)]));
  const familyOf = (name: string): string | undefined => keys.find((k) => k.family === name)?.family ?? keys.find((k) => k.family.split(',')[0] === name)?.family;
  const srsteFamily = familyOf('srste');
  const unstructuredFamily = familyOf('unstructured');
  const out: GroupStats[] = [];
  for (const { family, nm } of keys) {
    const done = expected.filter((c) => c.family === family && c.nm === nm && results.has(c.name)).map((c) => results.get(c.name)!);
    if (done.length === 0) continue;
    const bleu = metric(family, nm, (s) => s.scores.bleu);
    const chrf = metric(family, nm, (s) => s.scores.chrf);
    const against = (f: string | undefined, n: string): GroupStats['vsDense'] => {
      if (f === undefined || (f === family && n === nm)) return null;
      return { bleu: pairedDifference(bleu, metric(f, n, (s) => s.scores.bleu)), chrf: pairedDifference(chrf, metric(f, n, (s) => s.scores.chrf)) };
    };
    const inference = done.map((s) => s.flops.inferencePerToken).filter((v): v is number => v !== null);
    out.push({
      family, nm, seeds: [...bleu.keys()].sort((a, b) => a - b),
      bleu: summarize([...bleu.values()]), chrf: summarize([...chrf.values()]),
      trainingFlopsRelative: mean(done.map((s) => s.flops.relativeToDense)),
      inferenceMflopsPerToken: inference.length ? mean(inference) / 1e6 : null,
      keptParams: done[0]!.keptParams, totalParams: done[0]!.totalParams,
      vsDense: nm === 'dense' ? null : against('dense', 'dense'),
      vsSrste: nm === 'dense' ? null : against(srsteFamily, nm),
      vsUnstructured: nm === 'dense' ? null : against(unstructuredFamily, nm),
    });
  }
  return out;
}

const f2 = (x: number): string => x.toFixed(2);
const meanSd = (s: Summary): string => (s.sd === null ? `${f2(s.mean)} (1 seed)` : `${f2(s.mean)} ± ${f2(s.sd)}`);
const interval = (s: Summary): string => (s.ci === null ? '—' : `[${f2(s.ci[0])}, ${f2(s.ci[1])}]`);
/** '+1.25', '-0.40'; a value that rounds to zero prints as '+0.00', never '-0.00'. */
const signed = (x: number): string => (Number(f2(x)) === 0 ? '+0.00' : `${x > 0 ? '+' : ''}${f2(x)}`);
const diff = (d: PairedDifference | null): string => (d === null ? '—' : d.ci === null ? `${signed(d.mean)} (1 pair)` : `${signed(d.mean)} [${signed(d.ci[0])}, ${signed(d.ci[1])}]`);

export interface StudyReport {
  json: string;
  markdown: string;
  groups: GroupStats[];
  collected: Collected;
}

/** results.json and results.md of a study; `header` describes the grid in a few lines. */
export function buildReport(expected: readonly ExpectedCell[], found: readonly FoundCell[], header: string[]): StudyReport {
  const collected = collect(expected, found);
  const groups = groupStats(expected, collected.results);
  const { results, missing, mismatched } = collected;
  const md: string[] = [...header, ''];
  md.push(`Cells: ${results.size} of ${expected.length} done${missing.length ? `, ${missing.length} missing` : ''}${mismatched.length ? `, ${mismatched.length} with another configuration` : ''}.`, '');
  md.push('| recipe | N:M | seeds | BLEU mean ± sd | BLEU 95% CI | chrF2 mean ± sd | chrF2 95% CI | training FLOPs × dense | inference MFLOP/token | parameters kept |');
  md.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const g of groups) {
    md.push(`| ${g.nm === 'dense' ? 'dense' : g.family} | ${g.nm === 'dense' ? '—' : g.nm} | ${g.seeds.length} | ${meanSd(g.bleu)} | ${interval(g.bleu)} | ${meanSd(g.chrf)} | ${interval(g.chrf)} | ${g.trainingFlopsRelative.toFixed(3)} | ${g.inferenceMflopsPerToken === null ? '—' : g.inferenceMflopsPerToken.toFixed(3)} | ${g.keptParams} / ${g.totalParams} |`);
  }
  md.push('', 'Paired differences (same seed; mean and 95% t-interval of the per-seed differences):', '');
  md.push('| recipe | N:M | ΔBLEU vs dense | ΔchrF2 vs dense | ΔBLEU vs SR-STE | ΔchrF2 vs SR-STE | ΔBLEU vs unstructured | ΔchrF2 vs unstructured |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const g of groups.filter((x) => x.nm !== 'dense')) {
    const cols = [g.vsDense, g.vsSrste, g.vsUnstructured].flatMap((v) => [diff(v?.bleu ?? null), diff(v?.chrf ?? null)]);
    md.push(`| ${g.family} | ${g.nm} | ${cols.join(' | ')} |`);
  }
  md.push('', '| cell | seed | BLEU | chrF2 | training FLOPs × dense | config hash |', '| --- | ---: | ---: | ---: | ---: | --- |');
  for (const c of expected) {
    const s = results.get(c.name);
    md.push(s ? `| ${c.name} | ${c.seed} | ${f2(s.scores.bleu)} | ${f2(s.scores.chrf)} | ${s.flops.relativeToDense.toFixed(3)} | ${c.hash.slice(0, 12)} |` : `| ${c.name} | ${c.seed} | ${missing.includes(c) ? 'missing' : 'other config'} | | | ${c.hash.slice(0, 12)} |`);
  }
  if (missing.length) md.push('', `Missing cells (${missing.length}): ${missing.map((c) => c.name).join(', ')}`);
  if (mismatched.length) md.push('', `Found only with another configuration (${mismatched.length}): ${mismatched.map((m) => `${m.cell.name} in ${m.dirs.join(', ')}`).join('; ')}`);
  const json = {
    format: 'nmgrad-study-report/1',
    header,
    complete: missing.length === 0 && mismatched.length === 0,
    cells: expected.map((c) => {
      const s = results.get(c.name);
      return { name: c.name, recipe: c.recipe, family: c.family, nm: c.nm, seed: c.seed, hash: c.hash, status: s ? 'done' : missing.includes(c) ? 'missing' : 'mismatched', scores: s?.scores ?? null, flops: s?.flops ?? null };
    }),
    groups,
    missing: missing.map((c) => c.name),
    mismatched: mismatched.map((m) => ({ name: m.cell.name, dirs: m.dirs })),
  };
  return { json: `${JSON.stringify(json, null, 2)}\n`, markdown: `${md.join('\n')}\n`, groups, collected };
}

/** Wall and training time per finished cell: useful, but not part of the reproducible report. */
export function timingsMarkdown(expected: readonly ExpectedCell[], results: ReadonlyMap<string, CellSummary>): string {
  const rows = expected.filter((c) => results.has(c.name)).map((c) => `| ${c.name} | ${results.get(c.name)!.trainSeconds.toFixed(1)} | ${results.get(c.name)!.wallSeconds.toFixed(1)} |`);
  return `| cell | training (s) | wall incl. evaluation (s) |\n| --- | ---: | ---: |\n${rows.join('\n')}\n`;
}
