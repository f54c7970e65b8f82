/** Reading the peers suite's child processes: their JSON line, `/usr/bin/time -v`'s peak RSS, and the ratios. */

/** What bench/peers/torch_step.py prints (and nmgrad-step.js, without the torch fields). */
export interface ChildReport {
  median_ms: number;
  params: number;
  times_ms?: number[];
  rss_after_import_mb?: number | null;
  vm_hwm_mb?: number | null;
  torch?: string;
  threads?: number;
  torch_threads?: number;
  blas?: string;
  blas_build?: string | null;
  blas_libs?: string[];
  loss?: number | null;
}

/** The last line of `stdout` that parses as a JSON object whose `keys` are finite numbers (by default median_ms and params). */
export function parseChildReport<T = ChildReport>(stdout: string, who: string, keys: readonly string[] = ['median_ms', 'params']): T {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(lines[i]!);
    } catch {
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null) continue;
    const r = parsed as Record<string, unknown>;
    if (keys.every((k) => typeof r[k] === 'number' && Number.isFinite(r[k]))) return r as T;
  }
  const tail = stdout.trim().split('\n').slice(-3).join(' | ');
  throw new Error(`${who}: no JSON report with ${keys.join(', ')} in its output${tail ? ` (last lines: ${tail})` : ''}`);
}

/** Peak resident set size in MiB from GNU time's `-v` report on stderr, or null when absent. */
export function parseMaxRssMb(stderr: string): number | null {
  const m = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(stderr);
  return m ? Number(m[1]) / 1024 : null;
}

export interface PeerTiming {
  threads: number;
  median_ms: number;
}

/** The fastest of the peer's thread counts: the baseline every nmgrad time is compared with. */
export function bestPeer<T extends PeerTiming>(timings: readonly T[]): T {
  if (timings.length === 0) throw new Error('peers: no peer timing to compare with');
  return timings.reduce((best, t) => (t.median_ms < best.median_ms ? t : best));
}

/** ratio = peer's best time / nmgrad's time: above 1, nmgrad's step is the faster one. */
export function peerRatio(peer: PeerTiming, nmgradMs: number): number {
  if (!(nmgradMs > 0)) throw new Error(`peers: nmgrad time must be positive, got ${nmgradMs}`);
  return peer.median_ms / nmgradMs;
}

/** Throws when the two models differ in size: the twin then does not run the same step. */
export function checkParamCounts(preset: string, nmgrad: number, peer: number): void {
  if (nmgrad !== peer) throw new Error(`peers: ${preset}: PyTorch twin has ${peer} parameters, nmgrad's model ${nmgrad} (difference ${peer - nmgrad}); bench/peers/torch_step.py no longer builds the same model`);
}

/** A warning when torch runs on the netlib reference BLAS (unoptimised, single-threaded), else null. */
export function blasWarning(blas: string | undefined, libs: readonly string[] = []): string | null {
  if (blas !== 'reference') return null;
  return `WARNING: torch runs on the reference BLAS (${libs.join(', ') || 'libblas.so.3'}): its matmuls are unoptimised, so these ratios flatter nmgrad; install libopenblas0-pthread (update-alternatives picks libblas.so.3)`;
}

export interface EquivalenceReport {
  max_abs_logit_diff: number;
  max_abs_logit: number;
  loss: number;
}

/**
 * Throws unless the twin, given nmgrad's weights, computes the same eval-mode logits (to float32
 * rounding across different summation orders) and the same loss.
 */
export function checkEquivalence(preset: string, nmgradLoss: number, r: EquivalenceReport): void {
  const logitTol = 1e-3 * Math.max(1, r.max_abs_logit);
  const lossTol = 1e-4 * Math.max(1, Math.abs(nmgradLoss));
  if (!(r.max_abs_logit_diff <= logitTol) || !(Math.abs(r.loss - nmgradLoss) <= lossTol)) {
    throw new Error(`peers: ${preset}: with nmgrad's weights the PyTorch twin computes other logits (max |Δ| ${r.max_abs_logit_diff.toExponential(2)}, tolerance ${logitTol.toExponential(2)}) or another loss (${r.loss} vs nmgrad's ${nmgradLoss}); bench/peers/torch_step.py no longer runs the same model`);
  }
}
