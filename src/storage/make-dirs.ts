/**
 * Makes a folder and its missing parents, one level at a time, in a number of steps bounded by
 * the path's depth. Node's `mkdir(path, { recursive: true })` loops forever on a path it cannot
 * create under /proc (mkdir answers ENOENT there although the parent exists), so a `data_dir`
 * or a `generate-config --dir` under /proc hung `hiqlite serve`, `start()` and the CLI. Errors
 * are the file system's (with their errno `code`, for `unusableDirReason`): ENOENT for a level
 * that cannot be made, ENOTDIR for a file in the path, EEXIST when the path itself is a file.
 *
 * Synchronous only: its callers make a folder once, before they use it (start, a CLI command), and
 * one walk is simpler to keep right than a synchronous and an asynchronous copy of it.
 */
import { mkdirSync, type Stats, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

function notADirectory(p: string): Error {
  return Object.assign(new Error(`EEXIST: file already exists and is not a directory, mkdir '${p}'`), {
    code: 'EEXIST',
    syscall: 'mkdir',
    path: p,
  });
}

const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

function statOrNullSync(p: string): Stats | null {
  try {
    return statSync(p);
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return null;
    throw e;
  }
}

export function makeDirsSync(path: string, mode: number): void {
  // `path` and the parents that do not exist, deepest first (one stat per level).
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    const st = statOrNullSync(p);
    if (st !== null) {
      if (!st.isDirectory()) throw notADirectory(p);
      break;
    }
    missing.push(p);
    if (dirname(p) === p) break;
  }
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level, { mode });
    } catch (e) {
      // Made meanwhile by someone else: fine if it is a folder.
      if (codeOf(e) !== 'EEXIST' || statOrNullSync(level)?.isDirectory() !== true) throw e;
    }
  }
}
