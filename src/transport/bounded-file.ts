/**
 * Reading a file a user names (configuration, TLS material) with a bound: a path such as
 * /dev/zero or /dev/urandom, or a huge file named by mistake, must give an error, not fill the
 * process's memory until it dies.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { HiqliteError } from '../lib/errors.js';

/** The most a PEM file (certificate, key, CA bundle) may hold. */
export const PEM_FILE_BYTES_MAX = 1024 * 1024;

/** Thrown by readFileBounded for a file over its bound (an endless one included). */
export class FileTooLargeError extends Error {
  override readonly name = 'FileTooLargeError';
  constructor(readonly bytesMax: number) {
    super(`it is larger than ${bytesMax} bytes`);
  }
}

/** The file's bytes; FileTooLargeError when it holds more than `bytesMax`. */
export function readFileBounded(path: string, bytesMax: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.allocUnsafe(64 * 1024);
    // Bounded: every round adds at least one byte, and the total stops the loop past the limit.
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) {
      total += n;
      if (total > bytesMax) throw new FileTooLargeError(bytesMax);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * A PEM file a setting names (`key`: `tls.raft.certFile`, `tls.caFile`, …), bounded by
 * PEM_FILE_BYTES_MAX; HQL_INVALID_CONFIG naming the setting and the path when it cannot be read.
 */
export function readPemFile(path: string, key: string): Buffer {
  try {
    return readFileBounded(path, PEM_FILE_BYTES_MAX);
  } catch (e) {
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `${key} ${JSON.stringify(path)} cannot be read: ${e instanceof Error ? e.message : String(e)}`,
      { retryable: false },
    );
  }
}
