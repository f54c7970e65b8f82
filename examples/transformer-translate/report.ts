/** A small dependency-free SVG scatter plot (one labelled point per recipe). */
export function svgPlot(points: { label: string; x: number; y: number }[], opts: { title: string; xLabel: string; yLabel: string }): string {
  const W = 640;
  const H = 420;
  const m = { l: 70, r: 30, t: 40, b: 60 };
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const pad = (lo: number, hi: number): [number, number] => (hi - lo < 1e-9 ? [lo - 1, hi + 1] : [lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo)]);
  const [x0, x1] = pad(Math.min(...xs, 0), Math.max(...xs, 1));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const ticks = (lo: number, hi: number): number[] => Array.from({ length: 6 }, (_v, i) => lo + ((hi - lo) * i) / 5);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    ...ticks(x0, x1).map((t) => `<text x="${sx(t)}" y="${H - m.b + 18}" text-anchor="middle">${t.toFixed(2)}</text>`),
    ...ticks(y0, y1).map((t) => `<text x="${m.l - 8}" y="${sy(t) + 4}" text-anchor="end">${t.toFixed(1)}</text>`),
    `<text x="${W / 2}" y="${H - 15}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `<text x="18" y="${H / 2}" text-anchor="middle" transform="rotate(-90 18 ${H / 2})">${esc(opts.yLabel)}</text>`,
    ...points.map((p) => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="5" fill="#1f77b4"/><text x="${(sx(p.x) + 8).toFixed(1)}" y="${(sy(p.y) - 8).toFixed(1)}">${esc(p.label)}</text>`),
    '</svg>',
  ];
  return `${parts.join('\n')}\n`;
}
