/** Saving and loading a translation run: model + optimizer + training state + tokenizer. */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  Adam, DataError, Dropout, Recipe, SparseLinear, Transformer, byteTensor, exportCompressed, loadCompressedTransformer, readCheckpoint, saveCheckpoint,
  sparsify, writeFileAtomic, type ByteTensor, type ExportResult, type LayerSelection, type TransformerConfig,
} from 'nmgrad';
import { BpeTokenizer, type BpeJSON } from 'nmgrad/text';

export interface RunConfig {
  model: TransformerConfig;
  recipe: string;
  sparsify: LayerSelection;
  steps: number;
  batchTokens: number;
  lr: number;
  warmup: number;
  seed: number;
  labelSmoothing: number;
  maxLen: number;
  data: string;
  merges: number;
  /** Language suffixes of the data files (absent in runs saved before they were recorded: en, de). */
  src?: string;
  tgt?: string;
}

export interface TrainState {
  step: number;
  epoch: number;
  batchInEpoch: number;
  dropoutRngs: number[][];
  /**
   * Per sparse layer: the pattern key, and whether its mask is stored as the U8 tensor
   * `<layer>.weight_mask`. Checkpoints from before masks were tensors hold `keep` as numbers.
   */
  masks: Record<string, { key: string; stored?: boolean; keep?: number[] | null }>;
  flops: unknown;
  elapsedMs: number;
}

export interface Run {
  config: RunConfig;
  tokenizer: BpeTokenizer;
  model: Transformer;
  recipe: Recipe;
  sparse: SparseLinear[];
  optimizer: Adam;
}

export function buildRun(config: RunConfig, tokenizer: BpeTokenizer): Run {
  const model = new Transformer({ ...config.model, srcVocab: tokenizer.size, tgtVocab: tokenizer.size });
  const recipe = Recipe.parse(config.recipe, { steps: config.steps });
  const sparse = recipe.config.kind === 'dense' ? [] : sparsify(model, recipe, { layers: config.sparsify });
  const optimizer = new Adam(model.parameters(), config.lr, { beta1: 0.9, beta2: 0.98, eps: 1e-9 });
  return { config, tokenizer, model, recipe, sparse, optimizer };
}

function dropouts(model: Transformer): Dropout[] {
  return model.namedModules().map(([, m]) => m).filter((m): m is Dropout => m instanceof Dropout);
}

export function captureState(run: Run, s: Omit<TrainState, 'dropoutRngs' | 'masks'>): TrainState {
  return {
    ...s,
    dropoutRngs: dropouts(run.model).map((d) => d.rng.getState()),
    masks: Object.fromEntries(run.sparse.map((l) => [l.path, { key: l.getMaskState().key, stored: l.keep !== null }])),
  };
}

const maskName = (layer: string): string => `${layer}.weight_mask`;

/** Each sparse layer's current mask as a U8 [out, in] tensor (PyTorch's `weight_mask` naming). */
function maskTensors(run: Run): [string, ByteTensor][] {
  const out: [string, ByteTensor][] = [];
  for (const l of run.sparse) {
    const keep = l.getMaskState().keep;
    if (keep) out.push([maskName(l.path), byteTensor(keep, l.weight.shape)]);
  }
  return out;
}

/** Writes `checkpoint.safetensors` (atomic) plus config and tokenizer JSON. */
export function saveRun(dir: string, run: Run, state: TrainState): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(run.config, null, 2));
  writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(run.tokenizer.toJSON()));
  saveCheckpoint(join(dir, 'checkpoint.safetensors'), run.model, { optimizer: run.optimizer, state, bytes: maskTensors(run) });
}

/** A run's `config.json`, read on its own (e.g. to check flags before loading the weights). */
export function readRunConfig(dir: string): RunConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new DataError(path, 'missing: not a training run directory (expected config.json, tokenizer.json, checkpoint.safetensors)');
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataError(dir, `unreadable run files: ${(e as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new DataError(path, 'must be a JSON object (the run\'s config)');
  return config as RunConfig;
}

/**
 * Loads a run directory; the model continues exactly where the checkpoint left it.
 * `overrides.steps` rebuilds the recipe schedule for a run being extended.
 */
export function loadRun(dir: string, overrides: Pick<Partial<RunConfig>, 'steps'> = {}): { run: Run; state: TrainState } {
  for (const f of ['config.json', 'tokenizer.json', 'checkpoint.safetensors']) {
    if (!existsSync(join(dir, f))) throw new DataError(join(dir, f), 'missing: not a training run directory (expected config.json, tokenizer.json, checkpoint.safetensors)');
  }
  const stored = readRunConfig(dir);
  const config = overrides.steps === undefined ? stored : { ...stored, steps: overrides.steps };
  let tok: BpeJSON;
  try {
    tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as BpeJSON;
  } catch (e) {
    throw new DataError(dir, `unreadable run files: ${(e as Error).message}`);
  }
  const run = buildRun(config, BpeTokenizer.fromJSON(tok, join(dir, 'tokenizer.json')));
  const path = join(dir, 'checkpoint.safetensors');
  const loaded = readCheckpoint(path, run.model, { optimizer: run.optimizer });
  const state = checkTrainState(loaded.state, path, stored.steps);
  dropouts(run.model).forEach((d, i) => state.dropoutRngs[i] && d.rng.setState(state.dropoutRngs[i]!));
  for (const l of run.sparse) {
    const m = state.masks[l.path];
    if (!m) continue;
    const keep = m.stored === undefined ? m.keep : m.stored ? loaded.bytes.get(maskName(l.path))?.data : null;
    if (keep === undefined) {
      throw new DataError(path, `the mask of sparse layer '${l.path}' is missing (expected the U8 tensor '${maskName(l.path)}'); re-save the run with this version of nmgrad`);
    }
    l.setMaskState({ key: m.key, keep }, state.step);
  }
  return { run, state };
}

/**
 * Writes the run's compressed inference model to `out`: hard N:M layers as values + offsets,
 * everything else dense, no optimizer state; the tokenizer and run config ride in the metadata,
 * so the one file is all `translate` needs.
 */
export function exportRun(dir: string, out: string): ExportResult & { checkpointBytes: number } {
  const { run, state } = loadRun(dir);
  const metadata = { tokenizer: JSON.stringify(run.tokenizer.toJSON()), run_config: JSON.stringify(run.config), step: String(state.step) };
  mkdirSync(dirname(out), { recursive: true });
  const r = exportCompressed(out, run.model, { metadata });
  return { ...r, checkpointBytes: statSync(join(dir, 'checkpoint.safetensors')).size };
}

/** A model to translate with: a run directory, or a file written by `exportRun`. */
export function loadModel(path: string): { model: Transformer; tokenizer: BpeTokenizer } {
  if (existsSync(path) && statSync(path).isFile()) {
    const { model, metadata } = loadCompressedTransformer(path);
    if (!metadata.tokenizer) throw new DataError(path, "exported without a tokenizer (no 'tokenizer' in the metadata)");
    return { model, tokenizer: BpeTokenizer.parse(metadata.tokenizer, `${path} (tokenizer)`) };
  }
  const { run } = loadRun(path);
  return { model: run.model, tokenizer: run.tokenizer };
}

/** The training state of a checkpoint, shape-checked so a damaged file is a DataError, not a TypeError. */
function checkTrainState(v: unknown, where: string, steps: number): TrainState {
  const fail = (what: string): never => {
    throw new DataError(where, `metadata 'state' is not an nmgrad training state: ${what} (got ${JSON.stringify(v)?.slice(0, 120)})`);
  };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('expected an object');
  const s = v as Record<string, unknown>;
  for (const k of ['step', 'epoch', 'batchInEpoch'] as const) {
    if (!Number.isInteger(s[k]) || (s[k] as number) < 0) fail(`'${k}' must be an integer ≥ 0`);
  }
  if ((s.step as number) > steps) fail(`'step' ${String(s.step)} is beyond the run's ${steps} steps`);
  if (typeof s.elapsedMs !== 'number' || !Number.isFinite(s.elapsedMs)) fail("'elapsedMs' must be a number");
  if (!Array.isArray(s.dropoutRngs) || !s.dropoutRngs.every((r) => Array.isArray(r) && r.every((x) => x === null || typeof x === 'number'))) fail("'dropoutRngs' must be a list of RNG states");
  if (s.masks === null || typeof s.masks !== 'object' || Array.isArray(s.masks)) fail("'masks' must be an object");
  if (s.flops !== null && (typeof s.flops !== 'object' || !Array.isArray((s.flops as { records?: unknown }).records))) fail("'flops' must be null or a FLOP counter record");
  return v as TrainState;
}
