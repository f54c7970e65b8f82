import { describe, expect, it } from 'vitest';
import { bestPeer, blasWarning, checkEquivalence, checkParamCounts, parseChildReport, parseMaxRssMb, peerRatio } from '../../bench/peers/report.js';

describe('peers bench: reading the child processes', () => {
  it('takes the last JSON line that carries median_ms and params, past warnings and other JSON', () => {
    const stdout = [
      'UserWarning: something torch printed',
      '{"median_ms": 10, "params": 5}',
      '{"note": "not a report"}',
      '{"median_ms": 12.5, "params": 1234, "torch": "1.13.0", "blas": "openblas"}',
      '',
    ].join('\n');
    const r = parseChildReport(stdout, 'child');
    expect(r.median_ms).toBe(12.5);
    expect(r.params).toBe(1234);
    expect(r.blas).toBe('openblas');
  });

  it('names the child and its last lines when there is no report', () => {
    expect(() => parseChildReport('Traceback ...\nRuntimeError: boom\n', 'torch_step.py small 1t')).toThrow(/torch_step\.py small 1t.*RuntimeError: boom/);
    expect(() => parseChildReport('{"median_ms": "fast", "params": 3}', 'c')).toThrow(/no JSON report/);
  });

  it("reads GNU time's peak RSS in MiB", () => {
    const stderr = '\tCommand being timed: "python3 x"\n\tMaximum resident set size (kbytes): 204800\n\tExit status: 0\n';
    expect(parseMaxRssMb(stderr)).toBe(200);
    expect(parseMaxRssMb('no report')).toBeNull();
  });
});

describe('peers bench: ratios and checks', () => {
  it("compares nmgrad with the peer's fastest thread count", () => {
    const best = bestPeer([{ threads: 1, median_ms: 300 }, { threads: 2, median_ms: 200 }]);
    expect(best.threads).toBe(2);
    expect(peerRatio(best, 400)).toBe(0.5);
    expect(peerRatio(best, 100)).toBe(2);
    expect(() => bestPeer([])).toThrow(/no peer timing/);
    expect(() => peerRatio(best, 0)).toThrow(/positive/);
  });

  it('fails on a parameter-count mismatch and names both counts', () => {
    expect(() => checkParamCounts('small', 100, 100)).not.toThrow();
    expect(() => checkParamCounts('small', 100, 104)).toThrow(/small.*104.*100/);
  });

  it('warns only for the reference BLAS', () => {
    expect(blasWarning('openblas')).toBeNull();
    expect(blasWarning('reference', ['/usr/lib/x86_64-linux-gnu/blas/libblas.so.3'])).toMatch(/reference BLAS.*blas\/libblas\.so\.3/);
  });
});

describe('peers bench: the equivalence check', () => {
  it('passes float32-rounding differences and fails real ones', () => {
    expect(() => checkEquivalence('small', 8.6079, { max_abs_logit_diff: 3e-6, max_abs_logit: 8.7, loss: 8.60791 })).not.toThrow();
    expect(() => checkEquivalence('small', 8.6079, { max_abs_logit_diff: 0.5, max_abs_logit: 8.7, loss: 8.6079 })).toThrow(/other logits/);
    expect(() => checkEquivalence('small', 8.6079, { max_abs_logit_diff: 1e-6, max_abs_logit: 8.7, loss: 8.7 })).toThrow(/another loss/);
    expect(() => checkEquivalence('small', 8.6079, { max_abs_logit_diff: NaN, max_abs_logit: 8.7, loss: 8.6079 })).toThrow();
  });
});
