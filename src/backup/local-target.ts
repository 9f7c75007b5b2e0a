/**
 * The local backup target: files in `<data_dir>/state_machine/backups`. A file is written as
 * `<name>.partial`, fsynced, renamed and the directory fsynced, so a listed backup is always
 * whole; leftovers of a crash (`*.partial`) are removed when the target opens.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { abortedError, HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../lib/file-modes.js';
import { fsyncDir } from '../storage/atomic-file.js';
import { unusableDirReason } from '../storage/file-paths.js';
import { backupNotFound } from './backup-errors.js';
import { parseBackupName } from './names.js';
import type { BackupObject, BackupTarget, BackupTargetCallOptions } from './target.js';

const READ_CHUNK_BYTES = 1024 * 1024;

export class LocalBackupTarget implements BackupTarget {
  readonly kind = 'local';
  readonly description: string;

  private constructor(readonly dir: string) {
    this.description = `local ${dir}`;
  }

  /**
   * The folder of the node that owns it (holding its data directory's lock): made if missing, and
   * the leftovers of a crash removed. `reader: true` is for a process beside a running node (the
   * backup commands `list` and `download`): it changes nothing, since what looks like a leftover
   * may be the `.partial` of a backup the node is writing this moment (removing it failed that
   * backup), and a missing folder is an empty one.
   */
  static async open(dir: string, o: { readonly reader?: boolean } = {}): Promise<LocalBackupTarget> {
    if (o.reader === true) {
      const s = await stat(dir).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw unusableFolder(dir, e);
      });
      if (s !== null && !s.isDirectory())
        throw new HiqliteError(
          'HQL_INVALID_CONFIG',
          `the backups folder ${dir} (under data_dir): exists and is not a directory`,
          { retryable: false },
        );
      return new LocalBackupTarget(dir);
    }
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE }).catch((e: unknown) => {
      throw unusableFolder(dir, e);
    });
    for (const name of await readdir(dir)) {
      if (name.endsWith('.partial') || name.endsWith('.partial-journal'))
        await rm(join(dir, name), { force: true });
    }
    return new LocalBackupTarget(dir);
  }

  async put(
    name: string,
    body: AsyncIterable<Uint8Array>,
    options: BackupTargetCallOptions = {},
  ): Promise<BackupObject> {
    checkName(name);
    const path = join(this.dir, name);
    const partial = `${path}.partial`;
    const fh = await open(partial, 'w', PRIVATE_FILE_MODE);
    let bytes = 0;
    try {
      try {
        for await (const chunk of body) {
          if (options.signal?.aborted === true) throw aborted();
          await fh.write(chunk);
          bytes += chunk.length;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(partial, path);
      await fsyncDir(this.dir);
    } catch (e) {
      await rm(partial, { force: true });
      throw e;
    }
    return { name, bytes, modifiedMs: (await stat(path)).mtimeMs };
  }

  async list(): Promise<BackupObject[]> {
    const out: BackupObject[] = [];
    // A reader's folder may not exist yet (no backup was ever taken on this node).
    const names = await readdir(this.dir).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
      throw e;
    });
    for (const name of names) {
      if (parseBackupName(name) === null) continue;
      const s = await stat(join(this.dir, name)).catch(() => null);
      if (s?.isFile() === true) out.push({ name, bytes: s.size, modifiedMs: s.mtimeMs });
    }
    return out;
  }

  async get(name: string): Promise<AsyncIterable<Uint8Array>> {
    checkName(name);
    const path = join(this.dir, name);
    const s = await stat(path).catch(() => null);
    if (s === null || !s.isFile()) throw backupNotFound(`no backup '${name}' in ${this.description}`);
    return createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  }

  async delete(name: string): Promise<void> {
    checkName(name);
    await rm(join(this.dir, name), { force: true });
  }
}

/** <data_dir>/state_machine/backups under a data_dir that is a file, or not writable. */
function unusableFolder(dir: string, e: unknown): unknown {
  const reason = unusableDirReason(e);
  if (reason === null) return e;
  return new HiqliteError(
    'HQL_INVALID_CONFIG',
    `the backups folder ${dir} (under data_dir): ${reason} (${(e as Error).message})`,
    { retryable: false, cause: e },
  );
}

/** Only backup names (no paths): a name from a request can never reach outside the folder. */
function checkName(name: string): void {
  if (parseBackupName(name) === null)
    throw backupNotFound(`'${name}' is not a backup name (backup_<time>_i<index>_n<node>.hqbak)`);
}

function aborted(): HiqliteError {
  return abortedError('the backup upload was aborted');
}
