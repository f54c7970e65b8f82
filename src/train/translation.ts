/**
 * A translation run: an encoder-decoder Transformer, its joint BPE tokenizer, an N:M recipe and
 * Adam, as one config. Build one, save and load its run folder (config.json, tokenizer.json,
 * checkpoint.safetensors), export its compressed inference model, and load a model to decode
 * with from either. `fit` trains it; examples/transformer-translate is a CLI over these.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError } from '../errors.js';
import { writeFileAtomic } from '../nn/checkpoint.js';
import { exportCompressed, loadCompressedTransformer, type ExportResult } from '../nn/export.js';
import { Adam } from '../nn/optim.js';
import type { LayerSelection } from '../nn/replace.js';
import { SparseLinear, sparsify } from '../nn/sparse-linear.js';
import { Transformer, type TransformerConfig } from '../nn/transformer.js';
import { Recipe } from '../sparse/recipe.js';
import { BpeTokenizer } from '../text/bpe.js';
import { checkOutputPath } from './paths.js';
import { CHECKPOINT_FILE, checkRegularTarget, ensureFolder, readRunConfig } from './run-folder.js';
import { loadTrainState, type TrainState } from './trainer.js';
import { saveCheckpoint } from '../nn/checkpoint.js';

/**
 * Everything that defines a translation run (saved as its config.json): model shape, recipe and
 * sparsified layers, schedule (steps, tokens per batch, peak lr, warm-up), seed, label smoothing,
 * longest sentence, data source and BPE merges.
 */
export interface TranslationConfig {
  model: TransformerConfig;
  /** The recipe string (parsed with `steps`); see docs/recipes.md. */
  recipe: string;
  /** Which Linear layers the recipe sparsifies: 'ffn' | 'attention' | 'all'. */
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

/**
 * A built translation run: its config, tokenizer, Transformer, recipe, sparse layers and Adam optimizer.
 */
export interface TranslationRun {
  config: TranslationConfig;
  tokenizer: BpeTokenizer;
  model: Transformer;
  recipe: Recipe;
  /** The sparse layers, in model order. */
  sparse: SparseLinear[];
  optimizer: Adam;
}

/** The tokenizer file of a translation run folder. */
export const TOKENIZER_FILE = 'tokenizer.json';

/** A fresh run of `config` (vocabulary sizes from the tokenizer). */
export function buildTranslationRun(config: TranslationConfig, tokenizer: BpeTokenizer): TranslationRun {
  const model = new Transformer({ ...config.model, srcVocab: tokenizer.size, tgtVocab: tokenizer.size });
  const recipe = Recipe.parse(config.recipe, { steps: config.steps });
  const names = recipe.config.kind === 'dense' ? [] : sparsify(model, recipe, { layers: config.sparsify });
  const byName = new Map(model.namedModules());
  const sparse = names.map((n) => byName.get(n) as SparseLinear);
  const optimizer = new Adam(model.parameters(), config.lr, { beta1: 0.9, beta2: 0.98, eps: 1e-9 });
  return { config, tokenizer, model, recipe, sparse, optimizer };
}

/** Writes the run folder's files (config, tokenizer, then the checkpoint), each atomically. */
export function saveTranslationRun(dir: string, run: TranslationRun, state: TrainState): void {
  ensureFolder(dir);
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(run.config, null, 2));
  writeFileAtomic(join(dir, TOKENIZER_FILE), JSON.stringify(run.tokenizer.toJSON()));
  saveCheckpoint(join(dir, CHECKPOINT_FILE), run.model, { optimizer: run.optimizer, state });
}

/** The tokenizer file of a run (`tokenizer.json`), validated. */
export function readTokenizer(path: string): BpeTokenizer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(path, `unreadable tokenizer: ${(e as Error).message}`);
  }
  return BpeTokenizer.parse(text, path);
}

/**
 * Loads a run folder; the model continues exactly where the checkpoint left it (masks, step,
 * dropout generators, optimizer). `overrides.steps` rebuilds the recipe schedule of a run being extended.
 */
export function loadTranslationRun(dir: string, overrides: { steps?: number } = {}): { run: TranslationRun; state: TrainState } {
  for (const f of ['config.json', TOKENIZER_FILE, CHECKPOINT_FILE]) {
    if (!existsSync(join(dir, f))) throw new DataError(join(dir, f), 'missing: not a training run directory (expected config.json, tokenizer.json, checkpoint.safetensors)');
  }
  const stored = readRunConfig<TranslationConfig>(dir);
  const config = overrides.steps === undefined ? stored : { ...stored, steps: overrides.steps };
  const run = buildTranslationRun(config, readTokenizer(join(dir, TOKENIZER_FILE)));
  const state = loadTrainState(dir, run.model, run.optimizer, Math.max(stored.steps, config.steps));
  return { run, state };
}

/**
 * Writes the run's compressed inference model to `out`: hard N:M layers as values + offsets,
 * everything else dense, no optimizer state; the tokenizer and run config ride in the metadata,
 * so the one file is all decoding needs. `out` may not be a file of the run itself, a folder or
 * a special file, and an existing file is replaced only with `overwrite`.
 */
export function exportTranslationRun(dir: string, out: string, opts: { overwrite?: boolean } = {}): ExportResult & { checkpointBytes: number } {
  const target = resolve(out);
  checkOutputPath(target, 'the export file');
  checkRegularTarget(target);
  for (const f of ['config.json', TOKENIZER_FILE, CHECKPOINT_FILE, 'metrics.jsonl', 'options.json', 'summary.json']) {
    if (existsSync(join(dir, f)) && existsSync(target) && statSync(join(dir, f)).ino === statSync(target).ino) {
      throw new DataError(out, `is the run's own ${f}; export to a file outside the run's files`);
    }
  }
  if (existsSync(target) && !opts.overwrite) throw new DataError(out, 'already exists; choose another --out or pass --overwrite to replace it');
  const { run, state } = loadTranslationRun(dir);
  const metadata = { tokenizer: JSON.stringify(run.tokenizer.toJSON()), run_config: JSON.stringify(run.config), step: String(state.step) };
  ensureFolder(resolve(target, '..'));
  const r = exportCompressed(target, run.model, { metadata });
  return { ...r, checkpointBytes: statSync(join(dir, CHECKPOINT_FILE)).size };
}

/** A model to decode with: a run folder, or a file written by `exportTranslationRun`. */
export function loadTranslator(path: string): { model: Transformer; tokenizer: BpeTokenizer } {
  if (existsSync(path) && statSync(path).isFile()) {
    const { model, metadata } = loadCompressedTransformer(path);
    if (!metadata.tokenizer) throw new DataError(path, "exported without a tokenizer (no 'tokenizer' in the metadata)");
    return { model, tokenizer: BpeTokenizer.parse(metadata.tokenizer, `${path} (tokenizer)`) };
  }
  const { run } = loadTranslationRun(path);
  return { model: run.model, tokenizer: run.tokenizer };
}
