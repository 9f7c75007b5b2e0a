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
