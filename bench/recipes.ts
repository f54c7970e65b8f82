import { Adam, FeedForward, Recipe, Rng, Tensor, sparsify } from '../src/index.js';
import { setThreads } from '../src/kernels/threads/pool.js';
import { medianMs, type BenchRecord, type SuiteOptions } from './lib.js';

const STEPS = 1000;
/** [recipe, step to measure at, phase label] — hard phases unless stated. */
const CASES: [string, number, string][] = [
  ['dense', 900, 'dense'],
  ['fixed:1:8', 900, 'hard'],
  ['ste:1:8', 900, 'hard'],
  ['srste:1:8', 900, 'hard'],
  ['pmd:1:8,dense=100,finetune=200', 200, 'decay (α > 0)'],
  ['pmd:1:8,dense=100,finetune=200', 900, 'hard (fine-tune)'],
  ['ssd:1:8,dense=100,finetune=200', 900, 'hard (fine-tune)'],
  ['gradual:1:8,dense=100,finetune=200', 900, 'hard (fine-tune)'],
  ['unstructured:1:8', 900, 'hard (masked dense)'],
];

/** One FFN block training step (forward + backward + Adam) at 2048 tokens, 256→1024→256. */
export async function recipesSuite(opts: SuiteOptions): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const rng = new Rng(3);
  const x = Tensor.randn([2048, 256], rng);
  const seed = Tensor.randn([2048, 256], rng);
  for (const threads of [1, 2]) {
    setThreads(threads);
    let denseMs = 0;
    for (const [text, step, phase] of CASES) {
      const block = new FeedForward(256, 1024, { rng: new Rng(1) });
      const recipe = Recipe.parse(text, { steps: STEPS });
      if (recipe.config.kind !== 'dense') sparsify(block, recipe, { layers: 'ffn' });
      block.nameModules();
      block.setStep(step);
      const opt = new Adam(block.parameters(), 1e-4);
      const ms = await medianMs(`${text}@${step} ${threads}t`, () => {
        opt.zeroGrad();
        block.forward(x).backward(seed);
        opt.step();
      }, opts);
      if (text === 'dense') denseMs = ms;
      out.push({ suite: 'recipes', case: 'FFN step 2048 tok 256→1024→256', variant: `${text} [${phase}]`, threads, median_ms: ms, baseline: 'dense', ratio: denseMs / ms });
    }
  }
  return out;
}
