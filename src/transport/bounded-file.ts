/**
 * Reading a file a user names (configuration, TLS material) with a bound: a path such as
 * /dev/zero or /dev/urandom, or a huge file named by mistake, must give an error, not fill the
 * process's memory until it dies.
 *
 * And with a deadline: the read is synchronous (configuration is read before anything runs), so
 * a pipe that nobody writes to (a named FIFO, `--config <(cmd)` whose command hangs) would block
 * the process for good, signals included. The file is opened non-blocking: a pipe is read as
 * its data comes, up to `timeoutMs` in all; a FIFO with no writer reads as empty.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { HiqliteError } from '../lib/errors.js';

/** How long reading a file a user names may take (a pipe's writer may be slow), by default. */
export const FILE_READ_TIMEOUT_MS_DEFAULT = 10_000;

/** What readFileBounded sleeps on between two reads of a pipe with nothing in it yet. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** The most a PEM file (certificate, key, CA bundle) may hold. */
export const PEM_FILE_BYTES_MAX = 1024 * 1024;

/** Thrown by readFileBounded for a file over its bound (an endless one included). */
export class FileTooLargeError extends Error {
  override readonly name = 'FileTooLargeError';
  constructor(readonly bytesMax: number) {
    super(`it is larger than ${bytesMax} bytes`);
  }
}

/**
 * The file's bytes; FileTooLargeError when it holds more than `bytesMax`, an Error saying so
 * when a pipe has not ended within `timeoutMs`.
 */
export function readFileBounded(
  path: string,
  bytesMax: number,
  timeoutMs = FILE_READ_TIMEOUT_MS_DEFAULT,
): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.allocUnsafe(64 * 1024);
    const deadline = performance.now() + timeoutMs;
    // Bounded: every round adds at least one byte or waits a few ms before the deadline, and the
    // total stops the loop past the limit.
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        if (performance.now() >= deadline)
          throw new Error(
            `nothing more came within ${timeoutMs} ms (a pipe whose writer neither writes nor closes it)`,
          );
        Atomics.wait(PAUSE, 0, 0, 5);
        continue;
      }
      if (n === 0) break;
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
