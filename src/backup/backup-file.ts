/**
 * A backup file end to end: database file → gzip → AES-256-GCM STREAM (stream-cipher.ts) → the
 * bytes a target stores, and back: stored bytes → authenticated chunks → gunzip → a database
 * file that is checked (size, `PRAGMA integrity_check`, `_hq_meta` at the header's index) before
 * it is renamed into place. Both directions stream: memory stays at a few chunks.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip, constants as zlibConstants } from 'node:zlib';
import { abortedError, HiqliteError } from '../lib/errors.js';
import { PRIVATE_FILE_MODE } from '../lib/file-modes.js';
import { backupCorrupt } from './backup-errors.js';
import { checkCopy } from './copy-steps.js';
import {
  type BackupHeader,
  CHUNK_BYTES_DEFAULT,
  encodeHeader,
  FORMAT_VERSION,
  NONCE_PREFIX_BYTES,
  SALT_BYTES,
} from './format.js';
import type { KeyRing } from './key-ring.js';
import { parseBackupName } from './names.js';
import { decryptStream, encryptStream } from './stream-cipher.js';

/**
 * gzip level 1 (the default of `backup_gzip_level`): SQLite pages compress well even at the
 * fastest level, and the backup's speed is bound by compression (docs/BENCHMARKS.md, "Backups");
 * 0 stores the pages uncompressed (still gzip framing, so a restore reads either).
 */
export const GZIP_LEVEL = 1;
const READ_CHUNK_BYTES = 1024 * 1024;

/** What a new backup's header says of the copy (the rest of the header is made here). */
export interface BackupSource
  extends Pick<
    BackupHeader,
    'clusterId' | 'logIndex' | 'logTerm' | 'schemaVersion' | 'createdMs' | 'databaseBytes' | 'nodeId'
  > {
  readonly dbPath: string;
  readonly keys: KeyRing;
  readonly chunkBytes?: number;
  /** 0 to 9; default GZIP_LEVEL. */
  readonly gzipLevel?: number;
  /**
   * The integrity check of the copy, running while it is streamed (db-copy.ts, startCopy): the
   * body ends only once it passed, and fails when it fails, so no target completes the backup.
   */
  readonly checked?: Promise<unknown>;
}

/** The header of a new backup and its file bytes (streamed; read the file once). */
export function backupFileStream(s: BackupSource): { header: BackupHeader; body: AsyncIterable<Buffer> } {
  const { id, key } = s.keys.active();
  const header: BackupHeader = {
    formatVersion: FORMAT_VERSION,
    clusterId: s.clusterId,
    logIndex: s.logIndex,
    logTerm: s.logTerm,
    schemaVersion: s.schemaVersion,
    createdMs: s.createdMs,
    databaseBytes: s.databaseBytes,
    nodeId: s.nodeId,
    chunkBytes: s.chunkBytes ?? CHUNK_BYTES_DEFAULT,
    salt: randomBytes(SALT_BYTES),
    noncePrefix: randomBytes(NONCE_PREFIX_BYTES),
    keyId: id,
  };
  const encoded = encodeHeader(header);
  // Awaited at the body's end; a body abandoned before then must not leave it unhandled.
  s.checked?.catch(() => {});
  const body = (async function* () {
    const gzip = createGzip({ level: s.gzipLevel ?? GZIP_LEVEL, chunkSize: 256 * 1024 });
    const feeding = pipeline(createReadStream(s.dbPath, { highWaterMark: READ_CHUNK_BYTES }), gzip);
    // An error of the file read reaches the iteration of gzip (pipeline destroys it with it).
    feeding.catch(() => {});
    yield* encryptStream(gzip, { header: encoded, fields: header, key });
    await feeding;
    await s.checked;
  })();
  return { header, body };
}

export interface RestoreFileOptions {
  readonly keys: KeyRing;
  readonly label: string;
  /** Where the checked database ends up (written as `<outPath>.partial` first, renamed at the end). */
  readonly outPath: string;
  /** Stored bytes read so far, and the header once known (for progress). */
  readonly onProgress?: (bytesRead: number) => void;
  readonly onHeader?: (header: BackupHeader) => void;
  readonly signal?: AbortSignal;
  /**
   * The name it is stored under: when it is a backup's name, what it says (log index, time,
   * node) must be what the authenticated header says, else HQL_BACKUP_CORRUPT. A backup renamed
   * in the bucket (by anyone who can write there, without the key) passed as another: an old one
   * listed and restored as the newest (found by an outside probe).
   */
  readonly name?: string;
}

/** Why `header` does not belong under `name`, or null (also for a name that is no backup's). */
export function nameMismatch(name: string, header: BackupHeader): string | null {
  const n = parseBackupName(basename(name));
  if (n === null) return null;
  if (n.logIndex === header.logIndex && n.createdMs === header.createdMs && n.nodeId === header.nodeId)
    return null;
  const says = (x: { logIndex: number; createdMs: number; nodeId: number }) =>
    `log index ${x.logIndex}, taken ${new Date(x.createdMs).toISOString()} on node ${x.nodeId}`;
  return `its name says ${says(n)}, its authenticated header ${says(header)}: it was renamed; restore it by a name that matches its header, if it is the backup you want`;
}

/**
 * Decrypts and decompresses a backup into a checked database file at `outPath`. Throws (and
 * leaves nothing at `outPath`) unless every chunk authenticated, the size is the header's, and
 * the database passes `PRAGMA integrity_check` and holds the header's log index.
 */
export async function restoreBackupFile(
  source: AsyncIterable<Uint8Array>,
  o: RestoreFileOptions,
): Promise<{ header: BackupHeader; databaseBytes: number }> {
  const partial = `${o.outPath}.partial`;
  await rm(partial, { force: true });
  let header: BackupHeader | null = null;
  let read = 0;
  const counted = (async function* () {
    for await (const piece of source) {
      read += piece.length;
      o.onProgress?.(read);
      yield piece;
    }
  })();
  const plain = decryptStream(counted, {
    keys: o.keys,
    label: o.label,
    onHeader: (h) => {
      const mismatch = o.name === undefined ? null : nameMismatch(o.name, h);
      if (mismatch !== null) throw backupCorrupt(`${o.label}: ${mismatch}`);
      header = h;
      o.onHeader?.(h);
    },
  });
  let written = 0;
  const bound = new Transform({
    transform(chunk: Buffer, _enc, done) {
      written += chunk.length;
      const limit = (header as BackupHeader | null)?.databaseBytes ?? 0;
      if (written > limit)
        done(backupCorrupt(`${o.label} decompresses to more than the ${limit} bytes its header states`));
      else done(null, chunk);
    },
  });
  try {
    const out = createWriteStream(partial, { mode: PRIVATE_FILE_MODE, flags: 'wx' });
    const gunzip = createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const input = Readable.from(plain, { objectMode: false });
    if (o.signal === undefined) await pipeline(input, gunzip, bound, out);
    else await pipeline(input, gunzip, bound, out, { signal: o.signal });
    const h = header as BackupHeader | null;
    if (h === null) throw backupCorrupt(`${o.label} has no header`);
    if (written !== h.databaseBytes)
      throw backupCorrupt(
        `${o.label} decompresses to ${written} bytes, its header states ${h.databaseBytes}`,
      );
    const fh = await open(partial, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const info = checkCopy(partial);
    if (info.logIndex !== h.logIndex || info.logTerm !== h.logTerm) {
      throw backupCorrupt(
        `${o.label}: the database holds log index ${info.logIndex} (term ${info.logTerm}), its header says ${h.logIndex} (term ${h.logTerm})`,
      );
    }
    await rename(partial, o.outPath);
    return { header: h, databaseBytes: written };
  } catch (e) {
    await rm(partial, { force: true });
    await rm(`${partial}-journal`, { force: true });
    throw asBackupError(e, o.label);
  }
}

/** zlib's and the file system's errors in terms of the backup. */
function asBackupError(e: unknown, label: string): unknown {
  if (e instanceof HiqliteError) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_'))
    return backupCorrupt(`${label}: its compressed data is damaged (${(e as Error).message})`, e);
  if ((e as Error).name === 'AbortError') return abortedError(`${label}: restore aborted`, e);
  return new HiqliteError('HQL_IO', `${label}: ${(e as Error).message}`, { retryable: false, cause: e });
}
