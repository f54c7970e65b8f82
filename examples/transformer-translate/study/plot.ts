/**
 * BLEU against training FLOPs as a dependency-free SVG: one marker set per N:M pattern, each
 * point the mean over seeds with its 95% t-interval as a vertical error bar. The x axis starts
 * at 0 (FLOPs cannot be negative) and reaches at least 1× dense; the y axis covers the bars.
 */
import type { GroupStats } from './report.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#e377c2'];

/** A tick step of 1, 2 or 5 × 10^k giving about `target` intervals over `span`. */
export function niceStep(span: number, target = 5): number {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** Axis range [lo, hi] on tick multiples enclosing [min, max], clamped to [floor, ceil]. */
export function niceRange(min: number, max: number, floor: number, ceil: number): { lo: number; hi: number; step: number } {
  const span = max - min > 1e-9 ? max - min : Math.max(1, Math.abs(max) * 0.1);
  const step = niceStep(span);
  const lo = Math.max(floor, Math.floor((min - 0.05 * span) / step) * step);
  const hi = Math.min(ceil, Math.ceil((max + 0.05 * span) / step) * step);
  return { lo, hi: hi > lo ? hi : lo + step, step };
}

function marker(shape: number, x: number, y: number, color: string): string {
  const r = 5;
  const at = (px: number, py: number): string => `${px.toFixed(1)},${py.toFixed(1)}`;
  switch (shape % 4) {
    case 0:
      return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" fill="${color}"/>`;
    case 1:
      return `<rect x="${(x - r).toFixed(1)}" y="${(y - r).toFixed(1)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
    case 2:
      return `<polygon points="${at(x, y - r - 1)} ${at(x + r + 1, y + r)} ${at(x - r - 1, y + r)}" fill="${color}"/>`;
    default:
      return `<polygon points="${at(x, y - r - 1)} ${at(x + r + 1, y)} ${at(x, y + r + 1)} ${at(x - r - 1, y)}" fill="${color}"/>`;
  }
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function studyPlot(groups: readonly GroupStats[], opts: { title: string; xLabel: string; yLabel: string }): string {
  const W = 720;
  const H = 460;
  const m = { l: 70, r: 150, t: 40, b: 60 };
  const lows = groups.map((g) => g.bleu.ci?.[0] ?? g.bleu.mean);
  const highs = groups.map((g) => g.bleu.ci?.[1] ?? g.bleu.mean);
  const xr = niceRange(0, Math.max(1, ...groups.map((g) => g.trainingFlopsRelative)), 0, Infinity);
  xr.lo = 0;
  const yr = groups.length ? niceRange(Math.min(...lows), Math.max(...highs), 0, 100) : { lo: 0, hi: 100, step: 20 };
  const sx = (x: number): number => m.l + ((x - xr.lo) / (xr.hi - xr.lo)) * (W - m.l - m.r);
  const sy = (y: number): number => H - m.b - ((y - yr.lo) / (yr.hi - yr.lo)) * (H - m.t - m.b);
  const patterns = [...new Set(groups.map((g) => g.nm))];
  const ticks = (r: { lo: number; hi: number; step: number }): number[] => {
    const out: number[] = [];
    for (let k = Math.ceil(r.lo / r.step - 1e-9); k * r.step <= r.hi + 1e-9; k++) out.push(k * r.step);
    return out;
  };
  const digits = (step: number): number => Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    ...ticks(xr).map((t) => `<line x1="${sx(t).toFixed(1)}" y1="${H - m.b}" x2="${sx(t).toFixed(1)}" y2="${H - m.b + 4}" stroke="black"/><text x="${sx(t).toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle">${t.toFixed(digits(xr.step))}</text>`),
    ...ticks(yr).map((t) => `<line x1="${m.l - 4}" y1="${sy(t).toFixed(1)}" x2="${m.l}" y2="${sy(t).toFixed(1)}" stroke="black"/><text x="${m.l - 8}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${t.toFixed(digits(yr.step))}</text>`),
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 15}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `<text x="18" y="${H / 2}" text-anchor="middle" transform="rotate(-90 18 ${H / 2})">${esc(opts.yLabel)}</text>`,
  ];
  for (const g of groups) {
    const p = patterns.indexOf(g.nm);
    const color = g.nm === 'dense' ? '#000000' : COLORS[p % COLORS.length]!;
    const x = sx(g.trainingFlopsRelative);
    if (g.bleu.ci) {
      // A t-interval can reach below 0 BLEU; the bar stops at the axis.
      const [y0, y1] = [sy(Math.max(yr.lo, g.bleu.ci[0])), sy(Math.min(yr.hi, g.bleu.ci[1]))];
      parts.push(`<path d="M${x.toFixed(1)} ${y0.toFixed(1)}V${y1.toFixed(1)}M${(x - 4).toFixed(1)} ${y0.toFixed(1)}h8M${(x - 4).toFixed(1)} ${y1.toFixed(1)}h8" stroke="${color}" fill="none"/>`);
    }
    parts.push(marker(p, x, sy(g.bleu.mean), color));
    parts.push(`<text x="${(x + 8).toFixed(1)}" y="${(sy(g.bleu.mean) - 6).toFixed(1)}" fill="${color}">${esc(g.nm === 'dense' ? 'dense' : g.family.split(',')[0]!)}</text>`);
  }
  patterns.forEach((nm, p) => {
    const y = m.t + 10 + p * 20;
    const color = nm === 'dense' ? '#000000' : COLORS[p % COLORS.length]!;
    parts.push(marker(p, W - m.r + 20, y, color), `<text x="${W - m.r + 32}" y="${y + 4}">${esc(nm === 'dense' ? 'dense' : `N:M ${nm}`)}</text>`);
  });
  parts.push(`<text x="${W - m.r + 14}" y="${m.t + 20 + patterns.length * 20}" font-size="10">bars: 95% t-interval</text>`);
  parts.push(`<text x="${W - m.r + 14}" y="${m.t + 33 + patterns.length * 20}" font-size="10">over seeds</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
