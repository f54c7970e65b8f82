/**
 * Cross-backend check: runs every kernel of a candidate backend and of the `js` reference on
 * the same seeded inputs and compares the outputs. Tolerance (float32): every element must
 * satisfy |x − x_js| ≤ 2e-5·(|x_js| + s), where s is the case's magnitude scale (K·max|a|·max|b|
 * for a K-term product, 1 for elementwise and row-wise work). Bitwise equality is not asked:
 * a SIMD backend may reassociate sums and use its own exp/log.
 */
import { type Backend, type NMWeight } from './backend.js';
import { jsBackend } from './js/backend.js';
import type { MatmulSpec } from './backend.js';
import { Rng } from './random.js';

export const CROSS_CHECK_RTOL = 2e-5;

export interface CrossCheckFailure {
  kernel: string;
  maxError: number;
  tolerance: number;
}

export interface CrossCheckReport {
  backend: string;
  ok: boolean;
  /** Kernels compared (cases run). */
  cases: string[];
  failures: CrossCheckFailure[];
}

type Out = Float32Array | Int32Array | number[] | number;

interface Case {
  name: string;
  /** Magnitude scale s of the tolerance. */
  scale: number;
  run: (b: Backend) => Out[];
}

function randArray(rng: Rng, n: number, positive = false): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = positive ? 0.2 + Math.abs(rng.normal()) : rng.normal();
  return a;
}

function flatten(o: Out): ArrayLike<number> {
  return typeof o === 'number' ? [o] : o;
}

function buildCases(seed: number): Case[] {
  const rng = new Rng(seed);
  const cases: Case[] = [];
  const [m, n, k] = [37, 29, 70];
  const a = randArray(rng, m * k);
  const bt = randArray(rng, n * k);
  const at = randArray(rng, k * m);
  const bn = randArray(rng, k * n);
  const cInit = randArray(rng, m * n);
  const forms: [string, Float32Array, Float32Array, boolean, boolean][] = [
    ['nn', a, bn, false, false], ['nt', a, bt, false, true], ['tn', at, bn, true, false], ['tt', at, bt, true, true],
  ];
  for (const [form, av, bv, transA, transB] of forms) {
    for (const accumulate of [false, true]) {
      const spec: MatmulSpec = { m, n, k, transA, transB, accumulate };
      cases.push({ name: `gemm ${form}${accumulate ? ' +=' : ''}`, scale: k * 16, run: (b) => {
        const c = Float32Array.from(cInit);
        b.gemm(av, 0, bv, 0, c, 0, spec);
        return [c];
      } });
    }
  }
  const biasRow = randArray(rng, n);
  for (const [form, av, bv, transA, transB] of forms) {
    cases.push({ name: `gemmBias ${form}`, scale: k * 16, run: (b) => {
      const c = Float32Array.from(cInit);
      b.gemmBias(av, bv, c, { m, n, k, transA, transB, accumulate: false }, biasRow);
      return [c];
    } });
  }
  const nb = 3;
  const ba = randArray(rng, nb * m * k);
  const bb = randArray(rng, nb * k * n);
  cases.push({ name: 'gemmBatched', scale: k * 16, run: (b) => {
    const c = new Float32Array(nb * m * n);
    const offs = (size: number): Int32Array => Int32Array.from({ length: nb }, (_v, i) => i * size);
    b.gemmBatched({ a: ba, b: bb, c, aOffs: offs(m * k), bOffs: offs(k * n), cOffs: offs(m * n), spec: { m, n, k, transA: false, transB: false, accumulate: false } });
    return [c];
  } });
  const x = randArray(rng, 6 * 20);
  const y = randArray(rng, 6 * 20);
  const row = randArray(rng, 20);
  const pos = randArray(rng, 6 * 20, true);
  const g = randArray(rng, 6 * 20);
  for (const op of ['add', 'sub', 'mul', 'div'] as const) {
    const rhs = op === 'div' ? pos : y;
    cases.push({ name: `binary ${op} (+ broadcast, backward)`, scale: 1, run: (b) => {
      const same = new Float32Array(120);
      b.binary(op, x, [6, 20], rhs, [6, 20], [6, 20], same);
      const rowRhs = op === 'div' ? pos.subarray(0, 20) : row;
      const bc = new Float32Array(120);
      b.binary(op, x, [6, 20], rowRhs, [20], [6, 20], bc);
      const [ga, gb] = b.binaryBackward(op, g, x, [6, 20], rowRhs, [20], [6, 20], true, true);
      return [same, bc, ga!, gb!];
    } });
  }
  const unary: [Parameters<Backend['unary']>[0], number, Float32Array][] = [
    ['neg', 0, x], ['exp', 0, x], ['log', 0, pos], ['sqrt', 0, pos], ['tanh', 0, x], ['sigmoid', 0, x],
    ['relu', 0, x], ['abs', 0, x], ['pow', 2, x], ['pow', 3, pos], ['gelu', 0, x], ['gelu-tanh', 0, x],
  ];
  for (const [op, p, input] of unary) {
    cases.push({ name: `unary ${op}${op === 'pow' ? ` ${p}` : ''} (+ backward)`, scale: 1, run: (b) => {
      const out = new Float32Array(input.length);
      b.unary(op, input, out, p);
      const gx = new Float32Array(input.length);
      b.unaryBackward(op, input, out, g, gx, p);
      return [out, gx];
    } });
  }
  cases.push({ name: 'reductions (sum, max, repeat, columnSums, sumSquares)', scale: 20, run: (b) => {
    const s = new Float32Array(6 * 5);
    b.sumAxis(x, 6, 4, 5, s);
    const mx = new Float32Array(6 * 5);
    const arg = new Int32Array(6 * 5);
    b.maxAxis(x, 6, 4, 5, mx, arg);
    const back = new Float32Array(120);
    b.maxAxisBackward(s, arg, 6, 4, 5, back);
    const rep = new Float32Array(120);
    b.repeatAxis(s, 6, 4, 5, rep);
    return [s, mx, arg, back, rep, b.columnSums(x, 6, 20), b.sumSquares(x, 1)];
  } });
  const logits = randArray(rng, 6 * 20);
  const targets = Int32Array.from([3, 0, -100, 19, 7, 7]);
  const gamma = randArray(rng, 20);
  const beta = randArray(rng, 20);
  cases.push({ name: 'rows (softmax, logSoftmax, layerNorm, crossEntropy, + backward)', scale: 20, run: (b) => {
    const sm = new Float32Array(120);
    b.softmaxRows(logits, 6, 20, sm, false);
    const ls = new Float32Array(120);
    b.softmaxRows(logits, 6, 20, ls, true);
    const dsm = new Float32Array(120);
    b.softmaxBackwardRows(sm, g, 6, 20, dsm);
    const dls = new Float32Array(120);
    b.logSoftmaxBackwardRows(ls, g, 6, 20, dls);
    const ln = new Float32Array(120);
    const mean = new Float32Array(6);
    const rstd = new Float32Array(6);
    b.layerNormRows(x, 6, 20, gamma, beta, 1e-5, ln, mean, rstd);
    const lg = b.layerNormBackwardRows(x, g, 6, 20, gamma, mean, rstd, { dx: true, dGamma: true, dBeta: true });
    const ce = b.crossEntropyLoss(ls, targets, 6, 20, -100, 0.1);
    const dce = new Float32Array(120);
    b.crossEntropyBackward(ls, targets, 6, 20, -100, 0.1, 0.25, dce);
    const swept = new Float32Array(120);
    const ce2 = b.crossEntropyWithGrad(x, targets, 6, 20, -100, 0.1, 0.25, swept);
    return [sm, ls, dsm, dls, ln, mean, rstd, lg.dx!, lg.dGamma!, lg.dBeta!, ce.total, ce.count, dce, ce2.total, ce2.count, swept];
  } });
  cases.push({ name: 'movement (permute, expand, sumToShape, copyBlocks, gather, scatter, where, maskedFill)', scale: 6, run: (b) => {
    const p = new Float32Array(120);
    b.permute(x, [2, 3, 4, 5], [3, 1, 0, 2], p);
    const e = new Float32Array(120);
    b.expand(row, [1, 20], [6, 20], e);
    const s = b.sumToShape(x, [6, 20], [1, 20]);
    const blocks = new Float32Array(120);
    b.copyBlocks(x, 3, 20, blocks, 1, 20, 10, 6);
    const ids = Int32Array.from([2, 0, 5, 2]);
    const gat = new Float32Array(4 * 20);
    b.gatherRows(x, 20, ids, gat);
    const sc = new Float32Array(120);
    b.scatterAddRows(gat, ids, 20, sc);
    const cond = Float32Array.from(x, (v) => (v > 0 ? 1 : 0));
    const wh = new Float32Array(120);
    b.where(cond, x, y, wh);
    const sel = new Float32Array(120);
    b.selectGrad(cond, g, false, sel);
    const mf = new Float32Array(120);
    b.maskedFill(x, [2, 3, 20], cond.subarray(0, 40), [2, 1, 20], -1e9, mf);
    return [p, e, s, blocks, gat, sc, wh, sel, mf];
  } });
  const [outF, inF, rows] = [12, 32, 9];
  const dense = randArray(rng, outF * inF);
  const xs = randArray(rng, rows * inF);
  const dy = randArray(rng, rows * outF);
  const bias = randArray(rng, outF);
  for (const [nk, mk] of [[1, 4], [2, 8], [3, 4]] as [number, number][]) {
    cases.push({ name: `N:M ${nk}:${mk} (offsets, gather, forward, dX, kept dW, scatter)`, scale: inF * 16, run: (b) => {
      const indices = new Uint8Array((outF * inF * nk) / mk);
      b.nmKeepOffsets(dense, outF, inF, nk, mk, indices);
      const values = new Float32Array(indices.length);
      const w: NMWeight = { shape: [outF, inF], n: nk, m: mk, values, indices };
      b.nmGather(dense, w, values);
      const out = new Float32Array(rows * outF);
      b.nmForward(xs, rows, w, bias, out);
      const dx = b.nmInputGrad(dy, rows, w);
      const kept = b.nmKeptWeightGrad(dy, xs, rows, w);
      const back = new Float32Array(outF * inF);
      b.nmScatter(kept, w, back);
      return [Float32Array.from(indices), values, out, dx, kept, back];
    } });
  }
  const keep = Float32Array.from(dense, (v) => (Math.abs(v) > 0.7 ? 1 : 0));
  cases.push({ name: 'masks (maskScale, mulInto, prunedGrad, topMagnitudeMask, countNonZero)', scale: 1, run: (b) => {
    const scale = b.maskScale(keep, 0.25);
    const wt = new Float32Array(dense.length);
    b.mulInto(dense, scale, wt);
    const gw = Float32Array.from(wt);
    b.prunedGrad(gw, keep, dense, 0.5, 2e-4);
    const top = new Float32Array(dense.length);
    b.topMagnitudeMask(dense, 100, top);
    return [scale, wt, gw, top, b.countNonZero(keep)];
  } });
  cases.push({ name: 'optimizers (sgd, adam, adamw)', scale: 1, run: (b) => {
    const outs: Out[] = [];
    for (const nesterov of [false, true]) {
      const w = Float32Array.from(x);
      const v = Float32Array.from(y);
      b.sgdUpdate(w, g, v, { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov });
      outs.push(w, v);
    }
    for (const decoupled of [false, true]) {
      const w = Float32Array.from(x);
      const mm = Float32Array.from(y);
      const vv = Float32Array.from(pos);
      b.adamUpdate(w, g, mm, vv, { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01, decoupled, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.98 ** 3 });
      outs.push(w, mm, vv);
    }
    return outs;
  } });
  return cases;
}

/** Compares `candidate` with the js reference on every kernel; never throws for a mismatch. */
export function crossCheckBackend(candidate: Backend, opts: { seed?: number; reference?: Backend } = {}): CrossCheckReport {
  const reference = opts.reference ?? jsBackend;
  const cases = buildCases(opts.seed ?? 7);
  const failures: CrossCheckFailure[] = [];
  for (const c of cases) {
    let got: Out[];
    try {
      got = c.run(candidate);
    } catch (e) {
      failures.push({ kernel: `${c.name}: threw ${e instanceof Error ? e.message : String(e)}`, maxError: Infinity, tolerance: 0 });
      continue;
    }
    const want = c.run(reference);
    let maxError = 0;
    let worstTol = 0;
    let bad = got.length !== want.length;
    want.forEach((w, i) => {
      const wa = flatten(w);
      const ga = flatten(got[i] ?? []);
      if (ga.length !== wa.length) bad = true;
      for (let j = 0; j < wa.length; j++) {
        const err = Math.abs(ga[j]! - wa[j]!);
        const tol = CROSS_CHECK_RTOL * (Math.abs(wa[j]!) + c.scale);
        const same = Object.is(ga[j], wa[j]) || (Number.isNaN(ga[j]) && Number.isNaN(wa[j]));
        if (!same && !(err <= tol)) bad = true;
        if (err > maxError) {
          maxError = err;
          worstTol = tol;
        }
      }
    });
    if (bad) failures.push({ kernel: c.name, maxError, tolerance: worstTol });
  }
  return { backend: candidate.name, ok: failures.length === 0, cases: cases.map((c) => c.name), failures };
}
