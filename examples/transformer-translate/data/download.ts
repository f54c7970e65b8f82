/**
 * Verified download of gzip-compressed data files. The body is streamed through gunzip into a
 * temp file next to the target while its size is capped and its SHA-256 computed, so memory
 * stays bounded whatever the server sends (a gzip bomb stops at the cap). Only a file whose
 * checksum matches is renamed into place; every failure leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DataError, checkOutputPath } from 'nmgrad';

export interface RemoteFile {
  /** File name written into the target directory (e.g. `train.en`); a plain name, no folders. */
  name: string;
  /** URL of the gzip-compressed file. */
  url: string;
  /** sha256 of the decompressed file. */
  sha256: string;
}

export interface DownloadOptions {
  /** Give up when the server sends nothing for this long, connecting included (default 30 s). */
  idleTimeoutMs?: number;
  /** Redirects followed per file, each only to an https URL (default 5). */
  maxRedirects?: number;
  /** Largest accepted size, compressed and decompressed (default 256 MiB; Multi30k's largest file is 2 MB). */
  maxBytes?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Refuses names that could leave the target folder (`../x`, `a/b`, absolute paths). */
export function checkPlainFileName(name: string): void {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || basename(name) !== name || /[\\/\0]/.test(name)) {
    throw new DataError('download', `file name ${JSON.stringify(name)} is not a plain file name (no folders, '..' or separators)`);
  }
}

function get(url: URL, idleMs: number): Promise<{ res: IncomingMessage; destroy: () => void }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { agent: false, timeout: idleMs, headers: { 'accept-encoding': 'identity' } }, (res) => resolve({ res, destroy: () => req.destroy() }));
    // The socket timeout covers connecting, waiting for headers and every pause in the body.
    req.on('timeout', () => req.destroy(new DataError(url.href, `download stalled: nothing received for ${idleMs} ms (server not answering?)`)));
    req.on('error', reject);
    req.end();
  });
}

/** Follows up to `maxRedirects` redirects, each to https only; resolves with the 200 response. */
async function open(url: string, idleMs: number, maxRedirects: number): Promise<IncomingMessage> {
  let target = new URL(url);
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new DataError(url, `unsupported URL scheme ${target.protocol} (http or https only)`);
  for (let hops = 0; ; hops++) {
    const { res, destroy } = await get(target, idleMs);
    if (!REDIRECTS.has(res.statusCode ?? 0)) {
      if (res.statusCode !== 200) {
        destroy();
        throw new DataError(url, `download failed: HTTP ${res.statusCode}`);
      }
      return res;
    }
    destroy();
    const location = res.headers.location;
    if (!location) throw new DataError(url, `HTTP ${res.statusCode} redirect without a Location header`);
    const next = new URL(location, target);
    if (next.protocol !== 'https:') throw new DataError(url, `refusing a redirect to ${next.href}: redirects are followed only to https`);
    if (hops >= maxRedirects) throw new DataError(url, `too many redirects (more than ${maxRedirects}); last one to ${next.href}`);
    target = next;
  }
}

/** Passes bytes through, failing once more than `max` have gone by. */
function sizeCap(url: string, what: string, max: number, onChunk?: (b: Buffer) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      seen += chunk.length;
      if (seen > max) return done(new DataError(url, `${what} size exceeds the ${max}-byte limit (gzip bomb or wrong file?)`));
      onChunk?.(chunk);
      done(null, chunk);
    },
  });
}

async function downloadOne(dir: string, f: RemoteFile, o: Required<DownloadOptions>, log: (s: string) => void): Promise<void> {
  checkPlainFileName(f.name);
  const tmp = join(dir, `.${f.name}.tmp-${process.pid}-${Date.now()}`);
  const hash = createHash('sha256');
  let size = 0;
  let gzipFailed = false;
  try {
    let res: IncomingMessage;
    try {
      res = await open(f.url, o.idleTimeoutMs, o.maxRedirects);
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(f.url, `download failed: ${(e as Error).message} (no network? copy the files into ${dir} by hand)`);
    }
    const gunzip = createGunzip().once('error', () => (gzipFailed = true));
    try {
      await pipeline(res, sizeCap(f.url, 'compressed', o.maxBytes), gunzip, sizeCap(f.url, 'decompressed', o.maxBytes, (b) => {
        hash.update(b);
        size += b.length;
      }), createWriteStream(tmp));
    } catch (e) {
      if (e instanceof DataError) throw e;
      if (gzipFailed) throw new DataError(f.url, `not a valid gzip file: ${(e as Error).message}`);
      throw new DataError(f.url, `download failed: ${(e as Error).message}`);
    }
    const sum = hash.digest('hex');
    if (sum !== f.sha256) throw new DataError(f.url, `sha256 mismatch: got ${sum}, expected ${f.sha256}`);
    const fd = openSync(tmp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(dir, f.name));
  } finally {
    rmSync(tmp, { force: true });
  }
  log(`${f.name}: ${size} bytes, sha256 ok`);
}

/**
 * Downloads, gunzips and verifies each file into `dir`. A checksum mismatch, a corrupt gzip, a
 * stalled server, an oversized body or an unsafe redirect is a DataError and leaves no file behind.
 */
export async function downloadFiles(dir: string, files: RemoteFile[], log: (s: string) => void = () => {}, opts: DownloadOptions = {}): Promise<void> {
  const o: Required<DownloadOptions> = { idleTimeoutMs: 30_000, maxRedirects: 5, maxBytes: 256 * 2 ** 20, ...opts };
  for (const f of files) checkPlainFileName(f.name);
  checkOutputPath(dir, 'download folder'); // mkdirSync below /proc would never return
  mkdirSync(dir, { recursive: true });
  for (const f of files) await downloadOne(dir, f, o, log);
}
