/**
 * `migrate('<folder>')`: a folder of `<id>_<name>.sql` files (as in the Rust project), applied in
 * id order. Each file is read as the user wrote it or refused with a typed error naming it: a
 * file that is not UTF-8 (a Latin-1 `é` read as U+FFFD would be a different migration than the
 * file, silently), a `.sql` that is a folder, a FIFO (reading it would wait for a writer) or
 * larger than any log entry can be. A UTF-8 byte order mark is dropped, so saving the file with
 * or without one does not change its checksum.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HiqliteError } from '../lib/errors.js';
import { decodeUtf8 } from '../lib/utf8.js';
import { INTEGER_SETTINGS } from '../node/config/config-keys.js';
import type { MigrationInput } from './client.js';

/** No migration can be larger than the largest log entry a node can be configured to take. */
const MIGRATION_FILE_BYTES_MAX = (() => {
  const s = INTEGER_SETTINGS.find((k) => k.key === 'entryBytesMax');
  if (s === undefined) throw new Error('entryBytesMax is an integer setting');
  return s.max;
})();

const FILE_NAME = /^(\d+)_(.+)\.sql$/;

export async function readMigrationsFolder(dir: string): Promise<MigrationInput[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (e) {
    throw invalid(
      `migrate: the migrations folder ${JSON.stringify(dir)} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      e,
    );
  }
  const out: MigrationInput[] = [];
  // Each migration's file as it is named (02_two.sql, not 2_two.sql rebuilt from its id).
  const fileOf = new Map<MigrationInput, string>();
  for (const file of files.sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE_NAME.exec(file);
    if (m === null) {
      throw new HiqliteError('HQL_MIGRATION_ORDER', `migration file ${file} is not named <id>_<name>.sql`, {
        retryable: false,
      });
    }
    const id = Number(m[1]);
    if (!Number.isSafeInteger(id) || id < 1)
      throw new HiqliteError(
        'HQL_MIGRATION_ORDER',
        `migration file ${file}: its id ${m[1]} is not a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`,
        { retryable: false },
      );
    const migration = { id, name: m[2] as string, sql: await readSqlFile(join(dir, file), file) };
    fileOf.set(migration, file);
    out.push(migration);
  }
  const sorted = out.sort((a, b) => a.id - b.id);
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1] as MigrationInput, sorted[i] as MigrationInput];
    if (a.id === b.id)
      throw new HiqliteError(
        'HQL_MIGRATION_ORDER',
        `migration files ${fileOf.get(a)} and ${fileOf.get(b)} have the same id ${a.id} (ids are compared as numbers: 1 and 01 are one id)`,
        { retryable: false },
      );
  }
  return sorted;
}

async function readSqlFile(path: string, file: string): Promise<string> {
  let bytes: Buffer;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw invalid(`migrate: migration file ${file} is not a regular file`);
    if (s.size > MIGRATION_FILE_BYTES_MAX)
      throw invalid(
        `migrate: migration file ${file} has ${s.size} bytes, more than any log entry can hold (${MIGRATION_FILE_BYTES_MAX})`,
      );
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof HiqliteError) throw e;
    throw invalid(
      `migrate: migration file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      e,
    );
  }
  const text = decodeUtf8(bytes);
  if (text === null)
    throw invalid(
      `migrate: migration file ${file} is not UTF-8 text (save it as UTF-8: the SQL run would differ from the file)`,
    );
  return text;
}

function invalid(message: string, cause?: unknown): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, {
    retryable: false,
    ...(cause === undefined ? {} : { cause }),
  });
}
