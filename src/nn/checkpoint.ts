/**
 * Checkpoints in the safetensors format: 8-byte little-endian header length, a JSON header
 * (`dtype`, `shape`, `data_offsets` per tensor, string `__metadata__`), then raw little-endian
 * data. Weights open in PyTorch / Hugging Face tooling; optimizer moments ride along as extra
 * tensors (`optimizer.<slot>.<param>`) and the training state as JSON metadata, so one file
 * holds a whole checkpoint and one atomic rename publishes it.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname, basename, join } from 'node:path';
import { DataError, fmtShape } from '../errors.js';
import { Tensor } from '../autograd/tensor.js';
import { byteTensor, type ByteTensor } from './byte-tensor.js';
import type { Module } from './module.js';
import { captureModuleState, planModuleState } from './module-state.js';

export { byteTensor, type ByteTensor };
import type { Optimizer, OptimizerState } from './optim.js';

if (endianness() !== 'LE') throw new DataError('checkpoint', 'safetensors I/O needs a little-endian host');

/** A decoded safetensors file: its F32 tensors, U8 tensors and string metadata, by name. */
export interface Safetensors {
  /** The F32 tensors. */
  tensors: Map<string, Tensor>;
  /** The U8 tensors. */
  bytes: Map<string, ByteTensor>;
  metadata: Record<string, string>;
}

type Stored = Tensor | ByteTensor;

function storedBytes(t: Stored): Uint8Array {
  return t instanceof Tensor ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.size * 4) : t.data;
}

/**
 * safetensors carries no checksum of its own, so flipped bytes would load silently. nmgrad adds
 * SHA-256 digests of the data section and of the other metadata entries under these keys and
 * verifies them on load; files from other tools lack them and load unchecked.
 */
export const DATA_SHA256_KEY = 'nmgrad.data_sha256';
export const METADATA_SHA256_KEY = 'nmgrad.metadata_sha256';

function metadataDigest(metadata: Record<string, string>): string {
  const entries = Object.entries(metadata)
    .filter(([k]) => k !== DATA_SHA256_KEY && k !== METADATA_SHA256_KEY)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}

/** Serialises F32 and U8 tensors (in the given order) and string metadata to safetensors bytes. */
export function encodeSafetensors(tensors: Map<string, Stored> | [string, Stored][], metadata: Record<string, string> = {}): Uint8Array {
  const list = tensors instanceof Map ? [...tensors.entries()] : tensors;
  const header: Record<string, unknown> = {};
  const dataHash = createHash('sha256');
  for (const [, t] of list) dataHash.update(storedBytes(t));
  header.__metadata__ = { ...metadata, [DATA_SHA256_KEY]: dataHash.digest('hex'), [METADATA_SHA256_KEY]: metadataDigest(metadata) };
  let offset = 0;
  for (const [name, t] of list) {
    const len = storedBytes(t).length;
    header[name] = { dtype: t instanceof Tensor ? 'F32' : 'U8', shape: [...t.shape], data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((Buffer.byteLength(json) + 8) % 8)) % 8; // align the data section to 8 bytes
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const [, t] of list) {
    const b = storedBytes(t);
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/** Parses and fully validates safetensors bytes; `where` names the file in errors. */
export function decodeSafetensors(bytes: Uint8Array, where = 'safetensors'): Safetensors {
  if (bytes.length < 8) throw new DataError(where, `file is ${bytes.length} bytes, too short for a safetensors header (truncated?)`);
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > bytes.length - 8 || headerLen > 100_000_000) {
    throw new DataError(where, `header claims ${headerLen} bytes but the file has ${bytes.length - 8} after the length (truncated or not safetensors)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new DataError(where, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new DataError(where, 'header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: [string, { dtype: 'F32' | 'U8'; shape: number[]; data_offsets: [number, number] }][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) throw new DataError(where, `__metadata__ must be an object of strings, got ${info === null ? 'null' : Array.isArray(info) ? 'an array' : typeof info}`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new DataError(where, `metadata value '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (info === null || typeof info !== 'object' || Array.isArray(info)) throw new DataError(where, `tensor '${name}' has no {dtype, shape, data_offsets} entry`);
    const i = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (i.dtype !== 'F32' && i.dtype !== 'U8') throw new DataError(where, `tensor '${name}' has dtype ${String(i.dtype)}; nmgrad reads F32 and U8 only`);
    if (!Array.isArray(i.shape) || !i.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new DataError(where, `tensor '${name}' has an invalid shape`);
    const off = i.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1]) {
      throw new DataError(where, `tensor '${name}' has invalid data_offsets`);
    }
    entries.push([name, { dtype: i.dtype, shape: i.shape as number[], data_offsets: off as [number, number] }]);
  }
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let expected = 0;
  const tensors = new Map<string, Tensor>();
  const byteTensors = new Map<string, ByteTensor>();
  for (const [name, info] of entries) {
    const [b, e] = info.data_offsets;
    const size = info.shape.reduce((x, y) => x * y, 1);
    const width = info.dtype === 'F32' ? 4 : 1;
    if (e - b !== size * width) throw new DataError(where, `${info.dtype} tensor '${name}' of shape ${fmtShape(info.shape)} needs ${size * width} bytes, offsets give ${e - b}`);
    if (b !== expected) throw new DataError(where, `tensor '${name}' starts at ${b}, expected ${expected} (overlap or hole in the data section)`);
    if (e > dataLen) throw new DataError(where, `tensor '${name}' ends at byte ${e} but the data section has ${dataLen} bytes (truncated file)`);
    if (info.dtype === 'U8') byteTensors.set(name, byteTensor(new Uint8Array(bytes.subarray(dataStart + b, dataStart + e)), info.shape)); // a copy, not a view of the file
    else {
      const data = new Float32Array(size);
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + b, dataStart + e));
      tensors.set(name, new Tensor(data, info.shape));
    }
    expected = e;
  }
  if (expected !== dataLen) throw new DataError(where, `${dataLen - expected} trailing bytes after the last tensor (corrupt file)`);
  verifyChecksums(bytes.subarray(dataStart), metadata, where);
  return { tensors, bytes: byteTensors, metadata };
}

/** Checks (and then drops from `metadata`) the digests written by `encodeSafetensors`. */
function verifyChecksums(data: Uint8Array, metadata: Record<string, string>, where: string): void {
  const wantData = metadata[DATA_SHA256_KEY];
  const wantMeta = metadata[METADATA_SHA256_KEY];
  if (wantData !== undefined) {
    const got = createHash('sha256').update(data).digest('hex');
    if (got !== wantData) throw new DataError(where, `data section checksum mismatch (sha256 ${got}, header says ${wantData}): the tensor bytes are corrupt`);
  }
  if (wantMeta !== undefined) {
    const got = metadataDigest(metadata);
    if (got !== wantMeta) throw new DataError(where, `metadata checksum mismatch (sha256 ${got}, header says ${wantMeta}): the training state or optimizer entries are corrupt`);
  }
  delete metadata[DATA_SHA256_KEY];
  delete metadata[METADATA_SHA256_KEY];
}

const TMP_MARK = '.tmp-';
const TMP_NAME = /^\..+\.tmp-(\d+)-\d+$/;

/** Writes to a temp file in the same folder, fsyncs it, renames it over `path`, fsyncs the folder. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}${TMP_MARK}${process.pid}-${Date.now()}`);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw writeError(path, e);
  }
  try {
    const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw writeError(path, e);
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeError(path, e);
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Some filesystems cannot fsync a directory; the rename is still atomic.
  }
}

/** A failed write as one DataError line; the file it would have replaced is untouched. */
function writeError(path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    ENOSPC: 'no space left on the device', EDQUOT: 'the disk quota is exceeded', EROFS: 'the file system is read-only',
    EACCES: 'permission denied', EPERM: 'permission denied', ENOENT: 'its folder does not exist', EISDIR: 'a folder is in the way', EIO: 'an I/O error',
  };
  if (!err || typeof err.code !== 'string') return e as Error;
  const reason = Object.hasOwn(why, err.code) ? why[err.code]! : err.message;
  return new DataError(path, `cannot write: ${reason} (${err.code}); the previous file, if any, is intact`);
}

/** Whether a process with this pid runs (one of another user counts as running). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files that `writeFileAtomic` left in `dir` when its process was killed mid-write
 * (`kill -9`, power loss). Files of a process that is still running are left alone, so a
 * concurrent writer is never disturbed. Returns the names removed.
 */
export function removeStaleTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TMP_NAME.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Writes F32 / U8 tensors and string metadata to a safetensors file atomically (temp file, fsync, rename).
 */
export function saveSafetensors(path: string, tensors: Map<string, Stored> | [string, Stored][], metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * The string metadata of a safetensors file, read from its header alone (no tensor data, no
 * digest check: a peek, e.g. at a checkpoint's step, before the file is loaded in full).
 */
export function readSafetensorsMetadata(path: string): Record<string, string> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new DataError(path, `cannot read checkpoint: ${(e as Error).message}`);
  }
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) < 8) throw new DataError(path, 'too short for a safetensors header (truncated?)');
    const headerLen = Number(len.readBigUInt64LE(0));
    if (headerLen > 100_000_000) throw new DataError(path, `header claims ${headerLen} bytes (not safetensors)`);
    const header = Buffer.alloc(headerLen);
    if (readSync(fd, header, 0, headerLen, 8) < headerLen) throw new DataError(path, 'header is truncated');
    let parsed: unknown;
    try {
      parsed = JSON.parse(header.toString('utf8'));
    } catch (e) {
      throw new DataError(path, `header is not valid JSON (${(e as Error).message})`);
    }
    const meta = (parsed as { __metadata__?: unknown } | null)?.__metadata__;
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return {};
    return Object.fromEntries(Object.entries(meta).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and validates a safetensors file; throws DataError naming the file when it is unreadable or malformed.
 */
export function loadSafetensors(path: string): Safetensors {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataError(path, `cannot read checkpoint: ${(e as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}

const OPT_PREFIX = 'optimizer.';

/**
 * Saves model weights (under their parameter names), optimizer slots, extra U8 tensors (`bytes`)
 * and a JSON-serialisable training state in one safetensors file, atomically. The model's own
 * state rides along: every SparseLinear's recipe, step and mask (`<layer>.weight_mask`, U8) and
 * the generator of every module that draws random numbers (dropout), so `loadCheckpoint`
 * restores a model that computes exactly what this one does and trains on the same way.
 */
export function saveCheckpoint(path: string, model: Module, opts: { optimizer?: Optimizer; state?: unknown; bytes?: [string, ByteTensor][] } = {}): void {
  const list: [string, Stored][] = model.namedParameters().map(([n, p]) => [n, p.detach()]);
  const modules = captureModuleState(model);
  const names = new Set(list.map(([n]) => n));
  for (const [name, b] of [...modules.bytes, ...(opts.bytes ?? [])]) {
    if (names.has(name)) throw new DataError('saveCheckpoint', `tensor name '${name}' is used twice (a parameter, a sparse layer's mask or an extra U8 tensor)`);
    names.add(name);
    list.push([name, b]);
  }
  const meta: Record<string, string> = { format: 'nmgrad-checkpoint-v1', state: JSON.stringify(opts.state ?? null), ...modules.metadata };
  if (opts.optimizer) {
    const s = opts.optimizer.getState();
    const names = model.namedParameters();
    const index = new Map(opts.optimizer.params.map((p, i) => [p, i]));
    for (const [slot, arrays] of Object.entries(s.slots)) {
      for (const [name, p] of names) {
        const i = index.get(p);
        if (i !== undefined) list.push([`${OPT_PREFIX}${slot}.${name}`, new Tensor(arrays[i]!, p.shape)]);
      }
    }
    meta.optimizer = JSON.stringify({ kind: s.kind, step: s.step, lr: s.lr, slots: Object.keys(s.slots) });
  }
  saveSafetensors(path, list, meta);
}

/**
 * Loads a checkpoint into `model` (and `optimizer`), returning the saved training state. The
 * file, the model's names and shapes, its sparse layout (which layers are sparse, under which
 * recipe kind and N:M) and the optimizer slots are all validated before anything is copied: an
 * error never leaves a half-loaded model. Sparse layers get their saved mask and step back;
 * files written before nmgrad stored the sparse state restore the weights (and, for translation
 * runs, the masks kept in their training state).
 */
export function loadCheckpoint(path: string, model: Module, opts: { optimizer?: Optimizer; allowNonFinite?: boolean } = {}): unknown {
  return readCheckpoint(path, model, opts).state;
}

/** `loadCheckpoint` that also returns the checkpoint's U8 tensors (masks) by name. */
export function readCheckpoint(path: string, model: Module, opts: { optimizer?: Optimizer; allowNonFinite?: boolean } = {}): { state: unknown; bytes: Map<string, ByteTensor> } {
  const { tensors, bytes, metadata } = loadSafetensors(path);
  const weights = new Map([...tensors].filter(([n]) => !n.startsWith(OPT_PREFIX)));
  model.checkStateDict(weights, path);
  if (!opts.allowNonFinite) for (const [name, t] of tensors) checkFinite(path, name, t);
  const state = metadata.state === undefined ? null : parseMetadataJson(path, 'state', metadata.state);
  let optState: OptimizerState | null = null;
  if (opts.optimizer) {
    if (!metadata.optimizer) throw new DataError(path, 'checkpoint holds no optimizer state');
    const info = optimizerInfo(path, parseMetadataJson(path, 'optimizer', metadata.optimizer));
    const names = model.namedParameters();
    const index = new Map(names.map(([n, p]) => [p, n]));
    const slots: Record<string, Float32Array[]> = {};
    for (const slot of info.slots) {
      slots[slot] = opts.optimizer.params.map((p) => {
        const name = index.get(p);
        const t = name === undefined ? undefined : tensors.get(`${OPT_PREFIX}${slot}.${name}`);
        if (!t || t.size !== p.size) throw new DataError(path, `optimizer slot '${slot}' for '${name ?? '?'}' is missing or misshaped`);
        return t.data;
      });
    }
    optState = { kind: info.kind, step: info.step, lr: info.lr, slots };
    if (info.kind !== opts.optimizer.constructor.name) throw new DataError(path, `optimizer state was saved by ${info.kind}, not ${opts.optimizer.constructor.name}`);
  }
  const restoreModules = planModuleState(path, model, metadata, bytes, state);
  model.loadStateDict(weights, path);
  if (optState && opts.optimizer) opts.optimizer.setState(optState);
  restoreModules();
  return { state, bytes };
}

/** NaN or ±Inf weights would train to NaN or decode to empty lines; refuse them by name. */
function checkFinite(path: string, name: string, t: Tensor): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new DataError(path, `tensor '${name}' holds ${d[i]} at flat index ${i} of ${fmtShape(t.shape)}; refusing non-finite weights (pass allowNonFinite to inspect them)`);
  }
}

function parseMetadataJson(path: string, key: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new DataError(path, `metadata '${key}' is not valid JSON (${(e as Error).message})`);
  }
}

function optimizerInfo(path: string, v: unknown): { kind: string; step: number; lr: number; slots: string[] } {
  const o = v as Record<string, unknown> | null;
  const ok = o !== null && typeof o === 'object' && !Array.isArray(o) && typeof o.kind === 'string' && Number.isInteger(o.step) && (o.step as number) >= 0
    && typeof o.lr === 'number' && Number.isFinite(o.lr) && Array.isArray(o.slots) && o.slots.every((s) => typeof s === 'string');
  if (!ok) throw new DataError(path, `metadata 'optimizer' must be {kind: string, step: integer ≥ 0, lr: number, slots: string[]}, got ${JSON.stringify(v)?.slice(0, 200)}`);
  return o as { kind: string; step: number; lr: number; slots: string[] };
}
