import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/index.js';
import { downloadFiles } from '../../examples/transformer-translate/data/parallel.js';

const tmp = mkdtempSync(join(tmpdir(), 'nmgrad-dl-'));
const MiB = 2 ** 20;
const zeros = Buffer.alloc(MiB);

/** gzip of `mib` MiB of zero bytes, built chunk by chunk so the test itself never holds them. */
async function gzipZeros(mib: number): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const parts: Buffer[] = [];
  gz.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((r) => gz.on('end', r));
  for (let i = 0; i < mib; i++) if (!gz.write(zeros)) await new Promise((r) => gz.once('drain', r));
  gz.end();
  await done;
  return Buffer.concat(parts);
}

function sha256OfZeros(mib: number): string {
  const h = createHash('sha256');
  for (let i = 0; i < mib; i++) h.update(zeros);
  return h.digest('hex');
}

const good = 'Ein Hund.\nZwei Katzen.\n';
const goodSha = createHash('sha256').update(good).digest('hex');
let http: Server;
let silent: TcpServer;
const sockets = new Set<Socket>();
let base = '';
let silentUrl = '';
let bomb: Buffer;
let big: Buffer;

beforeAll(async () => {
  [bomb, big] = await Promise.all([gzipZeros(64), gzipZeros(200)]);
  http = createServer((req, res) => {
    if (req.url === '/good.gz') res.end(gzipSync(Buffer.from(good)));
    else if (req.url === '/bomb.gz') res.end(bomb);
    else if (req.url === '/big.gz') res.end(big);
    else if (req.url === '/stall.gz') {
      // Headers and half the body, then silence.
      const body = gzipSync(Buffer.from(good.repeat(1000)));
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1));
    } else if (req.url === '/to-http') res.writeHead(302, { location: '/good.gz' }).end();
    else if (req.url === '/to-https') res.writeHead(301, { location: 'https://127.0.0.1:9/good.gz' }).end();
    else res.writeHead(404).end();
  });
  http.on('connection', (s) => sockets.add(s));
  // Accepts connections and never sends a byte.
  silent = createTcpServer((s) => sockets.add(s));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}/train.en.gz`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => silent.close(r))]);
  rmSync(tmp, { recursive: true, force: true });
});

/** Nothing in `dir` at all: no target file and no temp file. */
function expectEmpty(dir: string): void {
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
}

describe('download limits (local 127.0.0.1 servers)', () => {
  it('a server that accepts the connection and never answers fails after the idle timeout', async () => {
    const dir = join(tmp, 'silent');
    const t0 = Date.now();
    await expect(downloadFiles(dir, [{ name: 'train.en', url: silentUrl, sha256: goodSha }], undefined, { idleTimeoutMs: 300 })).rejects.toThrow(/download stalled: nothing received for 300 ms/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expectEmpty(dir);
  }, 20_000);

  it('a body that stops halfway fails after the idle timeout and leaves no file', async () => {
    const dir = join(tmp, 'stall');
    await expect(downloadFiles(dir, [{ name: 'x', url: `${base}/stall.gz`, sha256: goodSha }], undefined, { idleTimeoutMs: 300 })).rejects.toThrow(DataError);
    expectEmpty(dir);
  }, 20_000);

  it('refuses file names that are not plain names, before writing anything', async () => {
    const dir = join(tmp, 'names', 'inner');
    for (const name of ['../evil.txt', 'a/b', '/tmp/abs', '..', '.', '', 'a\\b']) {
      await expect(downloadFiles(dir, [{ name, url: `${base}/good.gz`, sha256: goodSha }])).rejects.toThrow(/is not a plain file name/);
    }
    expect(existsSync(join(tmp, 'names', 'evil.txt'))).toBe(false);
    expectEmpty(dir);
  });

  it('caps the decompressed size: a 64 MiB gzip bomb stops at a 1 MiB limit', async () => {
    const dir = join(tmp, 'bomb');
    await expect(downloadFiles(dir, [{ name: 'x', url: `${base}/bomb.gz`, sha256: sha256OfZeros(64) }], undefined, { maxBytes: MiB })).rejects.toThrow(/decompressed size exceeds the 1048576-byte limit/);
    expectEmpty(dir);
  });

  it('streams to disk: 200 MiB decompressed is verified and written with bounded memory', async () => {
    const dir = join(tmp, 'big');
    // The process's resident high-water mark (KiB) also sees peaks inside synchronous code.
    const before = process.resourceUsage().maxRSS;
    await downloadFiles(dir, [{ name: 'big', url: `${base}/big.gz`, sha256: sha256OfZeros(200) }]);
    const peakGrowth = (process.resourceUsage().maxRSS - before) / 1024;
    expect(statSync(join(dir, 'big')).size).toBe(200 * MiB);
    // Holding the decompressed file in memory would add at least 200 MiB.
    expect(peakGrowth).toBeLessThan(100);
    rmSync(join(dir, 'big'));
  }, 60_000);

  it('follows redirects only to https, and only up to the limit', async () => {
    const dir = join(tmp, 'redirects');
    await expect(downloadFiles(dir, [{ name: 'x', url: `${base}/to-http`, sha256: goodSha }])).rejects.toThrow(/refusing a redirect to http:\/\/127\.0\.0\.1:\d+\/good\.gz: redirects are followed only to https/);
    await expect(downloadFiles(dir, [{ name: 'x', url: `${base}/to-https`, sha256: goodSha }], undefined, { maxRedirects: 0 })).rejects.toThrow(/too many redirects \(more than 0\)/);
    await expect(downloadFiles(dir, [{ name: 'x', url: 'file:///etc/passwd', sha256: goodSha }])).rejects.toThrow(/unsupported URL scheme file:/);
    expectEmpty(dir);
    await downloadFiles(dir, [{ name: 'ok', url: `${base}/good.gz`, sha256: goodSha }]);
    expect(readdirSync(dir)).toEqual(['ok']);
  });
});
