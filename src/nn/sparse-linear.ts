/**
 * SparseLinear: a Linear whose dense latent weights are trained under an N:M recipe. At each
 * step it asks its Recipe what to do (`setStep`), refreshes its mask from |W| when told to, and
 * runs the compressed N:M kernels whenever α = 0, so sparsity buys real time — unless N/M is
 * above the backend's `nmCompressedMaxDensity` (SSD's 7:8 frame, say), where the dense product
 * of W ⊙ E is faster: the same function, gradients and counted FLOPs, another summation order.
 */
import { SparsityConfigError, ShapeError, fmtShape } from '../errors.js';
import { withScope } from '../autograd/flops.js';
import { Tensor, noGrad } from '../autograd/tensor.js';
import { linear } from '../autograd/ops/matmul.js';
import { getBackend } from '../kernels/backends.js';
import { unstructuredMask } from '../sparse/mask.js';
import { NMSparseTensor } from '../sparse/nm-tensor.js';
import { maskedLinear, nmLatentLinear, type PrunedGradRule } from '../sparse/recipe-ops.js';
import { Recipe, isHardNM, type RecipeStep } from '../sparse/recipe.js';
import { Linear, type LinearLike } from './layers.js';
import { Module } from './module.js';
import { replaceLinears, type LayerSelection } from './replace.js';

/**
 * A Linear [out, in] trained under an N:M recipe: it keeps dense latent weights, asks its `Recipe`
 * at each `setStep` for the phase, pattern and α, refreshes its mask from |W| when told to, and runs
 * the compressed N:M kernels whenever α = 0. Built by `sparsify`, or directly as
 * `new SparseLinear(linear, recipe, name)`; throws SparsityConfigError when the input dim does not
 * fit the recipe's groups, ShapeError when the weight is not 2-D.
 */
export class SparseLinear extends Module implements LinearLike {
  weight: Tensor;
  bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** 0/1 keep mask E of the pattern in force (null while dense). */
  keep: Float32Array | null = null;
  private pattern: NMSparseTensor | null = null;
  private maskKey = '';
  /** E + α·Ē for the current mask and α (rebuilt only when either changes). */
  private scaleCache: { keep: Float32Array; alpha: number; scale: Float32Array } | null = null;
  state: RecipeStep;

  constructor(source: Linear | { weight: Tensor; bias: Tensor | null }, readonly recipe: Recipe, readonly layerName = 'SparseLinear') {
    super();
    if (source.weight.ndim !== 2) throw new ShapeError(layerName, `weight must be [out, in], got ${fmtShape(source.weight.shape)}`);
    const [outF, inF] = source.weight.shape as [number, number];
    recipe.validateFor(layerName, inF);
    this.inFeatures = inF;
    this.outFeatures = outF;
    this.weight = this.param('weight', source.weight);
    this.bias = source.bias ? this.param('bias', source.bias) : null;
    this.state = recipe.at(0);
    this.applyState(this.state, true);
  }

  protected override onStep(step: number): void {
    this.state = this.recipe.at(step);
    this.applyState(this.state, this.training);
  }

  /** Recomputes the mask when the step asks for it (training only: evaluation never refreshes). */
  private applyState(st: RecipeStep, mayRefresh: boolean): void {
    if (st.structure === 'none') return;
    const key = `${st.structure}:${st.n}:${st.m}:${st.sparsity}`;
    const stale = this.keep === null || key !== this.maskKey;
    if (!(mayRefresh && (st.refreshMask || stale))) return;
    noGrad(() => {
      const [outF, inF] = [this.outFeatures, this.inFeatures];
      if (st.structure === 'unstructured') {
        this.keep = unstructuredMask(this.weight, st.sparsity, this.layerName).data;
        this.pattern = null;
      } else if (st.n === st.m) {
        this.keep = new Float32Array(outF * inF).fill(1);
        this.pattern = null;
      } else {
        const count = (outF * inF * st.n) / st.m;
        const indices = new Uint8Array(count);
        getBackend().nmKeepOffsets(this.weight.data, outF, inF, st.n, st.m, indices);
        this.pattern = new NMSparseTensor([outF, inF], st.n, st.m, getBackend().alloc(count), indices, this.layerName);
        this.keep = this.pattern.mask().data;
      }
      this.maskKey = key;
    });
  }

  forward(x: Tensor): Tensor {
    const st = this.state;
    const name = this.path || this.layerName;
    return withScope({ layer: name, sparse: true }, () => {
      if (st.structure === 'none' || this.keep === null) return linear(x, this.weight, this.bias, name);
      if (x.shape[x.ndim - 1] !== this.inFeatures) throw new ShapeError(name, `input ${fmtShape(x.shape)} does not end in ${this.inFeatures}`);
      const rule: PrunedGradRule = st;
      if (this.pattern !== null && isHardNM(st) && this.pattern.n / this.pattern.m <= getBackend().nmCompressedMaxDensity) return nmLatentLinear(x, this.weight, this.bias, this.pattern, this.keep, rule, name);
      return maskedLinear(x, this.weight, this.bias, this.keep, this.scale(this.keep), rule, name);
    });
  }

  /** E + α·Ē for the current step (the mask itself once α = 0 or unstructured). */
  private scale(keep: Float32Array): Float32Array {
    const alpha = this.state.structure === 'unstructured' ? 0 : this.state.alpha;
    if (alpha === 0) return keep;
    const c = this.scaleCache;
    if (c && c.keep === keep && c.alpha === alpha) return c.scale;
    const scale = getBackend().maskScale(keep, alpha);
    this.scaleCache = { keep, alpha, scale };
    return scale;
  }

  /** The weights the forward pass uses now: W ⊙ (E + α·Ē). */
  effectiveWeight(): Tensor {
    const w = Tensor.zeros(this.weight.shape);
    const st = this.state;
    if (st.structure === 'none' || this.keep === null) {
      w.data.set(this.weight.data);
      return w;
    }
    getBackend().mulInto(this.weight.data, this.scale(this.keep), w.data);
    return w;
  }

  /** The compressed N:M weights of a hard phase (throws while α > 0 or unstructured). */
  toSparse(): NMSparseTensor {
    if (this.pattern === null || !isHardNM(this.state)) {
      throw new SparsityConfigError(this.path || this.layerName, `no hard N:M pattern at step ${this.state.step} (phase ${this.state.phase}, α = ${this.state.alpha})`);
    }
    return NMSparseTensor.fromDense(this.weight, this.pattern.n, this.pattern.m, { mask: new Tensor(this.keep!, this.weight.shape) });
  }

  /**
   * The mask for checkpoints: `key` names the pattern in force, `keep` is the 0/1 mask as bytes
   * [out, in] (a U8 tensor in the checkpoint), null while the layer runs dense.
   */
  getMaskState(): { key: string; keep: Uint8Array | null } {
    return { key: this.maskKey, keep: this.keep ? Uint8Array.from(this.keep) : null };
  }

  /** Restores a mask saved by getMaskState (or, from older checkpoints, as a number array) at `step`. */
  setMaskState(s: { key: string; keep: ArrayLike<number> | null }, step: number): void {
    const name = this.path || this.layerName;
    if (s.keep && s.keep.length !== this.outFeatures * this.inFeatures) {
      throw new ShapeError(name, `saved mask has ${s.keep.length} entries, the weight [${this.outFeatures}, ${this.inFeatures}] has ${this.outFeatures * this.inFeatures}`);
    }
    this.state = this.recipe.at(step);
    this.maskKey = s.key;
    this.keep = s.keep ? Float32Array.from(s.keep) : null;
    this.pattern = null;
    if (this.keep && this.state.structure === 'nm' && this.state.n !== this.state.m) {
      this.pattern = NMSparseTensor.fromDense(this.weight, this.state.n, this.state.m, { mask: new Tensor(this.keep, this.weight.shape), name });
    }
  }
}

/**
 * Swaps the selected Linear layers (default: the FFN layers of every block) for SparseLinear
 * layers driven by `recipe`, keeping their weights, and returns the swapped layers' dotted
 * names. `layers` is 'ffn', 'attention', 'all' (every Linear), a list of layer names or a
 * predicate `(name, layer) => boolean`; a selection that matches nothing, names a layer the
 * model lacks, or reaches a layer that is already sparse is a SparsityConfigError. Drive the
 * layers with `model.setStep(step)`; `sparseLayers(model)` lists them.
 *
 * The manual route, for models built by hand: construct `new SparseLinear(linear, recipe, name)`
 * and register it in place of the Linear (`parent.replaceChild(key, layer)`), then call
 * `model.nameModules()`.
 */
export function sparsify(model: Module, recipe: Recipe, opts: { layers?: LayerSelection } = {}): string[] {
  if (model instanceof Linear || model instanceof SparseLinear) {
    throw new SparsityConfigError('sparsify', 'the model itself is a Linear layer; sparsify a Module that holds it, or build `new SparseLinear(linear, recipe)` directly');
  }
  const sites = replaceLinears(model, opts.layers ?? 'ffn', (site) => {
    if (!(site.layer instanceof Linear)) throw new SparsityConfigError(site.name, `is already sparse or not a dense Linear (${site.layer.constructor.name})`);
    return new SparseLinear(site.layer, recipe, site.name);
  });
  model.nameModules();
  return sites.map((s) => s.name);
}

/** The SparseLinear layers of a model, as [dotted name, layer], in model order. */
export function sparseLayers(model: Module): [string, SparseLinear][] {
  return model.namedModules().filter((e): e is [string, SparseLinear] => e[1] instanceof SparseLinear);
}
