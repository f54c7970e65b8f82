/**
 * The hook point through which sparsity (or any other Linear variant) enters a model without
 * editing model code: find the FFN and/or attention projections by category and swap them.
 */
import { ValueError } from '../errors.js';
import { MultiHeadAttention } from './attention.js';
import { FeedForward, type LinearLike } from './layers.js';
import type { Module } from './module.js';

export type LayerSelection = 'ffn' | 'attention' | 'all';

export interface LinearSite {
  /** Dotted module name, e.g. `encoder.0.ffn.fc1`. */
  name: string;
  parent: Module;
  key: string;
  layer: LinearLike;
  category: 'ffn' | 'attention';
}

/** The Linear layers of the FFN blocks and/or attention projections (embeddings, norms and the output projection are never included). */
export function linearSites(model: Module, layers: LayerSelection): LinearSite[] {
  if (!['ffn', 'attention', 'all'].includes(layers)) throw new ValueError('linearSites', `layers must be 'ffn', 'attention' or 'all', got '${String(layers)}'`);
  const out: LinearSite[] = [];
  for (const [name, m] of model.namedModules()) {
    const category = m instanceof FeedForward ? 'ffn' : m instanceof MultiHeadAttention ? 'attention' : null;
    if (category === null || (layers !== 'all' && layers !== category)) continue;
    for (const [key, child] of m.children()) {
      if ('inFeatures' in child && 'outFeatures' in child) out.push({ name: name ? `${name}.${key}` : key, parent: m, key, layer: child as LinearLike, category });
    }
  }
  return out;
}

/** Replaces each selected Linear by `factory(site)`; returns the replaced sites. */
export function replaceLinears(model: Module, layers: LayerSelection, factory: (site: LinearSite) => LinearLike): LinearSite[] {
  const sites = linearSites(model, layers);
  for (const s of sites) s.parent.replaceChild(s.key, factory(s));
  return sites;
}
