/**
 * One process per data directory. The lock file holds the owner's pid; it is created with
 * O_EXCL and removed on a clean shutdown. Finding a lock whose process is gone means the last
 * run ended uncleanly (kill -9, power loss): that is reported, and recovery (torn-tail checks of
 * the log, the state machine's applied index) does the rest.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../lib/file-modes.js';
import { unusableDirReason } from '../storage/file-paths.js';
import { makeDirsSync } from '../storage/make-dirs.js';

export interface DataDirLock {
  /** Whether the previous owner did not shut down cleanly. */
  readonly uncleanShutdown: boolean;
  release(): Promise<void>;
}

export async function lockDataDir(dir: string): Promise<DataDirLock> {
  try {
    makeDirsSync(dir, PRIVATE_DIR_MODE);
  } catch (e) {
    throw unusable(dir, e);
  }
  const path = join(dir, 'hiqlite.lock');
  let unclean = false;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', PRIVATE_FILE_MODE);
      await fh.writeFile(String(process.pid));
      await fh.sync();
      await fh.close();
      return { uncleanShutdown: unclean, release: () => rm(path, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw unusable(dir, e);
      const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new HiqliteError('HQL_INVALID_CONFIG', `data_dir ${dir} is in use by process ${owner}`, {
          retryable: false,
        });
      }
      unclean = true;
      await rm(path, { force: true });
    }
  }
  throw new HiqliteError('HQL_IO', `cannot lock data_dir ${dir}`, { retryable: true });
}

/**
 * The first thing a node (or a backup command) does with `data_dir` failed: a path that cannot be
 * a directory (a file, a device, under a file, not writable) is HQL_INVALID_CONFIG naming the key,
 * anything else HQL_IO; it was Node's bare `EEXIST: file already exists, mkdir …`.
 */
function unusable(dir: string, e: unknown): HiqliteError {
  const reason = unusableDirReason(e);
  const detail = e instanceof Error ? e.message : String(e);
  return reason === null
    ? new HiqliteError('HQL_IO', `data_dir ${dir}: ${detail}`, { retryable: false, cause: e })
    : new HiqliteError('HQL_INVALID_CONFIG', `data_dir ${dir}: ${reason} (${detail})`, {
        retryable: false,
        cause: e,
      });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
