import { describe, expect, it } from 'vitest';
import { Linear, Module, Recipe, SparseLinear, SparsityConfigError, Transformer, linearSites, sparseLayers, sparsify, type LinearLike } from '../../src/index.js';

/** A model of plain Linears (no FeedForward or attention blocks): the case 'ffn' used to miss silently. */
class Mlp extends Module {
  fc1 = this.module('fc1', new Linear(16, 32));
  fc2 = this.module('fc2', new Linear(32, 16));
  out = this.module('out', new Linear(16, 8));
}

const recipe = (): Recipe => Recipe.parse('ste:1:8', { steps: 10 });
const tiny = (): Transformer => new Transformer({ srcVocab: 12, tgtVocab: 12, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 16, seed: 1 });

describe('sparsify: layer selection that cannot silently miss', () => {
  it("'all' swaps every Linear of any model and returns their names", () => {
    const m = new Mlp();
    expect(sparsify(m, recipe(), { layers: 'all' })).toEqual(['fc1', 'fc2', 'out']);
    expect(sparseLayers(m).map(([n]) => n)).toEqual(['fc1', 'fc2', 'out']);
    expect(m.fc1).toBeInstanceOf(SparseLinear);
  });

  it("'ffn' and 'attention' pick the Transformer's blocks; 'all' is both there", () => {
    expect(sparsify(tiny(), recipe(), { layers: 'ffn' })).toEqual(['encoder.0.ffn.fc1', 'encoder.0.ffn.fc2', 'decoder.0.ffn.fc1', 'decoder.0.ffn.fc2']);
    expect(sparsify(tiny(), recipe(), { layers: 'attention' })).toHaveLength(4 + 8);
    const all = sparsify(tiny(), recipe(), { layers: 'all' });
    expect(all).toHaveLength(4 + 12);
    expect(new Set(all)).toEqual(new Set([...linearSites(tiny(), 'ffn'), ...linearSites(tiny(), 'attention')].map((s) => s.name)));
  });

  it('a list of names swaps exactly those; a predicate sees each name and layer', () => {
    const m = new Mlp();
    expect(sparsify(m, recipe(), { layers: ['out', 'fc1'] })).toEqual(['out', 'fc1']);
    expect(m.fc2).toBeInstanceOf(Linear);
    const seen: [string, number][] = [];
    const p = new Mlp();
    const picked = sparsify(p, recipe(), { layers: (name: string, layer: LinearLike) => (seen.push([name, layer.inFeatures]), layer.outFeatures === 16) });
    expect(seen).toEqual([['fc1', 16], ['fc2', 32], ['out', 16]]);
    expect(picked).toEqual(['fc2']);
  });

  it('nothing matched, an unknown name, an already sparse layer and a bare Linear are typed errors naming the selection or layer', () => {
    expect(() => sparsify(new Mlp(), recipe(), { layers: 'ffn' })).toThrow(SparsityConfigError);
    expect(() => sparsify(new Mlp(), recipe(), { layers: 'ffn' })).toThrow(/'ffn' matches no Linear layer of this model; its Linear layers: fc1, fc2, out/);
    expect(() => sparsify(new Mlp(), recipe(), { layers: 'attention' })).toThrow(/'attention' matches no Linear layer/);
    expect(() => sparsify(new Mlp(), recipe(), { layers: () => false })).toThrow(/the predicate matches no Linear layer/);
    expect(() => sparsify(new Mlp(), recipe(), { layers: [] })).toThrow(/\[\] matches no Linear layer/);
    expect(() => sparsify(new Mlp(), recipe(), { layers: ['fc1', 'fc9'] })).toThrow(/no Linear layer named 'fc9'; the model's Linear layers: fc1, fc2, out/);
    const twice = new Mlp();
    sparsify(twice, recipe(), { layers: ['fc1'] });
    expect(() => sparsify(twice, recipe(), { layers: 'all' })).toThrow(/fc1: is already sparse or not a dense Linear \(SparseLinear\)/);
    expect(() => sparsify(new Linear(8, 8), recipe(), { layers: 'all' })).toThrow(/the model itself is a Linear layer/);
    expect(() => sparsify(new Mlp(), recipe(), { layers: 'heads' as never })).toThrow(/layers must be 'ffn', 'attention', 'all', a list of layer names or a predicate/);
    // A recipe whose group does not divide a selected layer's input is refused by that layer's name.
    expect(() => sparsify(new Mlp(), Recipe.parse('ste:1:32', { steps: 4 }), { layers: 'all' })).toThrow(/fc1/);
  });
});
