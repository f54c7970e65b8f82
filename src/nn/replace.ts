/**
 * The hook point through which sparsity (or any other Linear variant) enters a model without
 * editing model code: select Linear layers by category, by name or by a predicate, and swap them.
 * A selection that matches nothing is an error, never a silent no-op.
 */
import { SparsityConfigError, ValueError } from '../errors.js';
import { MultiHeadAttention } from './attention.js';
import { FeedForward, type LinearLike } from './layers.js';
import type { Module } from './module.js';

/**
 * Which Linear layers to select:
 * - `'ffn'`: the two projections of every FeedForward block;
 * - `'attention'`: the query/key/value/output projections of every MultiHeadAttention;
 * - `'all'`: every Linear layer of the model, whatever its type (for the built-in Transformer
 *   that is FFN + attention; an untied output projection is a Linear too);
 * - a list of dotted layer names (`['encoder.0.ffn.fc1', …]`), each of which must exist;
 * - a predicate `(name, layer) => boolean` over every Linear layer.
 * Embeddings and norms are never Linear layers, so no selection reaches them.
 */
export type LayerSelection = 'ffn' | 'attention' | 'all' | readonly string[] | ((name: string, layer: LinearLike) => boolean);

/**
 * One selected Linear layer: its dotted name, the module that holds it under `key`, the layer, and whether it sits in an FFN block, attention or elsewhere.
 */
export interface LinearSite {
  /** Dotted module name, e.g. `encoder.0.ffn.fc1`. */
  name: string;
  parent: Module;
  key: string;
  layer: LinearLike;
  category: 'ffn' | 'attention' | 'other';
}

function isLinearLike(m: Module): m is LinearLike {
  return 'inFeatures' in m && 'outFeatures' in m && 'weight' in m;
}

/** Every Linear-like child in the model, with its dotted name, parent and category. */
function allSites(model: Module): LinearSite[] {
  const out: LinearSite[] = [];
  for (const [name, m] of model.namedModules()) {
    const category = m instanceof FeedForward ? 'ffn' : m instanceof MultiHeadAttention ? 'attention' : 'other';
    for (const [key, child] of m.children()) {
      if (isLinearLike(child)) out.push({ name: name ? `${name}.${key}` : key, parent: m, key, layer: child, category });
    }
  }
  return out;
}

function describeSelection(layers: LayerSelection): string {
  return typeof layers === 'function' ? 'the predicate' : Array.isArray(layers) ? `[${layers.join(', ')}]` : `'${String(layers)}'`;
}

/**
 * The selected Linear layers, in model order. Throws a SparsityConfigError naming the
 * selection when it matches nothing or names a layer that is not a Linear of the model.
 */
export function linearSites(model: Module, layers: LayerSelection): LinearSite[] {
  const sites = allSites(model);
  let picked: LinearSite[];
  if (typeof layers === 'function') picked = sites.filter((s) => layers(s.name, s.layer));
  else if (Array.isArray(layers)) {
    const byName = new Map(sites.map((s) => [s.name, s]));
    const unknown = layers.filter((n) => !byName.has(n));
    if (unknown.length) {
      throw new SparsityConfigError('layer selection', `no Linear layer named ${unknown.map((n) => `'${n}'`).join(', ')}; the model's Linear layers: ${listNames(sites)}`);
    }
    picked = [...new Set(layers)].map((n) => byName.get(n)!);
  } else if (layers === 'all') picked = sites;
  else if (layers === 'ffn' || layers === 'attention') picked = sites.filter((s) => s.category === layers);
  else throw new ValueError('layer selection', `layers must be 'ffn', 'attention', 'all', a list of layer names or a predicate, got ${JSON.stringify(layers)}`);
  if (picked.length === 0) {
    throw new SparsityConfigError('layer selection', `${describeSelection(layers)} matches no Linear layer of this model; its Linear layers: ${listNames(sites)} (select them with 'all', a list of names or a predicate)`);
  }
  return picked;
}

function listNames(sites: LinearSite[]): string {
  if (sites.length === 0) return 'none (the model has no Linear child layers)';
  const names = sites.map((s) => s.name);
  return names.length > 12 ? `${names.slice(0, 12).join(', ')}, … (${names.length} in all)` : names.join(', ');
}

/** Replaces each selected Linear by `factory(site)`; returns the replaced sites. */
export function replaceLinears(model: Module, layers: LayerSelection, factory: (site: LinearSite) => LinearLike): LinearSite[] {
  const sites = linearSites(model, layers);
  for (const s of sites) s.parent.replaceChild(s.key, factory(s));
  return sites;
}
