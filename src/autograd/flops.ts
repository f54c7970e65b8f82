/**
 * FLOP accounting built into the ops. Every op that does arithmetic reports what it executed
 * and its dense equivalent to the active counter, tagged by pass, layer and category. Ops
 * capture the scope at forward time so their backward FLOPs land on the same layer.
 */
export type Pass = 'forward' | 'backward-input' | 'backward-weight';
/**
 * What kind of op did the work: a sparse layer's products, other dense products, attention scores and context, or elementwise math.
 */
export type FlopCategory = 'sparse' | 'matmul' | 'attention' | 'elementwise';

/**
 * The context an op reports its FLOPs under: the layer name and whether it runs inside attention or a sparse layer.
 */
export interface FlopScope {
  layer: string;
  /** Set inside attention blocks, so their score/context products count as attention. */
  attention: boolean;
  /** Set inside sparse layers. */
  sparse: boolean;
}

/** A FLOP sum: what the ops performed (`flops`) and what the same ops would cost dense (`dense`). */
export interface FlopTotals {
  flops: number;
  dense: number;
}

type Key = `${Pass}|${FlopCategory}|${string}`;

/** Accumulates FLOPs; install with `countFlops(counter, fn)` or `counter.activate()`. */
export class FlopCounter {
  readonly table = new Map<Key, FlopTotals>();
  steps = 0;

  add(pass: Pass, category: FlopCategory, layer: string, flops: number, dense: number): void {
    const key: Key = `${pass}|${category}|${layer}`;
    const t = this.table.get(key);
    if (t) {
      t.flops += flops;
      t.dense += dense;
    } else this.table.set(key, { flops, dense });
  }

  /** Sums matching records. */
  total(filter: { pass?: Pass; category?: FlopCategory; layer?: string } = {}): FlopTotals {
    const out = { flops: 0, dense: 0 };
    for (const [key, t] of this.table) {
      const [pass, category, layer] = key.split('|') as [Pass, FlopCategory, string];
      if (filter.pass && filter.pass !== pass) continue;
      if (filter.category && filter.category !== category) continue;
      if (filter.layer !== undefined && filter.layer !== layer) continue;
      out.flops += t.flops;
      out.dense += t.dense;
    }
    return out;
  }

  /** Per-layer, per-pass breakdown. */
  byLayer(): Record<string, Record<Pass, FlopTotals>> {
    const out: Record<string, Record<Pass, FlopTotals>> = {};
    for (const [key, t] of this.table) {
      const [pass, , layer] = key.split('|') as [Pass, FlopCategory, string];
      const row = (out[layer] ??= { forward: { flops: 0, dense: 0 }, 'backward-input': { flops: 0, dense: 0 }, 'backward-weight': { flops: 0, dense: 0 } });
      row[pass].flops += t.flops;
      row[pass].dense += t.dense;
    }
    return out;
  }

  reset(): void {
    this.table.clear();
    this.steps = 0;
  }

  activate(): () => void {
    stack.push(this);
    return () => {
      const i = stack.lastIndexOf(this);
      if (i >= 0) stack.splice(i, 1);
    };
  }

  /** Adds the steps and records of a `toJSON()` snapshot (a resumed run's counter); null adds nothing. */
  addJSON(saved: ReturnType<FlopCounter['toJSON']> | null): this {
    if (!saved) return this;
    this.steps += saved.steps;
    for (const r of saved.records) this.add(r.pass, r.category, r.layer, r.flops, r.dense);
    return this;
  }

  toJSON(): { steps: number; records: { pass: Pass; category: FlopCategory; layer: string; flops: number; dense: number }[] } {
    return {
      steps: this.steps,
      records: [...this.table].map(([key, t]) => {
        const [pass, category, layer] = key.split('|') as [Pass, FlopCategory, string];
        return { pass, category, layer, ...t };
      }),
    };
  }
}

const stack: FlopCounter[] = [];
let scope: FlopScope = { layer: '', attention: false, sparse: false };

/** Runs fn with `counter` receiving every FLOP report (nested counters all receive them). */
export function countFlops<T>(counter: FlopCounter, fn: () => T): T {
  const release = counter.activate();
  try {
    return fn();
  } finally {
    release();
  }
}

/**
 * The FLOP scope in force now (set by `withScope`); ops capture it so their backward lands on the same layer.
 */
export function currentScope(): FlopScope {
  return scope;
}

/** Runs fn with the op scope extended (layer name, attention / sparse flags). */
export function withScope<T>(patch: Partial<FlopScope>, fn: () => T): T {
  const prev = scope;
  scope = { ...prev, ...patch };
  try {
    return fn();
  } finally {
    scope = prev;
  }
}

/**
 * Reports FLOPs for an op run under `s`. `kind` says whether the op is a Linear-type product,
 * another matrix product, or elementwise work; the scope decides the category.
 */
export function report(s: FlopScope, pass: Pass, kind: 'linear' | 'product' | 'elementwise', flops: number, dense = flops): void {
  if (stack.length === 0) return;
  const category: FlopCategory = kind === 'linear' ? (s.sparse ? 'sparse' : 'matmul') : s.attention ? 'attention' : kind === 'product' ? 'matmul' : 'elementwise';
  for (const c of stack) c.add(pass, category, s.layer || '(model)', flops, dense);
}
