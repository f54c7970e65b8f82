import fc from 'fast-check';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, Rng } from '../../src/index.js';
import { BpeTokenizer, pretokenize, BOS, EOS, PAD } from '../../src/text/bpe.js';
import { corpusBleu, corpusChrf, tokenize13a } from '../../src/text/bleu.js';
import { adjEnding, dativePlural, generateBuiltinCorpus, inflect } from '../../examples/transformer-translate/data/builtin.js';
import { NOUNS, ADJECTIVES } from '../../examples/transformer-translate/data/lexicon.js';
import { defaultDataDir, downloadFiles, readParallel } from '../../examples/transformer-translate/data/parallel.js';
import { makeBatches } from '../../src/train/batches.js';
import { RUNS } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('built-in corpus', () => {
  const corpus = generateBuiltinCorpus({ seed: 1 });

  it('is deterministic from the seed and has disjoint splits of the stated sizes', () => {
    expect(corpus.train.length).toBe(20000);
    expect(corpus.val.length).toBe(1000);
    expect(corpus.test.length).toBe(1000);
    const again = generateBuiltinCorpus({ seed: 1, train: 200, val: 10, test: 10 });
    expect(again.train.slice(0, 50)).toEqual(corpus.train.slice(0, 50));
    expect(generateBuiltinCorpus({ seed: 2, train: 50, val: 1, test: 1 }).train).not.toEqual(corpus.train.slice(0, 50));
    const trainEn = new Set(corpus.train.map((p) => p.en));
    for (const p of [...corpus.val, ...corpus.test]) expect(trainEn.has(p.en)).toBe(false);
    const valEn = new Set(corpus.val.map((p) => p.en));
    for (const p of corpus.test) expect(valEn.has(p.en)).toBe(false);
    for (const p of [...corpus.train, ...corpus.val, ...corpus.test]) {
      for (const s of [p.en, p.de]) {
        const n = s.split(/\s+/).length;
        expect(n).toBeGreaterThanOrEqual(4);
        expect(n).toBeLessThanOrEqual(25);
      }
    }
  });

  // Index German word forms back to the lexicon for the agreement checks.
  const genderOf = new Map<string, string>();
  const pluralForms = new Set<string>();
  for (const n of NOUNS) {
    genderOf.set(n.de, n.g);
    pluralForms.add(n.dePl);
    pluralForms.add(dativePlural(n.dePl));
  }
  const adjForms = new Set<string>();
  for (const [, stem] of ADJECTIVES) for (const e of ['e', 'en', 'er', 'es']) adjForms.add(inflect(stem, e));
  /** The noun heading the phrase that starts at token i (skipping adjectives). */
  function headNoun(tokens: string[], i: number): { noun: string; adjs: string[] } {
    const adjs: string[] = [];
    let j = i;
    while (j < tokens.length && adjForms.has(tokens[j]!) && !genderOf.has(tokens[j]!)) adjs.push(tokens[j++]!);
    return { noun: (tokens[j] ?? '').replace(/[.,]$/, ''), adjs };
  }
  const words = (s: string): string[] => s.split(/\s+/).map((w) => w.replace(/[.,]$/, ''));

  it('every "dem" / "einem" is followed by a dative masculine or neuter noun phrase (adjectives in -en)', () => {
    let checked = 0;
    for (const p of corpus.train.slice(0, 5000)) {
      const t = words(p.de);
      t.forEach((w, i) => {
        if (w !== 'dem' && w !== 'einem' && w !== 'Dem' && w !== 'Einem') return;
        const { noun, adjs } = headNoun(t, i + 1);
        expect(['m', 'n'], `${p.de}`).toContain(genderOf.get(noun));
        for (const a of adjs) expect(a.endsWith('en'), p.de).toBe(true);
        checked++;
      });
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('"einen" takes a masculine noun; "eine" a feminine one; subject-verb agreement in number', () => {
    for (const p of corpus.train.slice(0, 5000)) {
      const t = words(p.de);
      t.forEach((w, i) => {
        const lw = w.toLowerCase();
        if (lw === 'einen') expect(genderOf.get(headNoun(t, i + 1).noun), p.de).toBe('m');
        if (lw === 'eine') expect(genderOf.get(headNoun(t, i + 1).noun), p.de).toBe('f');
        if (lw === 'ein') expect(['m', 'n'], p.de).toContain(genderOf.get(headNoun(t, i + 1).noun));
      });
      // A sentence that starts with a number word has a plural subject: "are" / a plural verb.
      if (/^(Two|Three|Four|Five|Several|Many) /.test(p.en) && !p.en.includes(',')) {
        const { noun } = headNoun(t, 1);
        expect(pluralForms.has(noun), p.de).toBe(true);
        expect(p.en.split(' ').includes('are'), p.en).toBe(true);
      }
    }
  });

  it('subordinate clauses put the verb last; relative pronouns agree in gender', () => {
    let subs = 0;
    for (const p of corpus.train.slice(0, 5000)) {
      const m = /, (weil|obwohl|während) ([^.]*)\.$/.exec(p.de);
      if (m) {
        subs++;
        const last = m[2]!.split(' ').pop()!;
        expect(/(t|en|eln|ern)$/.test(last), p.de).toBe(true);
      }
      const rel = /^(?:Der|Die|Das|Ein|Eine) (?:\S+ )*?(\S+), (der|die|das) /.exec(p.de);
      if (rel && !/^(Die) /.test(p.de)) {
        const g = genderOf.get(rel[1]!);
        if (g) expect(rel[2], p.de).toBe({ m: 'der', f: 'die', n: 'das' }[g]);
      }
    }
    expect(subs).toBeGreaterThan(200);
    expect(adjEnding('a', 'nom', 'm', false)).toBe('er');
    expect(adjEnding('the', 'acc', 'm', false)).toBe('en');
    expect(adjEnding('none', 'nom', 'f', true)).toBe('e');
    expect(dativePlural('Hunde')).toBe('Hunden');
    expect(dativePlural('Autos')).toBe('Autos');
  });
});

describe('parallel text loader', () => {
  it('reads aligned files, skips empty pairs with a count, filters long ones', () => {
    writeFileSync(join(tmp, 'train.en'), 'A dog runs.\n\nA very long sentence with many many words here.\nTwo cats.\n');
    writeFileSync(join(tmp, 'train.de'), 'Ein Hund rennt.\nLeer.\nEin sehr langer Satz mit vielen vielen Wörtern hier.\nZwei Katzen.\n');
    const { pairs, summary } = readParallel(tmp, 'train', 'en', 'de', { maxLen: 6 });
    expect(pairs).toEqual([{ en: 'A dog runs.', de: 'Ein Hund rennt.' }, { en: 'Two cats.', de: 'Zwei Katzen.' }]);
    expect(summary).toMatchObject({ lines: 4, kept: 2, skippedEmpty: 1, filteredLong: 1 });
  });

  it('names the file and line of bad input', () => {
    writeFileSync(join(tmp, 'bad.en'), 'one\ntwo\n');
    writeFileSync(join(tmp, 'bad.de'), 'eins\n');
    expect(() => readParallel(tmp, 'bad', 'en', 'de')).toThrow(/line counts differ: 2 vs 1/);
    writeFileSync(join(tmp, 'utf.en'), 'ok\nok\n');
    writeFileSync(join(tmp, 'utf.de'), Buffer.concat([Buffer.from('gut\n'), Buffer.from([0x66, 0xff, 0x0a])]));
    expect(() => readParallel(tmp, 'utf', 'en', 'de')).toThrow(DataError);
    expect(() => readParallel(tmp, 'utf', 'en', 'de')).toThrow(/utf\.de:2: invalid UTF-8/);
    expect(() => readParallel(join(tmp, 'nope'), 'train', 'en', 'de')).toThrow(/data directory not found/);
    expect(() => readParallel(tmp, 'missing', 'en', 'de')).toThrow(/missing\.en: file not found/);
  });

  it('finds the shared Multi30k folder by default when it exists', () => {
    const d = defaultDataDir();
    if (existsSync('../shared/data/multi30k/train.en')) expect(d).not.toBeNull();
    if (d) expect(readParallel(d, 'val', 'en', 'de').pairs.length).toBe(1014);
  });
});

describe('download (against a local server)', () => {
  let server: Server;
  let base = '';
  const good = 'Ein Hund.\nZwei Katzen.\n';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/good.gz') res.end(gzipSync(Buffer.from(good)));
      else if (req.url === '/corrupt.gz') res.end(Buffer.from('this is not gzip'));
      else if (req.url === '/tampered.gz') res.end(gzipSync(Buffer.from('Ein Hund.\nDrei Katzen.\n')));
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const sha = createHash('sha256').update(good).digest('hex');

  it('downloads, gunzips, verifies and writes', async () => {
    const dir = join(tmp, 'dl');
    await downloadFiles(dir, [{ name: 'val.de', url: `${base}/good.gz`, sha256: sha }]);
    expect(readFileSync(join(dir, 'val.de'), 'utf8')).toBe(good);
  });

  it('rejects corrupted or tampered downloads and writes nothing', async () => {
    const dir = join(tmp, 'dl2');
    await expect(downloadFiles(dir, [{ name: 'x', url: `${base}/corrupt.gz`, sha256: sha }])).rejects.toThrow(/not a valid gzip/);
    await expect(downloadFiles(dir, [{ name: 'x', url: `${base}/tampered.gz`, sha256: sha }])).rejects.toThrow(/sha256 mismatch/);
    await expect(downloadFiles(dir, [{ name: 'x', url: `${base}/missing.gz`, sha256: sha }])).rejects.toThrow(/HTTP 404/);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });
});

describe('BPE tokenizer', () => {
  const corpus = generateBuiltinCorpus({ seed: 3, train: 3000, val: 1, test: 1 });
  const texts = corpus.train.flatMap((p) => [p.en, p.de]);
  const bpe = BpeTokenizer.train(texts, 500);

  it('decode(encode(s)) == s for arbitrary Unicode strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string()), (s) => {
        expect(bpe.decode(bpe.encode(s))).toBe(s);
      }),
      { numRuns: RUNS * 20 },
    );
    for (const s of ['Ein kleiner Hund rennt auf dem grünen Gras.', '  two  spaces\tand tab\n', '„Zitat“ – ok?', '😀 emoji', '\ud800 lone']) {
      expect(bpe.decode(bpe.encode(s))).toBe(s);
    }
    expect(pretokenize('A dog, two  cats.').join('')).toBe('A dog, two  cats.');
  });

  it('arbitrary token id sequences decode: invalid UTF-8 bytes become U+FFFD exactly as the WHATWG decoder does', () => {
    const byteToken = (b: number): number => 4 + b; // ids 4..259 are the <0xNN> byte tokens
    const oracle = new TextDecoder('utf-8'); // replacement mode, maximal-subpart U+FFFD
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bpe.size - 1 }), { maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }), (ids, bytes) => {
        expect(typeof bpe.decode(ids)).toBe('string');
        const out = bpe.decode(bytes.map(byteToken));
        // nmgrad additionally accepts ED A0..BF (surrogate code points, its own WTF-8 form of lone surrogates).
        if (!bytes.some((b, i) => b === 0xed && (bytes[i + 1] ?? 0) >= 0xa0)) expect(out).toBe(oracle.decode(Uint8Array.from(bytes)));
      }),
      { numRuns: RUNS * 20 },
    );
    // Cases from the WHATWG/Unicode "maximal subpart" examples, checked against TextDecoder.
    for (const bytes of [[0xff], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xf0, 0x9f, 0x98], [0xf4, 0x90, 0x80, 0x80], [0x61, 0xe2, 0x82, 0x62], [0xc3]]) {
      expect(bpe.decode(bytes.map(byteToken))).toBe(oracle.decode(Uint8Array.from(bytes)));
    }
    expect(bpe.decode([0xe2, 0x82, 0xac].map(byteToken))).toBe('€');
  });

  it('compresses in-domain text, is deterministic, and round-trips through JSON', () => {
    const s = corpus.train[0]!.de;
    expect(bpe.encode(s).length).toBeLessThan(s.length / 2);
    expect(BpeTokenizer.train(texts, 500).merges).toEqual(bpe.merges);
    const back = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(bpe.toJSON())));
    expect(back.encode(s)).toEqual(bpe.encode(s));
    expect(bpe.size).toBe(4 + 256 + bpe.alphabet.length + bpe.merges.length);
    expect(() => bpe.decode([bpe.size])).toThrow(/outside the vocabulary/);
    expect(() => BpeTokenizer.fromJSON({} as never)).toThrow(DataError);
  });
});

describe('BLEU and chrF (sacreBLEU-compatible)', () => {
  it("reproduces sacreBLEU's two-reference example", () => {
    const hyps = ['The dog bit the man.', "It wasn't surprising.", 'The man had just bitten him.'];
    const refs = [['The dog bit the man.', 'It was not unexpected.', 'The man bit him first.'], ['The dog had bit the man.', 'No one was surprised.', 'The man had bitten the dog.']];
    expect(corpusBleu(hyps, refs).score.toFixed(6)).toBe('48.530827');
    expect(corpusBleu(hyps, refs, { tokenize: 'none' }).score.toFixed(7)).toBe('49.1919566');
    expect(tokenize13a('Hello, world! (x-1) 3.5 a.b')).toEqual(['Hello', ',', 'world', '!', '(', 'x-1', ')', '3.5', 'a', '.', 'b']);
  });

  it('reproduces chrF2 reference values', () => {
    expect(corpusChrf(['The relationship between Obama and Netanyahu is not exactly friendly.'], ['The ties between Obama and Netanyahu are not particularly friendly.'])).toBeCloseTo(61.576379378113785, 9);
  });

  const dir = defaultDataDir();
  it.skipIf(dir === null)('reproduces every val-split check value of the Multi30k README', () => {
    const L = (p: string): string[] => readFileSync(join(dir!, p), 'utf8').split('\n').slice(0, -1);
    const ref = L('val.de');
    const rows: [string, boolean, string, number[], number[], number, number][] = [
      ['val.de', false, '100.0000', [12825, 11811, 10797, 9783], [12825, 11811, 10797, 9783], 12825, 12825],
      ['val.en', false, '0.4900', [1405, 33, 18, 13], [13289, 12275, 11261, 10247], 13289, 12825],
      ['tok/val.lc.norm.tok.de', false, '25.6648', [8325, 4564, 2125, 865], [12842, 11828, 10814, 9800], 12842, 12825],
      ['tok/val.lc.norm.tok.de', true, '99.6717', [12817, 11795, 10774, 9754], [12842, 11828, 10814, 9800], 12842, 12825],
    ];
    for (const [file, lc, score, correct, total, hyp, refLen] of rows) {
      const r = corpusBleu(L(file), [ref], { lowercase: lc });
      expect([file, r.score.toFixed(4), r.correct, r.total, r.hypLen, r.refLen]).toEqual([file, score, correct, total, hyp, refLen]);
    }
  });
});

describe('batching', () => {
  const rng = new Rng(1);
  const examples = Array.from({ length: 300 }, () => ({ src: Array.from({ length: 1 + rng.int(20) }, () => 5 + rng.int(50)), tgt: Array.from({ length: 1 + rng.int(20) }, () => 5 + rng.int(50)) }));

  it('respects the token budget, covers every example once, pads and marks bos/eos', () => {
    const batches = makeBatches(examples, 200, new Rng(7));
    const seen = batches.flatMap((b) => b.index).sort((a, b) => a - b);
    expect(seen).toEqual(examples.map((_e, i) => i));
    for (const b of batches) {
      expect(b.size * Math.max(b.srcShape[1], b.tgtShape[1])).toBeLessThanOrEqual(200);
      b.index.forEach((ex, r) => {
        const e = examples[ex]!;
        const T = b.tgtShape[1];
        expect(b.tgtIn[r * T]).toBe(BOS);
        expect(Array.from(b.tgtOut.subarray(r * T, r * T + e.tgt.length))).toEqual(e.tgt);
        expect(b.tgtOut[r * T + e.tgt.length]).toBe(EOS);
        for (let j = e.src.length; j < b.srcShape[1]; j++) expect(b.src[r * b.srcShape[1] + j]).toBe(PAD);
      });
    }
  });

  it('gives the same order for the same seed and another for another seed', () => {
    const a = makeBatches(examples, 200, new Rng(7)).map((b) => b.index);
    const b = makeBatches(examples, 200, new Rng(7)).map((x) => x.index);
    const c = makeBatches(examples, 200, new Rng(8)).map((x) => x.index);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(() => makeBatches(examples, 5, null)).toThrow(/more than the batch budget/);
  });
});
