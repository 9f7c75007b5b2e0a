/**
 * One process per data directory. The lock file holds the owner's pid; it is created with
 * O_EXCL and removed on a clean shutdown. Finding a lock whose process is gone means the last
 * run ended uncleanly (kill -9, power loss): that is reported, and recovery (torn-tail checks of
 * the log, the state machine's applied index) does the rest.
 *
 * "Gone" is decided with care, since a wrong "in use" keeps a node from starting at all: on Linux
 * the file also holds the owner's start time (clock ticks since boot, /proc/<pid>/stat) and the
 * boot's id, so a pid that another process took after a crash, a reboot or a container restart
 * (containers hand out the same few pids every run) is not the owner; and a zombie (killed, not
 * yet reaped by its parent) is gone. It also holds the directory's identity (device and inode):
 * a lock copied with the directory (`cp -a` of a running node's data_dir) names a live process
 * that holds another directory, not this one (found from outside: the copy was refused as "in use
 * by process N", N being the node whose directory was copied). A file of an earlier version
 * holds the pid alone, or the pid, start time and boot id.
 */
import { readFileSync, statSync } from 'node:fs';
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
      await fh.writeFile(lockText(process.pid, dirIdentity(dir)));
      await fh.sync();
      await fh.close();
      return { uncleanShutdown: unclean, release: () => rm(path, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw unusable(dir, e);
      const owner = liveOwner(await readFile(path, 'utf8').catch(() => ''), dirIdentity(dir));
      if (owner !== null) {
        const who =
          owner === process.pid
            ? 'this process: a node started in it holds it (close() that node first)'
            : `process ${owner}`;
        throw new HiqliteError('HQL_INVALID_CONFIG', `data_dir ${dir} is in use by ${who}`, {
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

/** `pid start boot dir` where /proc tells them, else `pid`. */
function lockText(pid: number, dir: string | null): string {
  const stat = procStat(pid);
  const boot = bootId();
  if (stat === null || boot === null) return String(pid);
  return dir === null ? `${pid} ${stat.start} ${boot}` : `${pid} ${stat.start} ${boot} ${dir}`;
}

/** `device:inode` of the directory, or null when it cannot be read. */
function dirIdentity(dir: string): string | null {
  try {
    const st = statSync(dir, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/**
 * The pid of the process that holds the lock, or null when that process is gone or the lock
 * was made for another directory (`dir`: this directory's identity, when known).
 */
function liveOwner(text: string, dir: string | null): number | null {
  const [pidText, start, boot, lockedDir] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !alive(pid)) return null;
  if (lockedDir !== undefined && dir !== null && lockedDir !== dir) return null;
  const stat = procStat(pid);
  // This pid: another node of this very process holds it (a module run again by a dev server's
  // reload) when the start time says so; else an earlier run that had this pid (a container).
  if (pid === process.pid && (stat === null || start !== stat.start || boot !== bootId())) return null;
  if (stat === null) return pid; // no /proc: the pid's liveness is all there is
  if (stat.state === 'Z' || stat.state === 'X') return null; // killed, not yet reaped
  if (start !== undefined && boot !== undefined && (start !== stat.start || boot !== bootId())) return null;
  return pid;
}

/** State and start time (field 22, clock ticks since boot) of /proc/<pid>/stat, or null. */
function procStat(pid: number): { state: string; start: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; fields follow the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const start = fields[19];
  return state === undefined || start === undefined || !/^\d+$/.test(start) ? null : { state, start };
}

function bootId(): string | null {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    return /^[0-9a-f-]{8,64}$/.test(id) ? id : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
