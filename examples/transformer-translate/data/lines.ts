/**
 * Reading text the same way everywhere (training data, translate input, evaluate files):
 * UTF-8 only (invalid bytes are an error naming the file and line, never silently U+FFFD),
 * lines split on LF with a trailing CR removed, so CRLF and LF files read the same.
 */
import { readFileSync, statSync } from 'node:fs';
import { TextDecoder } from 'node:util';
import { DataError } from 'nmgrad';

/** Decodes UTF-8 text into lines; `name` (a path or `stdin`) is used in error messages. */
export function decodeLines(bytes: Uint8Array, name: string): string[] {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new DataError(`${name}:${firstInvalidLine(bytes, decoder)}`, 'invalid UTF-8 (nmgrad reads text as UTF-8 only)');
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function firstInvalidLine(bytes: Uint8Array, decoder: TextDecoder): number {
  let start = 0;
  let line = 1;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      try {
        decoder.decode(bytes.subarray(start, i));
      } catch {
        return line;
      }
      start = i + 1;
      line++;
    }
  }
  return line;
}

/** Reads a text file as lines; a missing path, a folder or an unreadable file is a DataError. */
export function readTextLines(path: string): string[] {
  let bytes: Buffer;
  try {
    if (statSync(path).isDirectory()) throw new DataError(path, 'is a directory, expected a text file');
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(path, code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : (e as Error).message);
  }
  return decodeLines(bytes, path);
}

/** A source sentence as training saw it: training data is trimmed, so input is trimmed too. */
export function normalizeSource(line: string): string {
  return line.trim();
}
