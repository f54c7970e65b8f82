/** Training-FLOP reports from the counters the ops fill (RECIPES.md "FLOP accounting"). */
import type { FlopCategory, FlopCounter, Pass } from '../autograd/flops.js';

/**
 * A run's FLOPs: as counted by the ops and by the 3·forward literature convention, each against the
 * same model run dense, split by category and pass, plus inference FLOPs per token when measured.
 */
export interface FlopReport {
  /** Training FLOPs as counted by the ops (all passes). */
  training: number;
  /** The same model and steps run dense (every op's dense equivalent). */
  denseTraining: number;
  relativeToDense: number;
  /** Literature convention: 3·(F_other + ρ_t·F_sparse) summed over steps = 3 × forward FLOPs. */
  literature: number;
  literatureDense: number;
  literatureRelative: number;
  byCategory: Record<FlopCategory, { flops: number; dense: number }>;
  byPass: Record<Pass, { flops: number; dense: number }>;
  /** Forward FLOPs per token of the final model, from an inference counter. */
  inferencePerToken?: number;
  denseInferencePerToken?: number;
}

/**
 * Builds a `FlopReport` from a training counter and, optionally, an inference counter with the number
 * of tokens it decoded (for the per-token figure).
 */
export function flopReport(train: FlopCounter, inference?: { counter: FlopCounter; tokens: number }): FlopReport {
  const all = train.total();
  const fwd = train.total({ pass: 'forward' });
  const cats: FlopCategory[] = ['sparse', 'matmul', 'attention', 'elementwise'];
  const passes: Pass[] = ['forward', 'backward-input', 'backward-weight'];
  const r: FlopReport = {
    training: all.flops,
    denseTraining: all.dense,
    relativeToDense: all.dense === 0 ? 1 : all.flops / all.dense,
    literature: 3 * fwd.flops,
    literatureDense: 3 * fwd.dense,
    literatureRelative: fwd.dense === 0 ? 1 : fwd.flops / fwd.dense,
    byCategory: Object.fromEntries(cats.map((c) => [c, train.total({ category: c })])) as FlopReport['byCategory'],
    byPass: Object.fromEntries(passes.map((p) => [p, train.total({ pass: p })])) as FlopReport['byPass'],
  };
  if (inference && inference.tokens > 0) {
    const f = inference.counter.total({ pass: 'forward' });
    r.inferencePerToken = f.flops / inference.tokens;
    r.denseInferencePerToken = f.dense / inference.tokens;
  }
  return r;
}

const g = (x: number): string => (x >= 1e12 ? `${(x / 1e12).toFixed(3)} TFLOP` : x >= 1e9 ? `${(x / 1e9).toFixed(3)} GFLOP` : `${(x / 1e6).toFixed(3)} MFLOP`);

/** The report as a few human-readable lines (MFLOP / GFLOP / TFLOP). */
export function formatFlopReport(r: FlopReport): string {
  const lines = [
    `training FLOPs (as counted):   ${g(r.training)}  = ${r.relativeToDense.toFixed(3)} × dense (${g(r.denseTraining)})`,
    `training FLOPs (3·forward):    ${g(r.literature)}  = ${r.literatureRelative.toFixed(3)} × dense (${g(r.literatureDense)})`,
    `  by category: ${Object.entries(r.byCategory).map(([k, v]) => `${k} ${g(v.flops)}`).join(', ')}`,
    `  by pass:     ${Object.entries(r.byPass).map(([k, v]) => `${k} ${g(v.flops)}`).join(', ')}`,
  ];
  if (r.inferencePerToken !== undefined) {
    lines.push(`inference FLOPs per token:     ${(r.inferencePerToken / 1e6).toFixed(3)} MFLOP (dense ${(r.denseInferencePerToken! / 1e6).toFixed(3)} MFLOP)`);
  }
  return lines.join('\n');
}
