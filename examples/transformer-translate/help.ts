/** The CLI's command overview and "did you mean" suggestions. */

/** Levenshtein distance (insertions, deletions, substitutions; each costs 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** The candidate closest to `word`, if it is close enough to be a plausible typo (or a prefix). */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0 : editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** One line per command, aligned. */
export function overview(prog: string, commands: Record<string, string>, common: string): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length)) + 2;
  const rows = Object.entries(commands).map(([c, what]) => `  ${c.padEnd(width)}${what}`);
  return [
    `usage: ${prog} <command> [flags]   (no command: train)`,
    '',
    'commands:',
    ...rows,
    `  ${'help'.padEnd(width)}this overview; 'help <command>' or '<command> --help' lists a command's flags`,
    '',
    `flags of every command: ${common}`,
  ].join('\n');
}
