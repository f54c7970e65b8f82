/**
 * The non-parameter state of a model that a checkpoint must carry so that a loaded model
 * computes exactly what the saved one did and trains on the same way: every SparseLinear's
 * recipe, step and mask (the mask as a U8 `<layer>.weight_mask` tensor, PyTorch's pruning
 * name), and the generator state of every module that draws random numbers (dropout).
 */
import { SparsityConfigError, DataError } from '../errors.js';
import { Rng } from '../kernels/random.js';
import { Recipe, type RecipeConfig } from '../sparse/recipe.js';
import { byteTensor, type ByteTensor } from './byte-tensor.js';
import type { Module } from './module.js';
import { SparseLinear, sparseLayers } from './sparse-linear.js';

/** Metadata keys of the module state in a checkpoint. */
export const SPARSE_KEY = 'nmgrad.sparse';
export const RNG_KEY = 'nmgrad.rng';

export const maskTensorName = (layer: string): string => `${layer}.weight_mask`;

interface SparseEntry {
  recipe: RecipeConfig;
  step: number;
  /** The pattern key in force ('' before the first mask). */
  key: string;
  /** Whether `<layer>.weight_mask` holds the mask (false while the layer runs dense). */
  mask: boolean;
}

/** What saveCheckpoint adds: metadata entries and mask tensors. */
export function captureModuleState(model: Module): { metadata: Record<string, string>; bytes: [string, ByteTensor][] } {
  const layers: Record<string, SparseEntry> = {};
  const bytes: [string, ByteTensor][] = [];
  for (const [name, l] of sparseLayers(model)) {
    const { key, keep } = l.getMaskState();
    layers[name] = { recipe: l.recipe.toJSON(), step: l.state.step, key, mask: keep !== null };
    if (keep) bytes.push([maskTensorName(name), byteTensor(keep, l.weight.shape)]);
  }
  const rngs: Record<string, number[]> = {};
  for (const [name, m] of randomModules(model)) rngs[name] = m.rng.getState();
  return { metadata: { [SPARSE_KEY]: JSON.stringify({ version: 1, layers }), [RNG_KEY]: JSON.stringify(rngs) }, bytes };
}

function randomModules(model: Module): [string, Module & { rng: Rng }][] {
  return model.namedModules().filter((e): e is [string, Module & { rng: Rng }] => (e[1] as { rng?: unknown }).rng instanceof Rng);
}

const describeRecipe = (c: RecipeConfig): string => (c.kind === 'dense' ? 'dense' : c.kind === 'unstructured' ? `unstructured ${(c.sparsity * 100).toFixed(1)}%` : `${c.kind}:${c.n}:${c.m}`);

/**
 * Checks the model's sparse layout against the checkpoint's and returns the restore step, or
 * throws before anything was copied. A layer that is sparse on one side and dense on the other,
 * or follows another recipe kind or N:M, is a SparsityConfigError naming the layer.
 */
export function planModuleState(path: string, model: Module, metadata: Record<string, string>, bytes: Map<string, ByteTensor>, legacyState: unknown): () => void {
  const sparse = sparseLayers(model);
  const rngText = metadata[RNG_KEY];
  const rngs = rngText === undefined ? {} : parseObject(path, RNG_KEY, rngText) as Record<string, unknown>;
  const restoreRngs = (): void => {
    for (const [name, m] of randomModules(model)) {
      const s = rngs[name];
      if (Array.isArray(s)) m.rng.setState(s as number[]);
    }
  };
  const text = metadata[SPARSE_KEY];
  if (text === undefined) return planLegacy(path, model, sparse, bytes, legacyState, restoreRngs);
  const saved = parseObject(path, SPARSE_KEY, text) as { layers?: unknown };
  if (saved.layers === null || typeof saved.layers !== 'object' || Array.isArray(saved.layers)) throw new DataError(path, `metadata '${SPARSE_KEY}' has no 'layers' object`);
  const entries = saved.layers as Record<string, SparseEntry>;
  const own = new Map(sparse);
  for (const name of Object.keys(entries)) {
    if (!own.has(name)) {
      throw new SparsityConfigError(name, `the checkpoint ${path} holds this layer sparse (${describeRecipe(entries[name]!.recipe)}) but the model's '${name}' is not a SparseLinear; sparsify the model with the same recipe and layers before loading`);
    }
  }
  const plan: (() => void)[] = [];
  for (const [name, layer] of sparse) {
    const e = entries[name];
    if (!Object.hasOwn(entries, name) || e === undefined) {
      throw new SparsityConfigError(name, `the model's layer is sparse (${describeRecipe(layer.recipe.config)}) but the checkpoint ${path} holds it dense; load into a model without that sparse layer`);
    }
    const file = checkEntry(path, name, e);
    const mine = layer.recipe.config;
    if (file.kind !== mine.kind || file.n !== mine.n || file.m !== mine.m || file.structure !== mine.structure || (file.kind === 'unstructured' && file.sparsity !== mine.sparsity)) {
      throw new SparsityConfigError(name, `the checkpoint ${path} holds this layer as ${describeRecipe(file)}, the model has ${describeRecipe(mine)}`);
    }
    const keep = e.mask ? bytes.get(maskTensorName(name))?.data : null;
    if (keep === undefined) throw new DataError(path, `the mask of sparse layer '${name}' is missing (expected the U8 tensor '${maskTensorName(name)}')`);
    if (keep !== null && keep.length !== layer.outFeatures * layer.inFeatures) {
      throw new DataError(path, `the mask of sparse layer '${name}' has ${keep.length} entries, the weight [${layer.outFeatures}, ${layer.inFeatures}] has ${layer.outFeatures * layer.inFeatures}`);
    }
    plan.push(() => layer.setMaskState({ key: e.key, keep }, e.step));
  }
  return () => {
    for (const p of plan) p();
    restoreRngs();
  };
}

function checkEntry(path: string, name: string, e: unknown): RecipeConfig {
  const o = e as Partial<SparseEntry> | null;
  if (o === null || typeof o !== 'object' || !Number.isInteger(o.step) || (o.step as number) < 0 || typeof o.key !== 'string' || typeof o.mask !== 'boolean' || o.recipe === null || typeof o.recipe !== 'object') {
    throw new DataError(path, `sparse state of layer '${name}' must be {recipe, step: integer ≥ 0, key: string, mask: boolean}, got ${JSON.stringify(e)?.slice(0, 200)}`);
  }
  try {
    return Recipe.fromJSON(o.recipe as RecipeConfig).config;
  } catch (err) {
    throw new DataError(path, `sparse state of layer '${name}': ${(err as Error).message}`);
  }
}

/**
 * Checkpoints written before the sparse state had its own entry: the translation runs kept the
 * masks in their training state (`state.masks`, with `<layer>.weight_mask` tensors) and the
 * dropout generators in `state.dropoutRngs`, in module order. Other files carry no sparse state
 * and restore the weights only.
 */
function planLegacy(path: string, model: Module, sparse: [string, SparseLinear][], bytes: Map<string, ByteTensor>, state: unknown, restoreRngs: () => void): () => void {
  const s = state as { step?: unknown; masks?: unknown; dropoutRngs?: unknown } | null;
  if (s === null || typeof s !== 'object' || s.masks === null || typeof s.masks !== 'object' || !Number.isInteger(s.step)) return restoreRngs;
  const masks = s.masks as Record<string, { key?: unknown; stored?: boolean; keep?: number[] | null }>;
  const step = s.step as number;
  const plan: (() => void)[] = [];
  for (const [name, layer] of sparse) {
    const m = Object.hasOwn(masks, name) ? masks[name] : undefined;
    if (!m) continue;
    const keep = m.stored === undefined ? m.keep : m.stored ? bytes.get(maskTensorName(name))?.data : null;
    if (keep === undefined) throw new DataError(path, `the mask of sparse layer '${name}' is missing (expected the U8 tensor '${maskTensorName(name)}')`);
    plan.push(() => layer.setMaskState({ key: String(m.key), keep }, step));
  }
  return () => {
    for (const p of plan) p();
    restoreLegacyRngs(model, s.dropoutRngs);
  };
}

/** The dropout generators of a legacy state, restored in module order. */
function restoreLegacyRngs(model: Module, states: unknown): void {
  if (!Array.isArray(states)) return;
  randomModules(model).forEach(([, m], i) => {
    const st = states[i] as unknown;
    if (Array.isArray(st)) m.rng.setState(st as number[]);
  });
}

function parseObject(path: string, key: string, text: string): object {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataError(path, `metadata '${key}' is not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DataError(path, `metadata '${key}' must be a JSON object`);
  return v;
}
