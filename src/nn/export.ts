/**
 * Compressed inference export. Every layer that runs a hard N:M pattern is written as its kept
 * values (`<layer>.weight.values`, F32 [out, in·n/m]) and their offsets inside each group of m
 * (`<layer>.weight.indices`, U8, same shape), with n, m and the dense shape in the metadata;
 * every other parameter is written as usual (a sparse layer that is not in a hard phase as its
 * effective weight W ⊙ (E + α·Ē)). No optimizer state, no latent weights: the file holds what
 * inference needs, so a 1:8 layer takes 0.156× its dense bytes.
 */
import { readFileSync } from 'node:fs';
import { DataError, fmtShape } from '../errors.js';
import { Tensor, noGrad } from '../autograd/tensor.js';
import { NMSparseTensor } from '../sparse/nm-tensor.js';
import { isHardNM } from '../sparse/recipe.js';
import { byteTensor, decodeSafetensors, encodeSafetensors, writeFileAtomic, type ByteTensor, type Safetensors } from './checkpoint.js';
import type { Module } from './module.js';
import { NMLinear } from './nm-linear.js';
import { SparseLinear } from './sparse-linear.js';
import { Transformer, type TransformerConfig } from './transformer.js';

/** The `format` metadata value of an exported compressed model; `loadCompressed` refuses any other. */
export const COMPRESSED_FORMAT = 'nmgrad-compressed-v1';
const RESERVED = ['format', 'nm_layers', 'transformer'];

/** What the metadata records of each compressed layer. */
export interface CompressedLayer {
  n: number;
  m: number;
  /** Dense weight shape [out, in]. */
  shape: [number, number];
}

/**
 * What `exportCompressed` wrote: the file size, the dense-equivalent weight bytes, and the compressed layers.
 */
export interface ExportResult {
  /** Bytes of the exported file. */
  bytes: number;
  /** F32 bytes of the same weights stored densely (no optimizer state): what a dense export holds. */
  denseWeightBytes: number;
  /** Layers stored compressed, by path. */
  layers: Record<string, CompressedLayer>;
}

/** The hard N:M weight a layer runs now, or null if it runs dense or under a soft / unstructured mask. */
function hardPattern(m: Module): NMSparseTensor | null {
  if (m instanceof NMLinear) return m.weight;
  if (!(m instanceof SparseLinear)) return null;
  if (!isHardNM(m.state) || m.keep === null) return null;
  return m.toSparse();
}

/** Safetensors bytes of the compressed export of `model`; `metadata` is stored alongside (string values). */
export function encodeCompressed(model: Module, metadata: Record<string, string> = {}): { bytes: Uint8Array; layers: Record<string, CompressedLayer>; denseWeightBytes: number } {
  for (const k of RESERVED) if (k in metadata) throw new DataError('exportCompressed', `metadata key '${k}' is reserved`);
  return noGrad(() => {
    const list: [string, Tensor | ByteTensor][] = [];
    const layers: Record<string, CompressedLayer> = {};
    const handled = new Set<Tensor>();
    for (const [path, mod] of model.namedModules()) {
      const sp = hardPattern(mod);
      if (mod instanceof SparseLinear && sp === null) {
        list.push([`${path}.weight`, mod.effectiveWeight()]);
        handled.add(mod.weight);
      }
      if (sp === null) continue;
      const [out, inF] = sp.shape;
      const kept = (inF / sp.m) * sp.n;
      list.push([`${path}.weight.values`, new Tensor(Float32Array.from(sp.values), [out, kept])]);
      list.push([`${path}.weight.indices`, byteTensor(Uint8Array.from(sp.indices), [out, kept])]);
      layers[path] = { n: sp.n, m: sp.m, shape: [out, inF] };
      if (mod instanceof SparseLinear) handled.add(mod.weight);
    }
    for (const [name, p] of model.namedParameters()) if (!handled.has(p)) list.push([name, p.detach()]);
    const meta: Record<string, string> = { format: COMPRESSED_FORMAT, nm_layers: JSON.stringify(layers), ...metadata };
    if (model instanceof Transformer) meta.transformer = JSON.stringify(model.config);
    let denseWeightBytes = model.namedParameters().reduce((s, [, p]) => s + p.size * 4, 0);
    for (const [, mod] of model.namedModules()) if (mod instanceof NMLinear) denseWeightBytes += mod.weight.denseByteLength;
    return { bytes: encodeSafetensors(list, meta), layers, denseWeightBytes };
  });
}

/** Writes the compressed export of `model` to `path` (atomically). */
export function exportCompressed(path: string, model: Module, opts: { metadata?: Record<string, string> } = {}): ExportResult {
  const { bytes, layers, denseWeightBytes } = encodeCompressed(model, opts.metadata);
  writeFileAtomic(path, bytes);
  return { bytes: bytes.length, denseWeightBytes, layers };
}

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DataError(path, `cannot read model: ${(e as Error).message}`);
  }
}

function parseLayers(where: string, metadata: Record<string, string>): Record<string, CompressedLayer> {
  if (metadata.format !== COMPRESSED_FORMAT) {
    throw new DataError(where, `not a compressed nmgrad export (format '${metadata.format ?? 'none'}', expected '${COMPRESSED_FORMAT}'); a training checkpoint loads with loadCheckpoint`);
  }
  let layers: Record<string, CompressedLayer>;
  try {
    layers = JSON.parse(metadata.nm_layers ?? '') as Record<string, CompressedLayer>;
  } catch {
    throw new DataError(where, `metadata 'nm_layers' is not valid JSON`);
  }
  for (const [path, l] of Object.entries(layers)) {
    const ok = Number.isInteger(l?.n) && Number.isInteger(l?.m) && Array.isArray(l?.shape) && l.shape.length === 2 && l.shape.every((d) => Number.isInteger(d) && d > 0);
    if (!ok) throw new DataError(where, `layer '${path}': n, m and shape [out, in] must be positive integers, got ${JSON.stringify(l)}`);
  }
  return layers;
}

/**
 * Loads a compressed export into `model`, a freshly built model of the same architecture: each
 * compressed layer replaces the module at its path by an NMLinear, the other parameters are
 * copied (names and shapes checked first, nothing copied on error). Returns the metadata.
 */
export function loadCompressed(path: string, model: Module): Record<string, string> {
  return decodeCompressedInto(readBytes(path), model, path);
}

/** `loadCompressed` from bytes; `where` names the source in errors. */
export function decodeCompressedInto(bytes: Uint8Array, model: Module, where = 'compressed model'): Record<string, string> {
  return loadInto(decodeSafetensors(bytes, where), model, where);
}

function loadInto({ tensors, bytes: u8, metadata }: Safetensors, model: Module, where: string): Record<string, string> {
  const layers = parseLayers(where, metadata);
  // As loadCheckpoint does: NaN or ±Inf weights would only decode to empty or garbage lines.
  for (const [name, t] of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i]!)) throw new DataError(where, `tensor '${name}' holds ${d[i]} at flat index ${i} of ${fmtShape(t.shape)}; refusing non-finite weights`);
    }
  }
  const modules = new Map(model.namedModules());
  const replacements: [Module, string, NMLinear][] = [];
  for (const [path, l] of Object.entries(layers)) {
    const values = tensors.get(`${path}.weight.values`);
    const indices = u8.get(`${path}.weight.indices`);
    if (!values || !indices) throw new DataError(where, `layer '${path}' needs the F32 tensor '${path}.weight.values' and the U8 tensor '${path}.weight.indices'`);
    const dot = path.lastIndexOf('.');
    const parent = modules.get(dot < 0 ? '' : path.slice(0, dot));
    const current = modules.get(path) as (Module & { inFeatures?: number; outFeatures?: number }) | undefined;
    if (!parent || !current) throw new DataError(where, `layer '${path}' is not a module of this model`);
    if (current.outFeatures !== l.shape[0] || current.inFeatures !== l.shape[1]) {
      throw new DataError(where, `layer '${path}' is [${current.outFeatures}, ${current.inFeatures}] in this model but ${fmtShape(l.shape)} in the file`);
    }
    const sp = new NMSparseTensor(l.shape, l.n, l.m, values.data, indices.data, `${where}: ${path}`);
    // The bias (if the file has one) is filled in by loadStateDict below, with every other parameter.
    const bias = tensors.has(`${path}.bias`) ? Tensor.zeros([l.shape[0]]) : null;
    replacements.push([parent, path.slice(dot + 1), new NMLinear(sp, bias, path)]);
  }
  // Check the dense part against the model as it will be (with the replacements) before changing anything.
  const rest = new Map([...tensors].filter(([n]) => !n.endsWith('.weight.values')));
  const expected = new Set(model.namedParameters().map(([n]) => n));
  for (const path of Object.keys(layers)) expected.delete(`${path}.weight`);
  const missing = [...expected].filter((n) => !rest.has(n));
  const extra = [...rest.keys()].filter((n) => !expected.has(n));
  if (missing.length || extra.length) {
    throw new DataError(where, [missing.length ? `missing: ${missing.join(', ')}` : '', extra.length ? `unexpected: ${extra.join(', ')}` : ''].filter(Boolean).join('; '));
  }
  for (const [parent, key, layer] of replacements) parent.replaceChild(key, layer);
  model.nameModules();
  model.loadStateDict(rest, where);
  return metadata;
}

/** Builds the Transformer recorded in a compressed export and loads it; returns it with the metadata. */
export function loadCompressedTransformer(path: string): { model: Transformer; metadata: Record<string, string> } {
  const file = decodeSafetensors(readBytes(path), path);
  const config = file.metadata.transformer;
  if (config === undefined) throw new DataError(path, `no 'transformer' config in the metadata (exported from a model that is not a Transformer?)`);
  let parsed: TransformerConfig;
  try {
    parsed = JSON.parse(config) as TransformerConfig;
  } catch {
    throw new DataError(path, `metadata 'transformer' is not valid JSON`);
  }
  const model = new Transformer(parsed);
  const metadata = loadInto(file, model, path);
  return { model: model.eval(), metadata };
}
