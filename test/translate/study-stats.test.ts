import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { incompleteBeta, lnGamma, pairedDifference, studentTCdf, studentTQuantile, summarize } from '../../examples/transformer-translate/study/stats.js';
import { niceRange, studyPlot } from '../../examples/transformer-translate/study/plot.js';
import { groupStats, type ExpectedCell, type GroupStats } from '../../examples/transformer-translate/study/report.js';
import type { CellSummary } from '../../examples/transformer-translate/study/runs.js';

describe('Student t', () => {
  it('lnGamma matches known values', () => {
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 13);
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 13);
    expect(lnGamma(10.5)).toBeCloseTo(Math.log(1133278.3889487855), 10); // Γ(10.5) = 9.5·8.5·…·0.5·√π
  });

  it('the incomplete beta function matches closed forms', () => {
    // I_x(1, b) = 1 − (1 − x)^b and I_x(a, 1) = x^a.
    for (const x of [0.05, 0.3, 0.5, 0.77, 0.99]) {
      expect(incompleteBeta(x, 1, 3.5)).toBeCloseTo(1 - (1 - x) ** 3.5, 13);
      expect(incompleteBeta(x, 2.5, 1)).toBeCloseTo(x ** 2.5, 13);
    }
  });

  it('the CDF matches the closed forms for 1 and 2 degrees of freedom', () => {
    fc.assert(
      fc.property(fc.double({ min: -50, max: 50, noNaN: true }), (t) => {
        expect(studentTCdf(t, 1)).toBeCloseTo(0.5 + Math.atan(t) / Math.PI, 12);
        expect(studentTCdf(t, 2)).toBeCloseTo(0.5 + t / (2 * Math.sqrt(2 + t * t)), 12);
      }),
    );
  });

  it('quantiles match a printed t table (two-sided 95%, 99%, one-sided 90%)', () => {
    const table: [number, number, number][] = [
      [0.975, 1, 12.706], [0.975, 2, 4.303], [0.975, 3, 3.182], [0.975, 4, 2.776], [0.975, 5, 2.571],
      [0.975, 10, 2.228], [0.975, 30, 2.042], [0.975, 100, 1.984], [0.995, 2, 9.925], [0.995, 5, 4.032], [0.9, 7, 1.415],
    ];
    for (const [p, df, t] of table) expect(Math.abs(studentTQuantile(p, df) - t), `t(${p}, ${df})`).toBeLessThan(5e-4);
    // Large df tends to the normal quantile 1.95996…
    expect(studentTQuantile(0.975, 1e7)).toBeCloseTo(1.959964, 5);
  });

  it('quantiles invert the closed-form CDFs exactly and are antisymmetric', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: 0.999, noNaN: true }), (p) => {
        expect(studentTQuantile(p, 1)).toBeCloseTo(Math.tan(Math.PI * (p - 0.5)), 8);
        expect(studentTQuantile(p, 2)).toBeCloseTo((2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 9);
        expect(studentTQuantile(1 - p, 6)).toBeCloseTo(-studentTQuantile(p, 6), 9);
      }),
    );
  });

  it('refuses p outside (0, 1) and non-positive degrees of freedom', () => {
    expect(() => studentTQuantile(1, 3)).toThrow(/studentTQuantile: p must be in \(0, 1\), got 1/);
    expect(() => studentTQuantile(0.9, 0)).toThrow(/degrees of freedom must be > 0, got 0/);
  });
});

describe('summaries over seeds', () => {
  it('mean, sample sd and the 95% t-interval match a hand computation', () => {
    // values 1, 2, 3, 4: mean 2.5, sd = sqrt(5/3) = 1.29099…, half width t(0.975, 3)·sd/2.
    const s = summarize([1, 2, 3, 4]);
    expect(s.mean).toBe(2.5);
    expect(s.sd).toBeCloseTo(Math.sqrt(5 / 3), 14);
    const half = 3.182446305283708 * (Math.sqrt(5 / 3) / 2);
    expect(s.ci![0]).toBeCloseTo(2.5 - half, 9);
    expect(s.ci![1]).toBeCloseTo(2.5 + half, 9);
    // Three seeds, BLEU 17.0 / 17.6 / 18.2: sd 0.6, half width 4.303·0.6/√3 = 1.4906.
    const b = summarize([17.0, 17.6, 18.2]);
    expect(b.sd).toBeCloseTo(0.6, 12);
    expect(b.ci![1] - b.mean).toBeCloseTo((4.302652729749462 * 0.6) / Math.sqrt(3), 9);
  });

  it('one value has a mean but no spread; no values or NaN are refused', () => {
    expect(summarize([3])).toEqual({ n: 1, mean: 3, sd: null, ci: null, level: 0.95 });
    expect(() => summarize([])).toThrow(/no values/);
    expect(() => summarize([1, NaN])).toThrow(/finite, got NaN/);
  });

  it('paired differences use only seeds present on both sides', () => {
    const a = new Map([[1, 18.0], [2, 17.5], [3, 19.0]]);
    const b = new Map([[1, 17.0], [3, 18.0], [4, 10.0]]);
    const d = pairedDifference(a, b)!;
    expect(d.seeds).toEqual([1, 3]);
    expect(d.mean).toBe(1);
    expect(d.sd).toBe(0);
    expect(d.ci).toEqual([1, 1]);
    expect(pairedDifference(new Map([[5, 1]]), b)).toBeNull();
  });

  it('each sparse group is paired against dense, SR-STE and unstructured at its own N:M, same seeds only', () => {
    const bleu: Record<string, number[]> = {
      'dense dense': [25, 26, 25.5], 'srste 1:8': [24, 25, 24.5], 'pmd 1:8': [24.5, 25.25, 25], 'unstructured 1:8': [23, 24.5, 24], 'pmd 2:4': [25, 25.5, 25.5], 'unstructured 2:4': [24, 25],
    };
    const expected: ExpectedCell[] = [];
    const results = new Map<string, CellSummary>();
    for (const [key, values] of Object.entries(bleu)) {
      const [family, nm] = key.split(' ') as [string, string];
      values.forEach((v, i) => {
        const name = `${family}-${nm}-s${i + 1}`;
        expected.push({ name, family, nm, seed: i + 1 } as ExpectedCell);
        results.set(name, { scores: { bleu: v, chrf: 2 * v }, flops: { relativeToDense: 1, inferencePerToken: null }, keptParams: 1, totalParams: 1 } as unknown as CellSummary);
      });
    }
    const groups = groupStats(expected, results);
    const of = (family: string, nm: string): GroupStats => groups.find((g) => g.family === family && g.nm === nm)!;
    const mapOf = (key: string): Map<number, number> => new Map(bleu[key]!.map((v, i) => [i + 1, v]));
    expect(of('pmd', '1:8').vsUnstructured!.bleu).toEqual(pairedDifference(mapOf('pmd 1:8'), mapOf('unstructured 1:8')));
    expect(of('pmd', '1:8').vsSrste!.bleu).toEqual(pairedDifference(mapOf('pmd 1:8'), mapOf('srste 1:8')));
    expect(of('pmd', '1:8').vsDense!.chrf!.mean).toBeCloseTo(2 * pairedDifference(mapOf('pmd 1:8'), mapOf('dense dense'))!.mean, 12);
    // Unstructured 2:4 has seeds 1–2 only: the pairing uses those two.
    expect(of('pmd', '2:4').vsUnstructured!.bleu!.seeds).toEqual([1, 2]);
    expect(of('pmd', '2:4').vsSrste!.bleu).toBeNull(); // no SR-STE at 2:4 in this grid
    expect(of('unstructured', '1:8').vsUnstructured).toBeNull();
    expect(of('dense', 'dense').vsUnstructured).toBeNull();
  });
});

describe('plot axes', () => {
  it('ranges sit on tick multiples, enclose the data and respect the floor', () => {
    const r = niceRange(0, 1.03, 0, Infinity);
    expect(r.lo).toBe(0);
    expect(r.hi).toBeGreaterThanOrEqual(1.03);
    const y = niceRange(0.4, 3.1, 0, 100);
    expect(y.lo).toBe(0);
    expect(Math.abs(y.hi / y.step - Math.round(y.hi / y.step))).toBeLessThan(1e-9);
    expect(niceRange(16.2, 18.9, 0, 100).lo).toBeGreaterThan(10);
  });
});

describe('study plot', () => {
  const group = (family: string, nm: string, x: number, values: number[]): GroupStats => ({
    family, nm, seeds: values.map((_v, i) => i + 1), bleu: summarize(values), chrf: summarize(values), trainingFlopsRelative: x,
    inferenceMflopsPerToken: 1, keptParams: 1, totalParams: 1, vsDense: null, vsSrste: null, vsUnstructured: null,
  });

  it('starts the x axis at 0, draws one error bar per group with an interval, one legend entry per N:M', () => {
    const svg = studyPlot([group('dense', 'dense', 1, [20, 21, 22]), group('srste', '1:8', 0.78, [17, 18, 19]), group('pmd', '1:16', 0.7, [16])], { title: 't', xLabel: 'x', yLabel: 'y' });
    const xTicks = [...svg.matchAll(/<text x="([\d.]+)" y="418" text-anchor="middle">([\d.]+)<\/text>/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(xTicks[0]).toEqual([70, 0]);
    expect(Math.max(...xTicks.map((t) => t[1]!))).toBeGreaterThanOrEqual(1);
    expect(svg.match(/<path d="M/g)?.length).toBe(2); // the one-seed group has no interval to draw
    for (const label of ['dense', 'N:M 1:8', 'N:M 1:16']) expect(svg).toContain(`>${label}</text>`);
    // The y axis encloses the widest interval (dense: 21 ± 4.30·1/√3 reaches 23.48).
    const yTicks = [...svg.matchAll(/text-anchor="end">([\d.]+)<\/text>/g)].map((m) => Number(m[1]));
    expect(Math.max(...yTicks)).toBeGreaterThanOrEqual(23.48);
    expect(Math.min(...yTicks)).toBeLessThanOrEqual(16);
  });
});
