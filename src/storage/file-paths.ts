/**
 * Whether a path lies inside a directory, as the file system sees it: relative paths resolve
 * against the working directory and the symbolic links of what exists are followed, so
 * `./data/../data/x` and a link into the directory count as inside. Used where a command is about
 * to replace or delete what a node owns (a download's destination, a restore's source).
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** `path` after resolving the links of its longest existing prefix; the rest is appended as is. */
export function realPathOf(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(realPathOf(parent), basename(abs));
  }
}

/** Whether `path` is `dir` itself or lies under it. */
export function isInsideDir(path: string, dir: string): boolean {
  const rel = relative(realPathOf(dir), realPathOf(path));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * Why a directory could not be made (or a file in it created), in words, for the errnos that
 * mean the path is unusable rather than the disk failing; null for the others.
 */
export function unusableDirReason(e: unknown): string | null {
  switch ((e as NodeJS.ErrnoException | null)?.code) {
    case 'EEXIST':
      return 'exists and is not a directory';
    case 'ENOENT':
      // A parent exists, yet the folder cannot be made there (a path under /proc).
      return 'cannot be created there';
    case 'ENOTDIR':
      return 'a part of its path is a file, not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'is on a read-only file system';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    case 'ELOOP':
      return 'too many symbolic links in the path';
    case 'EISDIR':
      return 'a file to be written there is a directory';
    default:
      return null;
  }
}
