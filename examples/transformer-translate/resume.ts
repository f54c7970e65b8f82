/**
 * What may change when a run is continued. The stored config describes the checkpoint; a flag
 * that disagrees with it would either be ignored (misleading) or silently change the run
 * half-way (worse), so it is refused. Only the step count may change: `--steps` extends a run.
 */
import { Recipe } from 'nmgrad';
import type { RunConfig } from './model-io.js';

/** Config fields a flag sets (or, for --preset, the fields a preset sets unless overridden). */
const FLAG_FIELDS: Record<string, string[]> = {
  'd-model': ['model.dModel'],
  heads: ['model.heads'],
  ffn: ['model.ffn'],
  layers: ['model.encoderLayers', 'model.decoderLayers'],
  dropout: ['model.dropout'],
  seed: ['seed', 'model.seed'],
  'batch-tokens': ['batchTokens'],
  lr: ['lr'],
  warmup: ['warmup'],
  merges: ['merges'],
  sparsify: ['sparsify'],
  recipe: ['recipe'],
  data: ['data'],
  src: ['src'],
  tgt: ['tgt'],
  preset: ['model.dModel', 'model.heads', 'model.ffn', 'model.encoderLayers', 'model.decoderLayers', 'model.dropout', 'batchTokens', 'lr', 'warmup', 'merges'],
};

/** Language suffixes of runs saved before they were recorded. */
const DEFAULT_LANGUAGES = { src: 'en', tgt: 'de' };

function field(config: RunConfig, path: string): unknown {
  const withDefaults = { ...DEFAULT_LANGUAGES, ...config } as unknown as Record<string, unknown>;
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], withDefaults);
}

/** Recipes are compared by what they do, so `pmd:1:8` and an equivalent spelled-out form agree. */
function sameRecipe(a: string, b: string, steps: number): boolean {
  if (a === b) return true;
  try {
    return JSON.stringify(Recipe.parse(a, { steps }).toJSON()) === JSON.stringify(Recipe.parse(b, { steps }).toJSON());
  } catch {
    return false;
  }
}

function same(stored: RunConfig, wanted: RunConfig, path: string): boolean {
  if (path === 'recipe') return sameRecipe(stored.recipe, wanted.recipe, stored.steps);
  return field(stored, path) === field(wanted, path);
}

/**
 * The flags given on `train --resume` whose values disagree with the stored run, each as
 * `--flag value (the run has field = stored)`. `wanted` is the config those flags would build.
 */
export function resumeFlagConflicts(given: string[], stored: RunConfig, wanted: RunConfig): string[] {
  const out: string[] = [];
  for (const flag of given) {
    const paths = FLAG_FIELDS[flag];
    if (!paths) continue;
    const differ = paths.filter((p) => !same(stored, wanted, p));
    if (differ.length) out.push(`--${flag} (the run has ${differ.map((p) => `${p} = ${JSON.stringify(field(stored, p))} where this asks for ${JSON.stringify(field(wanted, p))}`).join(', ')})`);
  }
  return out;
}

/** Every field (dotted path) other than `steps` in which two configs of one run differ. */
export function configDifferences(stored: RunConfig, wanted: RunConfig): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (path === 'steps') return;
    if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    } else if (path === 'recipe' ? !sameRecipe(String(a), String(b), stored.steps) : a !== b) {
      out.push(`${path} ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  };
  walk({ ...DEFAULT_LANGUAGES, ...stored }, { ...DEFAULT_LANGUAGES, ...wanted }, '');
  return out;
}
