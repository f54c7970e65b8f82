/**
 * Module / Parameter tree. Parameters and children are registered by name, so every parameter
 * has a stable dotted name (`encoder.layers.0.ffn.fc1.weight`) used by optimizers, checkpoints
 * and the sparsity hooks.
 */
import { DataError, ShapeError, fmtShape } from '../errors.js';
import { Tensor } from '../autograd/tensor.js';

/** A trainable tensor (requiresGrad = true). */
export function Parameter(t: Tensor): Tensor {
  t.requiresGrad = true;
  t.isParameter = true;
  return t;
}

/**
 * The base of every layer and model: a tree of named parameters and child modules. It gives the
 * dotted names optimizers, checkpoints and `sparsify` use (`namedParameters`, `namedModules`),
 * train / eval mode, `setStep` for step-driven layers (sparsity recipes) and state dicts.
 * Subclasses register parameters with `param` and children with `module`, and add a `forward`.
 */
export class Module {
  training = true;
  /** Dotted name inside its model (set by nameModules); tags FLOP reports and errors. */
  path = '';
  private readonly paramMap = new Map<string, Tensor>();
  private readonly childMap = new Map<string, Module>();

  /** Registers (or replaces) a parameter under `name`. */
  protected param(name: string, t: Tensor): Tensor {
    this.paramMap.set(name, Parameter(t));
    t.name ??= name;
    return t;
  }

  /** Registers (or replaces) a child module under `name`. */
  protected module<M extends Module>(name: string, m: M): M {
    this.childMap.set(name, m);
    return m;
  }

  /** Replaces the child registered under `name` (used by sparsify hooks). */
  replaceChild(name: string, m: Module): void {
    if (!this.childMap.has(name)) throw new ShapeError('Module.replaceChild', `no child named '${name}' (children: ${[...this.childMap.keys()].join(', ')})`);
    this.childMap.set(name, m);
    (this as unknown as Record<string, unknown>)[name] = m;
  }

  children(): [string, Module][] {
    return [...this.childMap.entries()];
  }

  /** All (dotted name, module) pairs below and including this one. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.childMap) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [mName, m] of this.namedModules(prefix)) {
      for (const [pName, p] of m.paramMap) {
        if (seen.has(p)) continue; // tied weights appear once, under their first name
        seen.add(p);
        out.push([mName ? `${mName}.${pName}` : pName, p]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  /** Gives every module below its dotted name (`path`). */
  nameModules(prefix = ''): this {
    for (const [n, m] of this.namedModules(prefix)) m.path = n;
    return this;
  }

  /** Advances step-driven state (sparsity recipes) of every module to `step`. */
  setStep(step: number): void {
    for (const [, m] of this.namedModules()) m.onStep(step);
  }

  /** Hook for step-driven modules; default: nothing. */
  protected onStep(_step: number): void {}

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** name → tensor (shared storage). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies tensors into the parameters. Every name and shape is checked first; any missing,
   * unexpected or misshaped tensor throws a DataError listing them all, and nothing is copied.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, where = 'loadStateDict'): void {
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    this.checkStateDict(entries, where);
    for (const [k, p] of this.stateDict()) p.data.set(entries.get(k)!.data);
  }

  /** Throws the DataError loadStateDict would throw, without copying anything. */
  checkStateDict(entries: Map<string, Tensor>, where = 'loadStateDict'): void {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !entries.has(k));
    const extra = [...entries.keys()].filter((k) => !own.has(k));
    const misshaped = [...own.entries()]
      .filter(([k, p]) => entries.has(k) && !sameDims(entries.get(k)!.shape, p.shape))
      .map(([k, p]) => `${k} (expected ${fmtShape(p.shape)}, got ${fmtShape(entries.get(k)!.shape)})`);
    if (missing.length || extra.length || misshaped.length) {
      const parts = [];
      if (missing.length) parts.push(`missing: ${missing.join(', ')}`);
      if (extra.length) parts.push(`unexpected: ${extra.join(', ')}`);
      if (misshaped.length) parts.push(`misshaped: ${misshaped.join(', ')}`);
      throw new DataError(where, parts.join('; '));
    }
  }
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** An indexed list of child modules, named '0', '1', ... */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];
  push(m: M): M {
    this.module(String(this.items.length), m);
    this.items.push(m);
    return m;
  }
  override replaceChild(name: string, m: Module): void {
    super.replaceChild(name, m);
    this.items[Number(name)] = m as M;
  }
}
