/**
 * N:M training recipes (RECIPES.md): one Recipe is the single source of truth for what a sparse
 * layer does at step t. `recipe.at(t)` → phase, pattern, α, whether to refresh the mask, and
 * what gradient the pruned weights receive. Recipes parse from a compact string or JSON.
 */
import { SparsityConfigError } from '../errors.js';
import { validateNM } from './mask.js';

/**
 * The recipes (docs/recipes.md): dense, fixed (one-shot mask), ste, srste, pmd (pruning mask decay), ssd (sparse structure decay), gradual (Zhu & Gupta), unstructured.
 */
export type RecipeKind = 'dense' | 'fixed' | 'ste' | 'srste' | 'pmd' | 'ssd' | 'gradual' | 'unstructured';
/** PMD's α schedule over the decay window: staircase (the paper's), linear or exponential. */
export type DecayKind = 'staircase' | 'linear' | 'exponential';
/** SSD's frames: stepwise ((M−1):M, M/2:M, … N:M), geometric (8N:8M … N:M) or a custom list. */
export type FrameKind = 'stepwise' | 'geometric' | 'custom';
/**
 * The gradient a pruned weight gets, one vocabulary for recipe configs, steps and layer ops:
 * 'zero' (none: the weight is frozen while pruned), 'scaled' (α·g, PMD) or 'ste' (the full g,
 * straight-through). SR-STE is 'ste' plus its λ·W term (`lambda` > 0). Recipe strings and saved
 * configs may still say 'frozen' (SSD's name for 'zero'); it is read as 'zero'.
 */
export type PrunedGrad = 'zero' | 'scaled' | 'ste';

/** The coefficient c in g_pruned = c·g (+ λ·W): 0, α or 1. */
export function prunedGradCoefficient(rule: { prunedGrad: PrunedGrad; alpha: number }): number {
  return rule.prunedGrad === 'scaled' ? rule.alpha : rule.prunedGrad === 'ste' ? 1 : 0;
}

/**
 * A recipe's full configuration, every default filled in (`Recipe.config`, `toJSON`). Counts are steps.
 */
export interface RecipeConfig {
  kind: RecipeKind;
  /** Target N kept out of every M. */
  n: number;
  m: number;
  /** Total training steps T (the clock needs it to place the fine-tune phase). */
  steps: number;
  /** d: dense warm-up steps. */
  dense: number;
  /** f: final fine-tune steps with a hard mask. */
  finetune: number;
  /** Δ: mask refresh interval (and the staircase width). */
  interval: number;
  decay: DecayKind;
  /** Staircase: α drops by w per interval. */
  w: number;
  /** Staircase: α = 0 once k ≥ kMax. */
  kMax: number;
  /** Linear / exponential rate β. */
  beta: number;
  /** Exponential: α below this counts as 0. */
  threshold: number;
  /** pmd: 'scaled' (α·g) or 'ste' (g). ssd: 'zero' or 'ste'. unstructured: 'zero' or 'ste'. srste: 'ste'. */
  prunedGrad: PrunedGrad;
  /** SR-STE decay λ_W. */
  lambda: number;
  /** SSD frames (also allowed on pmd: α applies to the positions pruned under N_t:M_t). */
  frames: FrameKind | null;
  customFrames: [number, number][];
  /** gradual / unstructured: final sparsity s_f. */
  sparsity: number;
  /** gradual: unstructured magnitude or the nearest N:M pattern. */
  structure: 'unstructured' | 'nm';
}

/**
 * What a sparse layer does at one step (`Recipe.at(t)`): phase, pattern, α, refresh, pruned-gradient rule and FLOP density.
 */
export interface RecipeStep {
  step: number;
  /**
   * 'dense' (no mask: the dense recipe, or t < d), 'sparse' (a hard mask that does not change
   * shape: fixed, ste, srste, unstructured from d on), 'decay' (pmd, ssd, gradual inside the
   * window [d, T − f), where α, the frame or s_t moves), 'finetune' (t ≥ T − f, hard target mask).
   */
  phase: 'dense' | 'sparse' | 'decay' | 'finetune';
  /** Pattern in force (N_t:M_t); n = m means dense. */
  n: number;
  m: number;
  /** Weight of pruned positions in the forward pass: 1 dense … 0 hard. */
  alpha: number;
  /** Recompute the mask from the latent weights before this step's forward. */
  refreshMask: boolean;
  prunedGrad: PrunedGrad;
  /** SR-STE's λ: pruned weights also get λ·W (0 for every other recipe). */
  lambda: number;
  /** 'nm', 'unstructured' or 'none' (no mask at all). */
  structure: 'nm' | 'unstructured' | 'none';
  /** Unstructured sparsity s_t (structure 'unstructured'). */
  sparsity: number;
  /** Forward density ρ_t of the FLOP rules: 1 while α > 0, else the kept fraction. */
  density: number;
  /** Whether dW is computed for pruned weights (RECIPES FLOP rule). */
  denseWeightGrad: boolean;
}

const KINDS: RecipeKind[] = ['dense', 'fixed', 'ste', 'srste', 'pmd', 'ssd', 'gradual', 'unstructured'];

/** Recipes with a decay window between a dense warm-up and a hard fine-tune phase. */
const DECAYING: ReadonlySet<RecipeKind> = new Set(['pmd', 'ssd', 'gradual']);

/**
 * The default split of a decaying recipe (pmd, ssd, gradual) whose string or config gives no
 * `dense` / `finetune`: 10% of the steps dense, 30% hard fine-tune, the decay window between.
 * One split wherever a recipe is built, so `pmd:1:8` always ends in a hard N:M phase; write
 * `finetune=0` (or `dense=0`) to opt out. A split value given explicitly is kept, and the
 * other default shrinks so that the two never overlap. The other recipes are hard (or dense)
 * from step 0 and default to 0 / 0.
 */
export const DEFAULT_SPLIT = { dense: 0.1, finetune: 0.3 } as const;

function defaultSplit(kind: RecipeKind, steps: number, dense: number | undefined, finetune: number | undefined): { dense: number; finetune: number } {
  if (!DECAYING.has(kind)) return { dense: dense ?? 0, finetune: finetune ?? 0 };
  const d = dense ?? Math.min(Math.round(steps * DEFAULT_SPLIT.dense), Math.max(0, steps - (finetune ?? 0)));
  const f = finetune ?? Math.min(Math.round(steps * DEFAULT_SPLIT.finetune), Math.max(0, steps - d));
  return { dense: d, finetune: f };
}

/**
 * Whether a step runs a hard N:M pattern: an N:M structure with N < M and no pruned weight
 * contributing (α = 0). The compressed kernels, the export and the run summaries ask this.
 */
export function isHardNM(st: Pick<RecipeStep, 'structure' | 'alpha' | 'n' | 'm'>): boolean {
  return st.structure === 'nm' && st.alpha === 0 && st.n < st.m;
}

/**
 * One N:M training recipe: the single source of truth for what a sparse layer does at step t
 * (`at(t)`). Build with `Recipe.parse('pmd:1:8', { steps })` or `new Recipe({ kind, steps, … })`;
 * omitted fields take the defaults of docs/recipes.md (pmd, ssd and gradual: `DEFAULT_SPLIT`).
 * Throws SparsityConfigError for an unknown recipe or option, an invalid N:M, overlapping dense and
 * fine-tune phases, or a pruned-gradient rule the recipe does not allow.
 */
export class Recipe {
  readonly config: RecipeConfig;
  private readonly frameList: [number, number][];

  constructor(partial: Partial<RecipeConfig> & { kind: RecipeKind; steps: number }, where = 'recipe') {
    const kind = partial.kind;
    if (!KINDS.includes(kind)) throw new SparsityConfigError(where, `unknown recipe '${String(kind)}'; recipes: ${KINDS.join(', ')}`);
    const n = partial.n ?? 1;
    const m = partial.m ?? (kind === 'dense' ? 1 : 8);
    const steps = partial.steps;
    const int = (name: string, v: number, min: number): void => {
      if (!Number.isInteger(v) || v < min) throw new SparsityConfigError(where, `${name} must be an integer ≥ ${min}, got ${v}`);
    };
    int('steps', steps, 1);
    const { dense, finetune } = defaultSplit(kind, steps, partial.dense, partial.finetune);
    int('dense', dense, 0);
    int('finetune', finetune, 0);
    if (dense + finetune > steps) {
      throw new SparsityConfigError(where, `dense (${dense}) + finetune (${finetune}) steps overlap: they exceed the ${steps} total steps`);
    }
    if (kind !== 'dense' && kind !== 'unstructured') validateNM(where, n, m);
    const window = steps - finetune - dense;
    const kMax = partial.kMax ?? 16;
    const decay = partial.decay ?? 'staircase';
    const defaultInterval = kind === 'pmd' && decay === 'staircase' ? Math.max(1, Math.floor(window / kMax)) : 1;
    const interval = partial.interval ?? defaultInterval;
    int('interval', interval, 1);
    int('kMax', kMax, 1);
    const threshold = partial.threshold ?? 1e-3;
    // threshold 0 would make β = ln(1/0)/window infinite and α = exp(−∞·0) = NaN at the first decay step.
    if (!(threshold > 0 && threshold < 1)) throw new SparsityConfigError(where, `threshold must be in (0, 1), got ${threshold}`);
    const beta = partial.beta ?? (decay === 'exponential' ? Math.log(1 / threshold) / Math.max(window, 1) : 1 / Math.max(window, 1));
    const w = partial.w ?? 1 / kMax;
    if (!(w > 0 && w <= 1)) throw new SparsityConfigError(where, `w must be in (0, 1], got ${w}`);
    if (!(beta > 0 && Number.isFinite(beta))) throw new SparsityConfigError(where, `beta must be a finite number > 0, got ${beta}`);
    const defaults: Record<RecipeKind, PrunedGrad> = { dense: 'zero', fixed: 'zero', ste: 'ste', srste: 'ste', pmd: 'scaled', ssd: 'zero', gradual: 'zero', unstructured: 'zero' };
    const given = partial.prunedGrad as PrunedGrad | 'frozen' | undefined;
    const prunedGrad: PrunedGrad = given === 'frozen' ? 'zero' : (given ?? defaults[kind]);
    const allowed: Record<RecipeKind, PrunedGrad[]> = { dense: ['zero'], fixed: ['zero'], ste: ['ste'], srste: ['ste'], pmd: ['scaled', 'ste'], ssd: ['zero', 'ste'], gradual: ['zero'], unstructured: ['zero', 'ste'] };
    if (!allowed[kind].includes(prunedGrad)) {
      throw new SparsityConfigError(where, `prunedGrad '${prunedGrad}' is not allowed for ${kind}; allowed: ${allowed[kind].join(', ')}`);
    }
    if ((kind === 'pmd' || kind === 'ssd') && partial.lambda !== undefined && partial.lambda !== 0) {
      throw new SparsityConfigError(where, `SR-STE (lambda) cannot be combined with ${kind}; use srste alone, or ${kind} without lambda`);
    }
    const lambda = kind === 'srste' ? (partial.lambda ?? 2e-4) : 0;
    if (!(lambda >= 0 && Number.isFinite(lambda))) throw new SparsityConfigError(where, `lambda (the SR-STE decay λ_W) must be a finite number ≥ 0, got ${lambda}`);
    const frames = partial.frames ?? (kind === 'ssd' ? 'stepwise' : null);
    if (frames !== null && kind !== 'ssd' && kind !== 'pmd') throw new SparsityConfigError(where, `frames apply to ssd (and pmd + ssd), not ${kind}`);
    const sparsity = partial.sparsity ?? 1 - n / m;
    if (!(sparsity >= 0 && sparsity < 1)) throw new SparsityConfigError(where, `sparsity must be in [0, 1), got ${sparsity}`);
    this.config = {
      kind, n, m, steps, dense, finetune, interval, decay, w, kMax, beta, threshold, prunedGrad, lambda,
      frames, customFrames: partial.customFrames ?? [], sparsity, structure: partial.structure ?? 'nm',
    };
    this.frameList = frames === null ? [] : buildFrames(where, frames, n, m, this.config.customFrames);
  }

  /** The SSD frames ([N, M] per frame), empty without frames. */
  get frames(): [number, number][] {
    return this.frameList.map((f) => [f[0], f[1]]);
  }

  /** Largest M any phase uses: a layer's input dim must be a multiple of it. */
  get maxGroup(): number {
    return Math.max(this.config.m, ...this.frameList.map((f) => f[1]));
  }

  /** Checks that a layer with `inFeatures` inputs can follow this recipe. */
  validateFor(layer: string, inFeatures: number): void {
    const c = this.config;
    if (c.kind === 'dense' || (c.kind === 'unstructured') || (c.kind === 'gradual' && c.structure === 'unstructured')) return;
    if (c.frames === 'geometric' && inFeatures % (8 * c.m) !== 0) {
      throw new SparsityConfigError(layer, `geometric SSD frames need the input dim to be a multiple of 8·M = ${8 * c.m}, got ${inFeatures}`);
    }
    for (const [fn, fm] of [[c.n, c.m], ...this.frameList] as [number, number][]) validateNM(layer, fn, fm, inFeatures);
  }

  /** The step record at step `step` (0-based; steps past T − f are fine-tune). */
  at(step: number): RecipeStep {
    const c = this.config;
    const t = step;
    const windowEnd = c.steps - c.finetune;
    const decays = c.kind === 'pmd' || c.kind === 'ssd' || c.kind === 'gradual';
    const phase: RecipeStep['phase'] = c.kind === 'dense' || t < c.dense ? 'dense' : t >= windowEnd ? 'finetune' : decays ? 'decay' : 'sparse';
    const base = { step: t, phase, lambda: c.lambda, sparsity: 0 };
    const denseStep = (): RecipeStep => ({ ...base, n: 1, m: 1, alpha: 1, refreshMask: false, prunedGrad: 'zero', structure: 'none', density: 1, denseWeightGrad: true, lambda: 0 });
    if (c.kind === 'dense' || phase === 'dense') return denseStep();
    const tau = t - c.dense;
    const periodic = tau % c.interval === 0;
    const hardGradMode = (): PrunedGrad => (c.prunedGrad === 'ste' ? 'ste' : 'zero');
    const nm = (n: number, m: number, alpha: number, refresh: boolean, pruned: PrunedGrad): RecipeStep => ({
      ...base, n, m, alpha, refreshMask: refresh, prunedGrad: pruned, structure: 'nm',
      density: alpha > 0 ? 1 : n / m, denseWeightGrad: pruned !== 'zero' && !(pruned === 'scaled' && alpha === 0),
    });
    switch (c.kind) {
      case 'fixed':
        return nm(c.n, c.m, 0, t === c.dense, 'zero');
      case 'ste':
      case 'srste':
        return nm(c.n, c.m, 0, periodic, hardGradMode());
      case 'pmd': {
        const [fn, fm, frameChanged] = this.frameAt(t);
        const alpha = phase === 'finetune' ? 0 : this.alphaAt(tau);
        const pruned: PrunedGrad = c.prunedGrad === 'ste' ? 'ste' : alpha > 0 ? 'scaled' : 'zero';
        const s = nm(fn, fm, alpha, periodic || frameChanged, pruned);
        return { ...s, denseWeightGrad: c.prunedGrad === 'ste' || alpha > 0 };
      }
      case 'ssd': {
        const [fn, fm, frameChanged] = this.frameAt(t);
        return nm(fn, fm, 0, periodic || frameChanged, c.prunedGrad === 'ste' ? 'ste' : 'zero');
      }
      case 'gradual': {
        // s_t is held between refreshes (Zhu & Gupta): it moves only on the Δ grid, and jumps
        // to the target when fine-tune starts, so every change of pattern is a flagged refresh.
        const s = this.gradualSparsity(t);
        const pattern = (sp: number): number => (c.structure === 'unstructured' ? sp : this.gradualN(sp));
        const refresh = periodic || (t === windowEnd && pattern(s) !== pattern(this.gradualSparsity(t - 1)));
        if (c.structure === 'unstructured') {
          return { ...base, n: 1, m: 1, alpha: 0, refreshMask: refresh, prunedGrad: 'zero', structure: 'unstructured', sparsity: s, density: 1 - s, denseWeightGrad: false, lambda: 0 };
        }
        return nm(this.gradualN(s), c.m, 0, refresh, 'zero');
      }
      case 'unstructured':
        return {
          ...base, n: 1, m: 1, alpha: 0, refreshMask: periodic, prunedGrad: c.prunedGrad === 'ste' ? 'ste' : 'zero', structure: 'unstructured',
          sparsity: c.sparsity, density: 1 - c.sparsity, denseWeightGrad: c.prunedGrad === 'ste',
        };
    }
  }

  /** Gradual s_t at step t: the cubic ramp evaluated at the last Δ-grid step (the target in fine-tune). */
  private gradualSparsity(t: number): number {
    const c = this.config;
    const windowEnd = c.steps - c.finetune;
    if (t >= windowEnd) return c.sparsity;
    const tau = Math.max(0, t - c.dense);
    const held = tau - (tau % c.interval);
    const p = Math.min(1, Math.max(0, held / Math.max(1, windowEnd - c.dense)));
    return c.sparsity * (1 - Math.pow(1 - p, 3));
  }

  /** Nearest N:M at or below the density 1 − s, never below the target N. */
  private gradualN(s: number): number {
    const c = this.config;
    return Math.max(c.n, Math.min(c.m, Math.floor((1 - s) * c.m + 1e-9)));
  }

  /** PMD α at τ steps into the decay window. */
  alphaAt(tau: number): number {
    const c = this.config;
    if (tau < 0) return 1;
    switch (c.decay) {
      case 'staircase': {
        const k = Math.floor(tau / c.interval);
        return k >= c.kMax ? 0 : Math.max(0, 1 - k * c.w);
      }
      case 'linear':
        return Math.max(0, 1 - c.beta * tau);
      case 'exponential': {
        const a = Math.exp(-c.beta * tau);
        return a < c.threshold ? 0 : a;
      }
    }
  }

  /** [N_t, M_t, frame changed at t] — the target pattern when the recipe has no frames. */
  private frameAt(t: number): [number, number, boolean] {
    const c = this.config;
    if (this.frameList.length === 0) return [c.n, c.m, false];
    const windowEnd = c.steps - c.finetune;
    const frameOf = (s: number): number => {
      if (s >= windowEnd) return this.frameList.length - 1;
      const span = Math.max(1, windowEnd - c.dense);
      return Math.min(this.frameList.length - 1, Math.floor(((s - c.dense) * this.frameList.length) / span));
    };
    const f = frameOf(t);
    const [fn, fm] = this.frameList[f]!;
    return [fn, fm, t === c.dense || (t > c.dense && frameOf(t - 1) !== f)];
  }

  /** The schedule in words. */
  describe(): string {
    const c = this.config;
    const win = `${c.dense} dense steps, a decay window of ${c.steps - c.dense - c.finetune} steps, ${c.finetune} fine-tune steps (total ${c.steps})`;
    const target = `${c.n}:${c.m} (N kept of every M)`;
    switch (c.kind) {
      case 'dense':
        return `dense: no sparsity for ${c.steps} steps`;
      case 'fixed':
        return `fixed: one-shot magnitude ${target} mask at step ${c.dense}${c.dense === 0 ? ' (at init)' : ''}, pruned weights frozen; ${win}`;
      case 'ste':
        return `ste: hard ${target} mask refreshed every ${c.interval} step(s), pruned weights receive the full gradient; ${win}`;
      case 'srste':
        return `srste: hard ${target} mask refreshed every ${c.interval} step(s), pruned weights receive g + ${c.lambda}·W; ${win}`;
      case 'pmd': {
        const d = c.decay === 'staircase' ? `staircase α = 1 − k·${c.w} per ${c.interval}-step interval (0 after ${c.kMax})` : c.decay === 'linear' ? `linear α = 1 − ${c.beta.toPrecision(3)}·τ` : `exponential α = exp(−${c.beta.toPrecision(3)}·τ), 0 below ${c.threshold}`;
        const fr = this.frameList.length ? `, SSD frames ${this.frameList.map(([a, b]) => `${a}:${b}`).join(' → ')}` : '';
        return `pmd: pruning mask decay to ${target}${fr}, ${d}, pruned gradient ${c.prunedGrad === 'ste' ? 'g' : 'α·g'}, mask refresh every ${c.interval}; ${win}`;
      }
      case 'ssd':
        return `ssd: sparse structure decay ${this.frameList.map(([a, b]) => `${a}:${b}`).join(' → ')} in equal frames (${c.frames}), pruned weights ${c.prunedGrad === 'ste' ? 'receive g' : 'frozen'}; ${win}`;
      case 'gradual':
        return `gradual: cubic sparsity ramp to ${(c.sparsity * 100).toFixed(1)}% (${c.structure === 'nm' ? `nearest N:M ≥ ${target}` : 'unstructured'}), refresh every ${c.interval}; ${win}`;
      case 'unstructured':
        return `unstructured: top-${((1 - c.sparsity) * 100).toFixed(1)}% magnitude per tensor, refresh every ${c.interval}, pruned gradient ${c.prunedGrad === 'ste' ? 'g' : '0'}; ${win}`;
    }
  }

  /** The full configuration, for saving with a run; `Recipe.fromJSON` reads it back. */
  toJSON(): RecipeConfig {
    return { ...this.config, customFrames: this.config.customFrames.map((f) => [f[0], f[1]]) };
  }

  /** A recipe from a saved configuration; throws SparsityConfigError like the constructor. */
  static fromJSON(j: Partial<RecipeConfig> & { kind: RecipeKind; steps: number }): Recipe {
    return new Recipe(j, 'recipe JSON');
  }

  /**
   * Parses `kind[:N:M][,key=value...]`, e.g.
   * `pmd:1:8,decay=staircase,w=0.0625,interval=500,dense=1000,finetune=2000`. `steps` may come
   * from the string or from `defaults` (the trainer's total).
   */
  static parse(text: string, defaults: Partial<RecipeConfig> = {}): Recipe {
    if (typeof text !== 'string') throw new SparsityConfigError('recipe', `must be a string such as 'pmd:1:8', got ${JSON.stringify(text)}`);
    const where = `recipe '${text}'`;
    const [head, ...pairs] = text.split(',').map((s) => s.trim());
    const parts = (head ?? '').split(':');
    const kind = parts[0] as RecipeKind;
    if (!KINDS.includes(kind)) throw new SparsityConfigError(where, `unknown recipe '${parts[0]}'; recipes: ${KINDS.join(', ')}`);
    const cfg: Record<string, unknown> = { ...defaults, kind };
    if (parts.length === 3) {
      // 'dense:1:8' would drop its N:M without a word, and N = M keeps every weight: neither is a sparse recipe.
      if (kind === 'dense') throw new SparsityConfigError(where, `'dense' takes no N:M (it keeps every weight), got '${head}'; write 'dense'`);
      cfg.n = parseNum(where, 'N', parts[1]!);
      cfg.m = parseNum(where, 'M', parts[2]!);
      if (cfg.n === cfg.m) throw new SparsityConfigError(where, `N:M = ${String(cfg.n)}:${String(cfg.m)} keeps every weight (N kept of every M), so '${kind}' would prune nothing; give N < M, or use 'dense'`);
    } else if (parts.length !== 1) throw new SparsityConfigError(where, `expected '${kind}' or '${kind}:N:M', got '${head}'`);
    const numeric = new Set(['n', 'm', 'steps', 'dense', 'finetune', 'interval', 'w', 'kMax', 'beta', 'threshold', 'lambda', 'sparsity']);
    const keys: Record<string, string> = { kmax: 'kMax', k: 'kMax', delta: 'interval', prunedgrad: 'prunedGrad', pruned: 'prunedGrad', d: 'dense', f: 'finetune', t: 'steps' };
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq < 0) throw new SparsityConfigError(where, `'${pair}' is not key=value`);
      const rawKey = pair.slice(0, eq).trim();
      const key = Object.hasOwn(keys, rawKey.toLowerCase()) ? keys[rawKey.toLowerCase()]! : rawKey;
      const value = pair.slice(eq + 1).trim();
      if (numeric.has(key)) cfg[key] = parseNum(where, key, value);
      else if (key === 'decay' && ['staircase', 'linear', 'exponential'].includes(value)) cfg.decay = value;
      else if (key === 'frames' && ['stepwise', 'geometric'].includes(value)) cfg.frames = value;
      else if (key === 'frames') {
        cfg.frames = 'custom';
        cfg.customFrames = value.split(/[;/ ]+/).map((f) => {
          const [a, b] = f.split(':').map((x) => parseNum(where, 'frame', x));
          if (a === undefined || b === undefined) throw new SparsityConfigError(where, `custom frame '${f}' is not N:M`);
          return [a, b];
        });
      } else if (key === 'prunedGrad' && ['scaled', 'ste', 'frozen', 'zero'].includes(value)) cfg.prunedGrad = value;
      else if (key === 'structure' && ['unstructured', 'nm'].includes(value)) cfg.structure = value;
      else if (key === 'srste') cfg.lambda = value === 'false' ? 0 : 2e-4;
      else throw new SparsityConfigError(where, `unknown or invalid option '${pair}'; options: steps, dense, finetune, interval, decay=staircase|linear|exponential, w, kMax, beta, threshold, prunedGrad=scaled|ste|frozen|zero, lambda, frames=stepwise|geometric|N:M;N:M..., sparsity, structure=nm|unstructured`);
    }
    if (cfg.steps === undefined) throw new SparsityConfigError(where, 'the total number of steps is unknown: add steps=T or let the trainer supply it');
    return new Recipe(cfg as Partial<RecipeConfig> & { kind: RecipeKind; steps: number }, where);
  }
}

function parseNum(where: string, name: string, s: string): number {
  const v = Number(s);
  if (s === '' || !Number.isFinite(v)) throw new SparsityConfigError(where, `${name} must be a number, got '${s}'`);
  return v;
}

function buildFrames(where: string, kind: FrameKind, n: number, m: number, custom: [number, number][]): [number, number][] {
  if (kind === 'stepwise') {
    // N = M has nothing to decay to; the frame list would start at (M−1):M and end sparser than asked.
    if (n === m) throw new SparsityConfigError(where, `stepwise SSD needs N < M (N kept of every M), got ${n}:${m}, which prunes nothing; use 'dense'`);
    const ratio = m / n;
    if (!Number.isInteger(Math.log2(ratio))) throw new SparsityConfigError(where, `stepwise SSD needs M/N to be a power of two, got ${n}:${m}`);
    const frames: [number, number][] = [[m - 1, m]];
    for (let k = m / 2; k >= n; k /= 2) frames.push([k, m]);
    if (frames.length > 1 && frames[0]![0] === frames[1]![0]) frames.shift(); // 1:2 → a single frame
    return frames;
  }
  if (kind === 'geometric') return [[8 * n, 8 * m], [4 * n, 4 * m], [2 * n, 2 * m], [n, m]];
  if (custom.length === 0) throw new SparsityConfigError(where, 'custom SSD frames need a list, e.g. frames=4:8;2:8;1:8');
  let prev = Infinity;
  for (const [a, b] of custom) {
    validateNM(where, a, b);
    if (a / b > prev + 1e-12) throw new SparsityConfigError(where, `custom frames must not increase in density: ${a}:${b} follows a sparser frame`);
    prev = a / b;
  }
  const last = custom[custom.length - 1]!;
  if (last[0] / last[1] !== n / m) throw new SparsityConfigError(where, `the last custom frame ${last[0]}:${last[1]} must reach the target density ${n}:${m}`);
  return custom;
}
