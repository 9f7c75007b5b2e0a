/**
 * Small metadata files (hard state, log meta), replaced atomically: write a temporary file, fsync it, rename it over the old
 * one, fsync the directory. After a crash the file holds either the old or the new content,
 * never a mix (rename is atomic on POSIX file systems; the directory fsync makes the rename
 * itself durable).
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { PRIVATE_FILE_MODE } from '../lib/file-modes.js';

const U32_LIMIT = 2 ** 32;

/** Suffix of temporary files; any left in the directory after a crash are deleted at open. */
export const TEMP_SUFFIX = '.tmp';

export async function writeFileAtomic(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const temp = join(dir, name + TEMP_SUFFIX);
  const fh = await open(temp, 'w', PRIVATE_FILE_MODE);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(temp, join(dir, name));
  await fsyncDir(dir);
}

/** Makes creations, renames and deletions of directory entries durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The content of `path`, or null when it does not exist. */
export async function readFileOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes a safe integer as two little-endian u32 words (low, high). */
export function writeU53(b: Buffer, at: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${value} is not a non-negative safe integer`);
  b.writeUInt32LE(value % U32_LIMIT, at);
  b.writeUInt32LE(Math.floor(value / U32_LIMIT), at + 4);
}

/** The integer at `at`, or null when it is not below 2^53. */
export function readU53(b: Buffer, at: number): number | null {
  const high = b.readUInt32LE(at + 4);
  if (high >= 2 ** 21) return null;
  return high * U32_LIMIT + b.readUInt32LE(at);
}
