/**
 * Streaming translation: lines are read as they arrive, decoded in batches and written as soon
 * as each batch is done, in input order. Memory is bounded by one batch and one read chunk, not
 * by the input, and the first translations appear while the input is still being read.
 */
import type { Readable, Writable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { DataError, type Transformer } from 'nmgrad';
import type { BpeTokenizer } from 'nmgrad/text';
import { translateAll, type DecodeOptions } from './translate.js';

export interface StreamOptions extends DecodeOptions {
  /** Lines decoded together (default 64, the batch size of `translateAll`). */
  batchLines?: number;
  /** Called after each written batch with the number of lines translated so far. */
  onProgress?: (lines: number) => void;
  /** Turns each input line into the source to translate (e.g. trimming it as training data was). */
  normalize?: (line: string) => string;
  /** The input's name in errors (a path, or `stdin`). */
  name?: string;
}

/**
 * Splits a byte stream into lines, pulling chunks on demand. Lines are cut at LF bytes (which
 * never occur inside a UTF-8 sequence) and each is decoded strictly, so invalid UTF-8 is an
 * error naming `name` and the line, as when a whole file is read; a trailing CR is dropped.
 */
async function* readLines(input: Readable, name: string): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let lineNo = 0;
  const decode = (bytes: Uint8Array): string => {
    lineNo++;
    let line: string;
    try {
      line = decoder.decode(bytes);
    } catch {
      throw new DataError(`${name}:${lineNo}`, 'invalid UTF-8 (nmgrad reads text as UTF-8 only)');
    }
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  };
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    let buf = rest.length ? Buffer.concat([rest, bytes]) : bytes;
    let nl = buf.indexOf(0x0a);
    while (nl >= 0) {
      yield decode(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
      nl = buf.indexOf(0x0a);
    }
    rest = Buffer.from(buf); // a copy, so the chunk it came from can be freed
  }
  if (rest.length) yield decode(rest);
}

function write(out: Writable, text: string): Promise<void> {
  return new Promise((done, fail) => {
    const onError = (e: Error): void => fail(e);
    out.once('error', onError);
    const flushed = (): void => {
      out.off('error', onError);
      done();
    };
    if (out.write(text)) flushed();
    else out.once('drain', flushed);
  });
}

/** Translates `input` line by line into `output`; resolves with the number of lines. */
export async function translateStream(model: Transformer, tok: BpeTokenizer, input: Readable, output: Writable, opts: StreamOptions = {}): Promise<number> {
  const batchLines = opts.batchLines ?? 64;
  let batch: string[] = [];
  let done = 0;
  const flush = async (): Promise<void> => {
    const offset = done;
    // onTruncate counts lines in the whole input, not in this batch.
    const onTruncate = opts.onTruncate && ((i: number, tokens: number, kept: number): void => opts.onTruncate!(offset + i, tokens, kept));
    const hyps = translateAll(model, tok, batch, { ...opts, onTruncate });
    await write(output, hyps.map((h) => `${h}\n`).join(''));
    done += batch.length;
    batch = [];
    opts.onProgress?.(done);
  };
  for await (const line of readLines(input, opts.name ?? 'input')) {
    batch.push(opts.normalize ? opts.normalize(line) : line);
    if (batch.length >= batchLines) await flush();
  }
  if (batch.length) await flush();
  return done;
}
