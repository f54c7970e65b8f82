/**
 * Where output may go. Every command that creates a folder or a file (train, average, export
 * --out; download --dir; compare --out) checks its path here before any mkdirSync: Node 20's
 * recursive mkdirSync spins forever below /proc (a folder there can be neither found nor made),
 * and a folder below a dangling symbolic link ends in a raw EEXIST instead of an error that
 * names the link.
 */
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { DataError } from '../errors.js';

/** Kernel pseudo-filesystems: nothing a run writes belongs there. */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];
/** Real file systems mounted below a pseudo root (/dev/shm is an ordinary tmpfs). */
const ALLOWED_BELOW = ['/dev/shm'];

function within(path: string, root: string): boolean {
  return path === root || path.startsWith(root + sep);
}

/**
 * What is wrong with `path` as a place to create output, or null when nothing is: it must not
 * resolve (after following the symbolic links of its existing part) into /proc, /sys or /dev,
 * and no existing part of it may be a symbolic link that leads nowhere. Reads the file system,
 * creates nothing.
 */
export function outputPathProblem(path: string): string | null {
  const abs = resolve(path);
  // The deepest part that exists (as an entry: lstat, so a dangling link is found, not skipped).
  let up = abs;
  const below: string[] = [];
  for (;;) {
    let isLink = false;
    let found = true;
    try {
      isLink = lstatSync(up).isSymbolicLink();
    } catch {
      found = false;
    }
    if (found) {
      if (isLink && !existsSync(up)) {
        let target = '?';
        try {
          target = readlinkSync(up);
        } catch {
          // unreadable: the message still names the link
        }
        return `${up === abs ? 'is' : 'lies below'} a symbolic link that leads nowhere (${up} → ${target})`;
      }
      break;
    }
    const parent = dirname(up);
    if (parent === up) break;
    below.unshift(basename(up));
    up = parent;
  }
  let real: string;
  try {
    real = join(realpathSync(up), ...below);
  } catch (e) {
    return `cannot be resolved (${(e as NodeJS.ErrnoException).code ?? (e as Error).message} at ${up})`;
  }
  if (ALLOWED_BELOW.some((ok) => within(real, ok))) return null;
  const root = PSEUDO_ROOTS.find((r) => within(real, r));
  return root === undefined ? null : `resolves to ${real}, inside ${root} (a kernel pseudo-filesystem, not a place for output)`;
}

/**
 * Refuses an output path (see outputPathProblem) with a DataError that names it; returns the
 * absolute path. Call it before creating anything there.
 */
export function checkOutputPath(path: string, what = 'output'): string {
  const problem = outputPathProblem(path);
  if (problem !== null) throw new DataError(`${what} ${path}`, problem);
  return resolve(path);
}
