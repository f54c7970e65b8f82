import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { DataError, Recipe, SparsityConfigError, WorkerError, getThreads, maxThreads, setThreads, threadCountProblem } from '../src/index.js';
import { BpeTokenizer } from '../src/text/index.js';

describe('BpeTokenizer.fromJSON refuses merges that are not pairs of strings', () => {
  const base = { format: 'nmgrad-bpe-v1' as const, alphabet: ['a', 'b', 'c'] };
  it('a number, a bare string, a triple or an empty token, naming the merge', () => {
    const bad: [unknown, string][] = [
      [[['a', 'b'], ['ab', 7]], 'merges[1] must be a pair of non-empty strings, got ["ab",7]'],
      [['ab'], 'merges[0] must be a pair of non-empty strings, got "ab"'], // would destructure into ('a', 'b')
      [[['a', 'b', 'c']], 'merges[0]'],
      [[['', 'b']], 'merges[0]'],
      [[null], 'merges[0] must be a pair of non-empty strings, got null'],
    ];
    for (const [merges, msg] of bad) {
      const j = { ...base, merges } as never;
      expect(() => BpeTokenizer.fromJSON(j, 'tok.json')).toThrow(DataError);
      expect(() => BpeTokenizer.fromJSON(j, 'tok.json')).toThrow(`tok.json: ${msg}`);
    }
    expect(() => BpeTokenizer.fromJSON({ ...base, alphabet: ['a', 5], merges: [] } as never, 'tok.json')).toThrow('tok.json: alphabet[1] must be a non-empty string, got 5');
  });

  it('a valid tokenizer still round-trips, through fromJSON and through parse; text that is not JSON is a DataError', () => {
    const tok = BpeTokenizer.train(['a man rides a horse', 'a woman rides a bike'], 10);
    const again = BpeTokenizer.parse(JSON.stringify(tok.toJSON()));
    expect(again.encode('a man rides a bike')).toEqual(tok.encode('a man rides a bike'));
    expect(() => BpeTokenizer.parse('{"format": "nmgrad-bpe-v1",', 'model (tokenizer)')).toThrow(/^model \(tokenizer\): not valid JSON/);
    expect(() => BpeTokenizer.parse('{', 'x')).toThrow(DataError);
  });
});

describe('Recipe.parse: N = M prunes nothing and dense takes no N:M, for every kind alike', () => {
  it('every sparse kind refuses N = M with the same message; N < M still parses', () => {
    for (const kind of ['fixed', 'ste', 'srste', 'pmd', 'ssd', 'gradual', 'unstructured']) {
      for (const m of [1, 4, 8]) {
        expect(() => Recipe.parse(`${kind}:${m}:${m}`, { steps: 100 }), `${kind}:${m}:${m}`).toThrow(SparsityConfigError);
        expect(() => Recipe.parse(`${kind}:${m}:${m}`, { steps: 100 })).toThrow(`recipe '${kind}:${m}:${m}': N:M = ${m}:${m} keeps every weight (N kept of every M), so '${kind}' would prune nothing; give N < M, or use 'dense'`);
      }
      const ok = Recipe.parse(`${kind}:1:8`, { steps: 100 });
      expect([ok.config.n, ok.config.m]).toEqual([1, 8]);
    }
  });

  it("'dense:N:M' is refused instead of dropping the N:M; 'dense' parses", () => {
    for (const text of ['dense:1:8', 'dense:2:4,steps=10', 'dense:8:8']) expect(() => Recipe.parse(text, { steps: 10 })).toThrow(`'dense' takes no N:M (it keeps every weight), got '${text.split(',')[0]}'; write 'dense'`);
    expect(Recipe.parse('dense', { steps: 10 }).at(5).alpha).toBe(1);
  });

  it("option names are own properties: 'constructor=3' is an unknown option, not Object's constructor", () => {
    expect(() => Recipe.parse('pmd:1:8,constructor=3', { steps: 10 })).toThrow(/unknown or invalid option 'constructor=3'/);
  });
});

describe('thread count: one cap for setThreads, NMGRAD_THREADS and --threads', () => {
  it('4 × the cores; more is a WorkerError naming the value and the cap', () => {
    const cap = 4 * availableParallelism();
    expect(maxThreads()).toBe(cap);
    expect(threadCountProblem(cap)).toBeNull();
    expect(threadCountProblem(cap + 1)).toBe(`must be an integer in [1, ${cap}] (4 × the ${availableParallelism()} cores: more threads only queue for the same cores)`);
    const before = getThreads();
    expect(() => setThreads(cap + 1)).toThrow(WorkerError);
    expect(() => setThreads(1000)).toThrow(`setThreads: thread count must be an integer in [1, ${cap}]`);
    expect(getThreads()).toBe(before); // nothing changed
  });
});
