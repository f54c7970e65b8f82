/**
 * Hardening of the translate CLI, part 3 (hangs, pipes, exit codes, silently wrong output):
 * each case runs the built CLI in a temp folder, the way a user would.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../../src/index.js';
import { corpusBleu } from '../../src/text/index.js';
import { generateBuiltinCorpus } from '../../examples/transformer-translate/data/builtin.js';
import { BpeTokenizer } from '../../src/text/bpe.js';
import { buildTranslationRun, loadTranslator, saveTranslationRun, type TranslationConfig } from '../../src/index.js';
import { translateAll } from '../../examples/transformer-translate/translate.js';
import { outputPathProblem } from '../../src/index.js';
import { CLI_PATH as cliPath, TINY as S, runCli, writeDataFolder, type CliResult } from './cli-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-cli-hardening-3-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const data = join(tmp, 'data');
const run = join(tmp, 'run');
const exported = join(tmp, 'model.safetensors');
const corpus = generateBuiltinCorpus({ seed: 7, train: 600, val: 3, test: 3 });
const sentences = generateBuiltinCorpus({ seed: 8, train: 400, val: 1, test: 1 }).train.map((p) => p.en);

/** Runs the CLI in the temp folder; a call that outlives `timeoutMs` (default 60 s) is killed, so a hang fails the test. */
const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}): CliResult => runCli(args, { timeoutMs: 60_000, cwd: tmp, ...opts });

const RAW_STACK = /\n\s+at |SyntaxError|TypeError|RangeError|Error: E[A-Z]+/;

beforeAll(() => {
  writeDataFolder(data, corpus);
  const t = cli(['train', ...S, '--data', data, '--out', run, '--steps', '30']);
  expect(t.stderr).toBe('');
  expect(t.status).toBe(0);
  const e = cli(['export', '--run', run, '--out', exported, '--json']);
  expect(e.status).toBe(0);
});

describe('hangs: output paths in kernel pseudo-filesystems are refused before any mkdir', () => {
  it('train, export and average --out, download --dir below /proc or /sys: exit 2 at once, naming the path', () => {
    const cases: [string[], string][] = [
      [['train', ...S, '--data', data, '--steps', '1', '--out', '/proc/nmgrad-run'], '/proc/nmgrad-run'],
      [['export', '--run', run, '--out', '/proc/self/model.safetensors'], '/proc/'],
      [['average', '--run', run, '--out', '/sys/nmgrad-avg'], '/sys/nmgrad-avg'],
      [['download', '--dir', '/proc/1/nmgrad-data'], '/proc/1/nmgrad-data'],
    ];
    for (const [args, shown] of cases) {
      const r = cli(args, { timeoutMs: 20_000 }); // Node 20's mkdirSync below /proc spins forever
      expect(r.signal, args.join(' ')).toBeNull();
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`resolves to ${shown}`);
      expect(r.stderr).toMatch(/inside \/(proc|sys) \(a kernel pseudo-filesystem, not a place for output\)/);
      expect(r.stderr).not.toMatch(RAW_STACK);
    }
  });

  it('the check follows symbolic links: a link into /proc is refused, /dev/shm and a plain folder are not', () => {
    const link = join(tmp, 'to-proc');
    symlinkSync('/proc/self', link);
    expect(outputPathProblem(join(link, 'out'))).toMatch(/^resolves to \/proc\/\d+\/out, inside \/proc/);
    expect(outputPathProblem('/dev/nmgrad-x')).toMatch(/inside \/dev/);
    expect(outputPathProblem(join(tmp, 'not', 'yet', 'there'))).toBeNull();
    if (existsSync('/dev/shm')) expect(outputPathProblem('/dev/shm/nmgrad-x')).toBeNull();
  });

  it('export --out below a dangling symbolic link is a typed error naming the link, not a raw EEXIST', () => {
    const dangling = join(tmp, 'dangling');
    symlinkSync(join(tmp, 'nowhere', 'at-all'), dangling);
    for (const out of [join(dangling, 'model.safetensors'), join(dangling, 'sub', 'model.safetensors')]) {
      const r = cli(['export', '--run', run, '--out', out]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`lies below a symbolic link that leads nowhere (${dangling} → ${join(tmp, 'nowhere', 'at-all')})`);
      expect(r.stderr).not.toMatch(RAW_STACK);
    }
    expect(existsSync(join(tmp, 'nowhere'))).toBe(false);
  });
});

describe('hangs: one huge input line, and thread counts', () => {
  it('a 100 MB line with no newline is refused within seconds, naming the input and line', () => {
    const path = join(tmp, 'one-line.en');
    writeFileSync(path, 'a man rides a horse . '.repeat(100e6 / 22));
    const t0 = performance.now();
    const r = cli(['translate', '--run', run, '--input', path, '--threads', '1'], { timeoutMs: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^translate: ${path}:1: line is longer than 1048576 bytes with no newline, far more than the 128 tokens the model translates of a line`));
    expect(performance.now() - t0).toBeLessThan(30_000);
    rmSync(path);
  });

  it('a line just under the limit, read in many chunks, still translates (the first 128 tokens, with the warning)', () => {
    const long = 'a man rides a horse . '.repeat(47_000); // ~1 MB, hundreds of stdin chunks
    const r = cli(['translate', '--run', run, '--threads', '1'], { input: `${sentences[0]}\n${long}\n${sentences[1]}\n` });
    expect(r.status).toBe(0);
    const { model, tokenizer } = loadTranslator(run);
    expect(r.stdout.split('\n').slice(0, -1)).toEqual(translateAll(model, tokenizer, [sentences[0]!, long.trim(), sentences[1]!]));
    expect(r.stderr).toMatch(/^translate: warning: input line 2 has \d+ tokens; only the first 128/);
  });

  it('--threads and NMGRAD_THREADS share one cap, 4 × the cores, named in the error', () => {
    const cap = 4 * availableParallelism();
    const msg = `must be an integer in [1, ${cap}] (4 × the ${availableParallelism()} cores: more threads only queue for the same cores)`;
    const flag = cli(['translate', '--run', run, '--threads', String(cap + 1)], { input: 'a man .\n' });
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain(`--threads ${msg}, got '${cap + 1}'`);
    expect(cli(['translate', '--run', run, '--threads', '256'], { input: 'a man .\n' }).stderr).toContain(`got '256'`);
    for (const cmd of [['train', ...S, '--data', data, '--steps', '1', '--out', join(tmp, 'never')], ['translate', '--run', run]]) {
      const env = cli(cmd.filter((a, i, all) => a !== '--threads' && all[i - 1] !== '--threads'), { input: 'a man .\n', env: { NMGRAD_THREADS: '1000' } });
      expect(env.status).toBe(2);
      expect(env.stderr).toContain(`translate: threads: NMGRAD_THREADS ${msg}, got '1000'`);
    }
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });
});

describe('pipes and full disks: a clear end, never a stack or a silent 0', () => {
  it('translate | head -1: the closed pipe ends the process quietly', async () => {
    const input = `${sentences.concat(sentences, sentences).join('\n')}\n`; // 1200 lines: many batches after the reader leaves
    const child = spawn('node', [cliPath, 'translate', '--run', run, '--threads', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.end(input);
    const first = await new Promise<string>((done) => child.stdout.once('data', (d: Buffer) => done(d.toString())));
    child.stdout.destroy(); // what head does after its first line
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.on('close', (c, s) => done([c, s])));
    expect(first.length).toBeGreaterThan(0);
    expect(code === 0 || code === 141 || signal === 'SIGPIPE', `exit ${code} ${signal}`).toBe(true);
    expect(err).toBe('');
  });

  it('translate, evaluate, train and export > /dev/full: one typed line on stderr and exit 1', () => {
    const src = join(tmp, 'src.en');
    const ref = join(tmp, 'ref.de');
    writeFileSync(src, `${sentences.slice(0, 5).join('\n')}\n`);
    writeFileSync(ref, `${sentences.slice(0, 5).join('\n')}\n`);
    const cases = [
      ['translate', '--run', run, '--input', src, '--threads', '1'],
      ['evaluate', '--run', run, '--src', src, '--ref', ref, '--threads', '1'],
      ['evaluate', '--hyp', src, '--ref', ref],
      ['train', ...S, '--data', data, '--steps', '2', '--out', join(tmp, 'full-train')],
      ['export', '--run', run, '--out', join(tmp, 'full.safetensors')],
    ];
    for (const args of cases) {
      const fd = openSync('/dev/full', 'w');
      const r = cli(args, { stdout: fd });
      closeSync(fd);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('translate: stdout: cannot write the output (ENOSPC: no space left on the device); what was written is incomplete');
      expect(r.stderr).not.toMatch(RAW_STACK);
    }
  });
});

describe('models and tokenizers that do not load: typed errors', () => {
  function rewrite(name: string, change: (f: ReturnType<typeof decodeSafetensors>) => void): string {
    const file = decodeSafetensors(readFileSync(exported), exported);
    change(file);
    const path = join(tmp, name);
    writeFileSync(path, encodeSafetensors(new Map([...file.tensors, ...file.bytes]), file.metadata));
    return path;
  }

  it('an exported model whose tokenizer metadata is not JSON: a DataError naming it, not a raw SyntaxError', () => {
    const path = rewrite('bad-tokenizer.safetensors', (f) => (f.metadata.tokenizer = '{"format": "nmgrad-bpe-v1", "alphabet": [')); // cut short
    const r = cli(['translate', '--run', path], { input: 'a man .\n' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^translate: ${path} \\(tokenizer\\): not valid JSON`));
    expect(r.stderr).not.toMatch(RAW_STACK);
  });

  it('an exported model holding NaN is refused on load, as training checkpoints are', () => {
    let poisoned = '';
    const path = rewrite('nan.safetensors', (f) => {
      const [name, t] = [...f.tensors].find(([n]) => n.endsWith('.weight.values'))!;
      t.data[3] = Number.NaN;
      poisoned = name;
    });
    const r = cli(['translate', '--run', path], { input: 'a man .\n' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`translate: ${path}: tensor '${poisoned}' holds NaN at flat index 3`);
    expect(r.stdout).toBe('');
  });
});

describe('silently wrong: empty lines, blank references, JSON-only stdout, table lookups', () => {
  it('empty and whitespace-only lines give empty lines, the others the same text as alone (translate and evaluate)', () => {
    // An untrained model: it rarely picks eos, so an empty source decoded as such gives a full line of tokens.
    const untrained = join(tmp, 'untrained');
    const config: TranslationConfig = {
      model: { srcVocab: 0, tgtVocab: 0, dModel: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0, maxLen: 24, shareEmbeddings: true, tieOutput: true, seed: 2 },
      recipe: 'dense', sparsify: 'ffn', steps: 1, batchTokens: 400, lr: 1e-3, warmup: 1, seed: 2, labelSmoothing: 0.1, maxLen: 24, data: 'builtin', merges: 50,
    };
    const fresh = buildTranslationRun(config, BpeTokenizer.train(corpus.train.flatMap((p) => [p.en, p.de]), 50));
    saveTranslationRun(untrained, fresh, { step: 0, epoch: 0, batchInEpoch: 0, flops: null, elapsedMs: 0 });
    const input = ['', sentences[2]!, '   ', '\t', sentences[3]!, ''];
    const r = cli(['translate', '--run', untrained, '--threads', '1'], { input: `${input.join('\n')}\n` });
    expect(r.status).toBe(0);
    const { model, tokenizer } = loadTranslator(untrained);
    const alone = (s: string): string => translateAll(model, tokenizer, [s])[0]!;
    expect(alone(sentences[2]!)).not.toBe('');
    expect(r.stdout).toBe(`${['', alone(sentences[2]!), '', '', alone(sentences[3]!), ''].join('\n')}\n`);

    const src = join(tmp, 'blank-src.en');
    const ref = join(tmp, 'blank-ref.de');
    writeFileSync(src, `${input.join('\n')}\n`);
    const refs = ['', 'ein mann .', '', '', 'eine frau .', ''];
    writeFileSync(ref, `${refs.join('\n')}\n`);
    const e = cli(['evaluate', '--run', untrained, '--src', src, '--ref', ref, '--threads', '1', '--json']);
    expect(e.status).toBe(0);
    const hyps = ['', alone(sentences[2]!), '', '', alone(sentences[3]!), ''];
    expect(JSON.parse(e.stdout).bleu).toBe(corpusBleu(hyps, [refs]).score);
  });

  it('evaluate with references that are all blank: a typed error, not BLEU 0 with exit 0', () => {
    const hyp = join(tmp, 'hyp.de');
    const blank = join(tmp, 'blank.de');
    writeFileSync(hyp, 'ein mann .\neine frau .\n');
    writeFileSync(blank, '\n  \n');
    const r = cli(['evaluate', '--hyp', hyp, '--ref', blank]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`translate: ${blank}: all 2 reference lines are blank: nothing to score`);
    expect(r.stdout).toBe('');
  });

  it('--json train and compare: every stdout line is JSON (the human lines are {"log": …} records)', () => {
    const t = cli(['train', ...S, '--data', data, '--steps', '3', '--out', join(tmp, 'json-run')]);
    const c = cli(['compare', ...S, '--data', data, '--steps', '2', '--recipes', 'dense', '--out', join(tmp, 'json-compare')]);
    for (const [r, human] of [[t, ['data: ', 'recipe: ', 'BPE: ']], [c, ['== dense_seed1', 'BPE: ', 'wrote ']]] as const) {
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      const lines = r.stdout.trimEnd().split('\n');
      for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
      const records = lines.map((l) => JSON.parse(l) as { log?: string; step?: number; summary?: unknown; format?: string });
      const logs = records.flatMap((o) => (o.log === undefined ? [] : [o.log]));
      for (const h of human) expect(logs.some((l) => l.startsWith(h)), h).toBe(true);
      expect(records.some((o) => o.step !== undefined)).toBe(true); // the metrics, as they were
    }
    expect(JSON.parse(t.stdout.trimEnd().split('\n').at(-1)!).summary).toBeDefined();
    expect(c.stdout).toContain('{"format":"nmgrad-study-report/1"'); // the report as one record, not markdown
  });

  it("compare --study, commands and flags named like Object's members are refused, listing what exists", () => {
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const r = cli(['compare', ...S, '--data', data, '--steps', '1', '--recipes', 'dense', '--list', '--study', name, '--out', join(tmp, 'proto')]);
      expect(r.status, name).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`--study: unknown study preset '${name}'; presets: \\w`));
      expect(r.stdout).toBe('');
      const cmd = cli([name]);
      expect(cmd.status).toBe(2);
      expect(cmd.stderr).toMatch(new RegExp(`^translate: unknown command '${name}'.*\\(commands: train, translate`));
      const flag = cli(['translate', `--${name}`, 'x']);
      expect(flag.status).toBe(2);
      expect(flag.stderr).toContain(`unknown flag --${name} for 'translate'`);
      expect(`${cmd.stderr}${flag.stderr}`).not.toMatch(RAW_STACK);
    }
    expect(existsSync(join(tmp, 'proto'))).toBe(false);
  });

  it('--recipe dense:1:8 and a sparse N = M are refused alike, before a run folder is made', () => {
    for (const [recipe, re] of [
      ['dense:1:8', /'dense' takes no N:M \(it keeps every weight\), got 'dense:1:8'/],
      ['pmd:8:8', /N:M = 8:8 keeps every weight .* so 'pmd' would prune nothing/],
      ['ssd:8:8', /N:M = 8:8 keeps every weight .* so 'ssd' would prune nothing/],
      ['unstructured:4:4', /N:M = 4:4 .* so 'unstructured' would prune nothing/],
    ] as const) {
      const r = cli(['train', ...S, '--data', data, '--steps', '1', '--recipe', recipe, '--out', join(tmp, 'nm-eq')]);
      expect(r.status, recipe).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(existsSync(join(tmp, 'nm-eq'))).toBe(false);
    }
  });
});
