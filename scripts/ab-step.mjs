// node scripts/ab-step.mjs CHECKOUT VARIANT THREADS: median ms of 15 small-preset training steps (after 6 warm-up), wasm backend, in a process of its own; CHECKOUT is a built nmgrad checkout, so two commits alternate fairly.
const [root, variant, threads] = [process.argv[2], process.argv[3], Number(process.argv[4])];
process.env.NMGRAD_THREADS = String(threads);
const m = await import(`${root}/dist/src/index.js`);
const { Adam, Recipe, Rng, Transformer, clipGradNorm, labelSmoothedLoss, sparsify } = m;
const [B, S, T, V] = [60, 25, 25, 3000];
const model = new Transformer({ dModel: 128, heads: 4, ffn: 512, encoderLayers: 2, decoderLayers: 2, dropout: 0.1, srcVocab: V, tgtVocab: V, seed: 5 });
if (variant !== 'dense') sparsify(model, Recipe.parse('pmd:1:8,dense=100,finetune=300', { steps: 1000 }), { layers: 'ffn' });
model.nameModules(); model.setStep(variant === 'dense' ? 0 : 900);
const rng = new Rng(11);
const ids = (n) => Array.from({ length: n }, () => 1 + rng.int(V - 1));
const src = ids(B * S), tgtIn = ids(B * T), tgtOut = ids(B * T);
const opt = new Adam(model.parameters(), 1e-4, { beta1: 0.9, beta2: 0.98, eps: 1e-9 });
const step = () => { opt.zeroGrad(); labelSmoothedLoss(model.forward(src, [B, S], tgtIn, [B, T], 0), tgtOut, 0, 0.1).backward(); clipGradNorm(opt.params, 1); opt.step(); };
for (let i = 0; i < 6; i++) { step(); await new Promise((r) => setImmediate(r)); }
const times = [];
for (let i = 0; i < 15; i++) { const t0 = performance.now(); step(); times.push(performance.now() - t0); await new Promise((r) => setImmediate(r)); }
times.sort((a, b) => a - b);
console.log(JSON.stringify({ root, variant, threads, median_ms: times[7] }));
process.exit(0);
