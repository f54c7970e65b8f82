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
  /** Longest line accepted, in bytes (default MAX_LINE_BYTES); a longer one is a DataError. */
  maxLineBytes?: number;
}

/**
 * Longest input line (bytes) by default: the model translates at most its maxLen (128) tokens of
 * a line, which a line of a megabyte exceeds many times over, so a longer one is an input that
 * lacks its newlines (a whole file on one line), not a sentence.
 */
export const MAX_LINE_BYTES = 2 ** 20;

/**
 * Splits a byte stream into lines, pulling chunks on demand. Lines are cut at LF bytes (which
 * never occur inside a UTF-8 sequence) and each is decoded strictly, so invalid UTF-8 is an
 * error naming `name` and the line, as when a whole file is read; a trailing CR is dropped.
 * The pieces of a line that spans chunks are joined once, when its LF arrives (linear in the
 * input whatever the line lengths); a line past `maxBytes` is a DataError as soon as it is.
 */
async function* readLines(input: Readable, name: string, maxBytes: number, modelMaxLen: number): AsyncGenerator<string> {
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
  const tooLong = (): DataError =>
    new DataError(`${name}:${lineNo + 1}`, `line is longer than ${maxBytes} bytes with no newline, far more than the ${modelMaxLen} tokens the model translates of a line (give one sentence per line)`);
  // The start of the current line: copies of chunk tails, so the chunks they came from can be freed.
  let parts: Buffer[] = [];
  let partBytes = 0;
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    let start = 0;
    let nl = bytes.indexOf(0x0a);
    while (nl >= 0) {
      if (partBytes + nl - start > maxBytes) throw tooLong();
      const piece = bytes.subarray(start, nl);
      yield decode(parts.length ? Buffer.concat([...parts, piece]) : piece);
      parts = [];
      partBytes = 0;
      start = nl + 1;
      nl = bytes.indexOf(0x0a, start);
    }
    if (start < bytes.length) {
      partBytes += bytes.length - start;
      if (partBytes > maxBytes) throw tooLong();
      parts.push(Buffer.from(bytes.subarray(start)));
    }
  }
  if (partBytes) yield decode(Buffer.concat(parts));
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
  for await (const line of readLines(input, opts.name ?? 'input', opts.maxLineBytes ?? MAX_LINE_BYTES, model.config.maxLen)) {
    batch.push(opts.normalize ? opts.normalize(line) : line);
    if (batch.length >= batchLines) await flush();
  }
  if (batch.length) await flush();
  return done;
}
