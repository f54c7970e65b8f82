import { Rng, Tensor, crossEntropy, linear, noGrad, argmax } from 'nmgrad';

export interface MlpOptions {
  seed?: number;
  samples?: number;
  hidden?: number;
  steps?: number;
  lr?: number;
  log?: (line: string) => void;
}

export interface MlpResult {
  initialLoss: number;
  finalLoss: number;
  accuracy: number;
  steps: number;
}

/** Two interleaved spirals-ish moons: a generated 2-class problem that needs a hidden layer. */
export function makeMoons(n: number, rng: Rng): { x: Tensor; y: Int32Array } {
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const t = Math.PI * rng.uniform();
    const px = cls === 0 ? Math.cos(t) : 1 - Math.cos(t);
    const py = cls === 0 ? Math.sin(t) : 0.5 - Math.sin(t);
    x[2 * i] = px + 0.1 * rng.normal();
    x[2 * i + 1] = py + 0.1 * rng.normal();
    y[i] = cls;
  }
  return { x: new Tensor(x, [n, 2]), y };
}

/** Trains a 2→H→H→2 tanh MLP with full-batch SGD + momentum on the moons problem. */
export function trainMlp(opts: MlpOptions = {}): MlpResult {
  const rng = new Rng(opts.seed ?? 0);
  const hidden = opts.hidden ?? 32;
  const steps = opts.steps ?? 300;
  const lr = opts.lr ?? 0.1;
  const { x, y } = makeMoons(opts.samples ?? 256, rng);
  const init = (out: number, inp: number): Tensor => Tensor.randn([out, inp], rng, Math.sqrt(1 / inp), 0, true);
  const params = [init(hidden, 2), Tensor.zeros([hidden], true), init(hidden, hidden), Tensor.zeros([hidden], true), init(2, hidden), Tensor.zeros([2], true)];
  const velocity = params.map((p) => new Float32Array(p.size));
  const forward = (): Tensor => {
    const h1 = linear(x, params[0]!, params[1]).tanh();
    const h2 = linear(h1, params[2]!, params[3]).tanh();
    return linear(h2, params[4]!, params[5]);
  };
  let initialLoss = NaN;
  let loss = NaN;
  for (let step = 0; step < steps; step++) {
    for (const p of params) p.zeroGrad();
    const l = crossEntropy(forward(), y);
    l.backward();
    loss = l.item();
    if (step === 0) initialLoss = loss;
    if (!Number.isFinite(loss)) throw new Error(`mlp: loss became ${loss} at step ${step}`);
    params.forEach((p, i) => {
      const v = velocity[i]!;
      const g = p.grad!.data;
      for (let j = 0; j < p.size; j++) {
        v[j] = 0.9 * v[j]! + g[j]!;
        p.data[j] -= lr * v[j]!;
      }
    });
    if (opts.log && (step % 50 === 0 || step === steps - 1)) opts.log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(4)}`);
  }
  const logits = noGrad(forward);
  const pred = argmax(logits, -1);
  let correct = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) correct++;
  const finalLoss = noGrad(() => crossEntropy(logits, y).item());
  return { initialLoss, finalLoss, accuracy: correct / y.length, steps };
}
