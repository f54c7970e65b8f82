/**
 * The built-in corpus: English image-caption sentences and their grammatical German
 * translations, generated from a seed. German grammar covered: articles and adjective endings
 * by gender / case / number (strong, weak, mixed), subject–verb agreement, verb-second order
 * after a fronted phrase, dative and accusative prepositions (with contractions im/am/beim/ins),
 * coordination, relative clauses and subordinate clauses with verb-final order.
 */
import { Rng } from 'nmgrad';
import { ACCUSATIVE_PREPS, ADJECTIVES, CONJUNCTIONS, DATIVE_PREPS, INTRANSITIVE, NOUNS, NUMBERS, TRANSITIVE, type Gender, type Noun } from './lexicon.js';

export type Case = 'nom' | 'acc' | 'dat';
type Det = 'a' | 'the' | 'num' | 'none';

export interface Pair {
  en: string;
  de: string;
}

/** A noun phrase in both languages, with what agreement needs. */
interface NP {
  noun: Noun;
  en: string;
  de: (c: Case) => string;
  plural: boolean;
  g: Gender;
}

const DEF: Record<Case, Record<Gender | 'pl', string>> = {
  nom: { m: 'der', f: 'die', n: 'das', pl: 'die' },
  acc: { m: 'den', f: 'die', n: 'das', pl: 'die' },
  dat: { m: 'dem', f: 'der', n: 'dem', pl: 'den' },
};
const INDEF: Record<Case, Record<Gender, string>> = {
  nom: { m: 'ein', f: 'eine', n: 'ein' },
  acc: { m: 'einen', f: 'eine', n: 'ein' },
  dat: { m: 'einem', f: 'einer', n: 'einem' },
};

/** Adjective ending after a definite article (weak), an indefinite one (mixed) or none (strong, plural only here). */
export function adjEnding(det: Det, c: Case, g: Gender, plural: boolean): string {
  if (plural) return det === 'the' || c === 'dat' ? 'en' : 'e';
  if (c === 'dat') return 'en';
  if (det === 'the') return c === 'acc' && g === 'm' ? 'en' : 'e';
  // mixed (ein-words)
  if (c === 'nom') return g === 'm' ? 'er' : g === 'f' ? 'e' : 'es';
  return g === 'm' ? 'en' : g === 'f' ? 'e' : 'es';
}

/** Dative plural nouns take -n unless they end in -n or -s. */
export function dativePlural(noun: string): string {
  return /[ns]$/.test(noun) ? noun : `${noun}n`;
}

function article(en: string): string {
  return /^[aeiou]/i.test(en) ? 'an' : 'a';
}

class Generator {
  constructor(private readonly rng: Rng) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(xs.length)]!;
  }

  private chance(p: number): boolean {
    return this.rng.uniform() < p;
  }

  np(kind: Noun['kind'], allowPlural: boolean, det?: Det): NP {
    const noun = this.pick(NOUNS.filter((n) => n.kind === kind));
    const plural = allowPlural && this.chance(0.3);
    const d: Det = det ?? (plural ? (this.chance(0.6) ? 'num' : 'the') : this.chance(0.5) ? 'a' : 'the');
    const adjs = this.chance(0.55) ? [this.pick(ADJECTIVES)] : [];
    if (adjs.length && this.chance(0.15)) {
      const second = this.pick(ADJECTIVES);
      if (second[0] !== adjs[0]![0]) adjs.push(second);
    }
    const num = d === 'num' ? this.pick(NUMBERS) : null;
    const enNoun = plural ? noun.enPl : noun.en;
    const enAdj = adjs.map((a) => a[0]).join(' ');
    const enHead = [enAdj, enNoun].filter(Boolean).join(' ');
    const en = d === 'a' ? `${article(enHead)} ${enHead}` : d === 'the' ? `the ${enHead}` : d === 'num' ? `${num![0]} ${enHead}` : enHead;
    const de = (c: Case): string => {
      const g = noun.g;
      const adjDe = adjs.map((a) => inflect(a[1], adjEnding(d === 'num' ? 'none' : d, c, g, plural))).join(' ');
      const nounDe = plural ? (c === 'dat' ? dativePlural(noun.dePl) : noun.dePl) : noun.de;
      const detDe = d === 'a' ? INDEF[c][g] : d === 'the' ? DEF[c][plural ? 'pl' : g] : d === 'num' ? num![1] : '';
      return [detDe, adjDe, nounDe].filter(Boolean).join(' ');
    };
    return { en, de, plural, g: noun.g, noun };
  }

  /** A prepositional phrase: [en, de]. */
  pp(): [string, string] {
    const dative = this.chance(0.75);
    const [pe, pd] = dative ? this.pick(DATIVE_PREPS) : this.pick(ACCUSATIVE_PREPS);
    const obj = this.np('place', false, this.chance(0.7) ? 'the' : 'a');
    let de = `${pd} ${obj.de(dative ? 'dat' : 'acc')}`;
    // Contractions of preposition + definite article, as German writes them.
    de = de.replace(/^in dem /, 'im ').replace(/^an dem /, 'am ').replace(/^bei dem /, 'beim ').replace(/^in das /, 'ins ');
    return [`${pe} ${obj.en}`, de];
  }

  /** A verb phrase for a subject: English (after "is/are"), German finite verb and the rest. */
  vp(plural: boolean): { en: string; verb: string; rest: string[] } {
    if (this.chance(0.5)) {
      const [en, sg, pl] = this.pick(INTRANSITIVE);
      const rest: string[] = [];
      let enRest = '';
      if (this.chance(0.7)) {
        const [pe, pd] = this.pp();
        enRest = ` ${pe}`;
        rest.push(pd);
      }
      return { en: `${en}${enRest}`, verb: plural ? pl : sg, rest };
    }
    const [en, sg, pl] = this.pick(TRANSITIVE);
    const obj = this.np('thing', true);
    const rest = [obj.de('acc')];
    let enRest = ` ${obj.en}`;
    if (this.chance(0.35)) {
      const [pe, pd] = this.pp();
      enRest += ` ${pe}`;
      rest.push(pd);
    }
    return { en: `${en}${enRest}`, verb: plural ? pl : sg, rest };
  }

  /** A full clause; `order` picks main (verb second) or subordinate (verb last) German order. */
  clause(order: 'main' | 'sub'): { en: string; de: string } {
    const subj = this.np('agent', true);
    const v = this.vp(subj.plural);
    const be = subj.plural ? 'are' : 'is';
    const en = `${subj.en} ${be} ${v.en}`;
    const de = order === 'main' ? [subj.de('nom'), v.verb, ...v.rest].join(' ') : [subj.de('nom'), ...v.rest, v.verb].join(' ');
    return { en, de };
  }

  sentence(): Pair {
    const r = this.rng.uniform();
    let en: string;
    let de: string;
    if (r < 0.4) {
      ({ en, de } = this.clause('main'));
    } else if (r < 0.55) {
      // Fronted place phrase: German inverts to verb-second.
      const [pe, pd] = this.pp();
      const subj = this.np('agent', true);
      const [ven, sg, pl] = this.pick(INTRANSITIVE);
      en = `${pe}, ${subj.en} ${subj.plural ? 'are' : 'is'} ${ven}`;
      de = `${pd} ${subj.plural ? pl : sg} ${subj.de('nom')}`;
    } else if (r < 0.7) {
      const a = this.clause('main');
      const b = this.clause('main');
      en = `${a.en} and ${b.en}`;
      de = `${a.de} und ${b.de}`;
    } else if (r < 0.85) {
      // Relative clause on the subject, verb-final inside the commas.
      const subj = this.np('agent', true);
      const inner = this.vp(subj.plural);
      const outer = this.vp(subj.plural);
      const rel = subj.plural ? 'die' : DEF.nom[subj.g];
      const be = subj.plural ? 'are' : 'is';
      const who = PEOPLE.has(subj.noun.en) ? 'who' : 'that';
      en = `${subj.en} ${who} ${be} ${inner.en} ${be} ${outer.en}`;
      de = `${subj.de('nom')}, ${rel} ${[...inner.rest, inner.verb].join(' ')}, ${[outer.verb, ...outer.rest].join(' ')}`;
    } else {
      const a = this.clause('main');
      const b = this.clause('sub');
      const [ce, cd] = this.pick(CONJUNCTIONS);
      en = `${a.en} ${ce} ${b.en}`;
      de = `${a.de}, ${cd} ${b.de}`;
    }
    return { en: `${capitalize(en)}.`, de: `${capitalize(de)}.` };
  }
}

const PEOPLE = new Set(['man', 'woman', 'child', 'boy', 'girl', 'worker', 'teacher', 'player', 'baby', 'musician', 'student', 'cook']);

/** Stem + ending, without doubling an e (müde + e → müde). */
export function inflect(stem: string, ending: string): string {
  return stem.endsWith('e') && ending.startsWith('e') ? stem + ending.slice(1) : stem + ending;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function tokenCount(s: string): number {
  return s.trim().split(/\s+/).length;
}

export interface BuiltinCorpus {
  train: Pair[];
  val: Pair[];
  test: Pair[];
}

/**
 * Generates unique sentence pairs (4–25 tokens on both sides) from `seed` and splits them into
 * train / val / test with no English sentence in two splits.
 */
export function generateBuiltinCorpus(opts: { seed?: number; train?: number; val?: number; test?: number } = {}): BuiltinCorpus {
  const sizes = { train: opts.train ?? 20000, val: opts.val ?? 1000, test: opts.test ?? 1000 };
  const total = sizes.train + sizes.val + sizes.test;
  const gen = new Generator(new Rng(opts.seed ?? 1));
  const seen = new Set<string>();
  const pairs: Pair[] = [];
  let attempts = 0;
  while (pairs.length < total) {
    if (++attempts > total * 50) throw new Error(`builtin corpus: could only generate ${pairs.length} unique pairs`);
    const p = gen.sentence();
    const n = tokenCount(p.en);
    const m = tokenCount(p.de);
    if (n < 4 || n > 25 || m < 4 || m > 25 || seen.has(p.en)) continue;
    seen.add(p.en);
    pairs.push(p);
  }
  return { train: pairs.slice(0, sizes.train), val: pairs.slice(sizes.train, sizes.train + sizes.val), test: pairs.slice(sizes.train + sizes.val) };
}
