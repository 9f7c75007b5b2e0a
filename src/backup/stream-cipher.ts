/**
 * AES-256-GCM in the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015; as in age and
 * Tink): the plaintext is cut into chunks of `chunkBytes`; chunk i is sealed with the nonce
 * `prefix(7) ‖ i (u32 BE) ‖ last (1 byte: 1 for the final chunk, else 0)` and the file header as
 * associated data, and stored as ciphertext ‖ 16-byte tag. So:
 * - a flipped byte anywhere (header, ciphertext, tag) fails that chunk (header: every chunk);
 * - swapped or reordered chunks fail (the counter is in the nonce);
 * - a file cut after any chunk fails: the chunk now at the end was sealed as not-last, so it does
 *   not open as the final one; bytes appended after the final chunk fail likewise.
 * Memory: one chunk plus what the source hands over at once, whatever the length of the stream.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { assert } from '../lib/assert.js';
import { backupCorrupt } from './backup-errors.js';
import {
  type BackupHeader,
  decodeHeader,
  HEADER_BYTES_MAX,
  headerLength,
  NONCE_PREFIX_BYTES,
} from './format.js';
import { deriveBackupKey, type KeyRing } from './key-ring.js';

export const TAG_BYTES = 16;
const CHUNKS_MAX = 2 ** 32;

function nonce(prefix: Uint8Array, counter: number, last: boolean): Buffer {
  assert(prefix.length === NONCE_PREFIX_BYTES, 'nonce prefix has 7 bytes');
  assert(Number.isInteger(counter) && counter >= 0 && counter < CHUNKS_MAX, 'chunk counter fits in 32 bits');
  const n = Buffer.alloc(12);
  Buffer.from(prefix).copy(n, 0);
  n.writeUInt32BE(counter, 7);
  n.writeUInt8(last ? 1 : 0, 11);
  return n;
}

/** Collects pieces of any size and hands out byte ranges of a requested length (bounded copies). */
export class ByteQueue {
  private pieces: Buffer[] = [];
  private head = 0;
  length = 0;

  push(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.pieces.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
    this.length += piece.length;
  }

  /** The next `n` bytes (n <= length). */
  take(n: number): Buffer {
    assert(n >= 0 && n <= this.length, 'take within what is queued');
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const p = this.pieces[this.head] as Buffer;
      const k = Math.min(p.length, n - filled);
      p.copy(out, filled, 0, k);
      filled += k;
      if (k === p.length) this.pieces[this.head++] = undefined as unknown as Buffer;
      else this.pieces[this.head] = p.subarray(k);
    }
    if (this.head > 64) {
      this.pieces = this.pieces.slice(this.head);
      this.head = 0;
    }
    this.length -= n;
    return out;
  }
}

export interface EncryptInput {
  /** The encoded header (format.ts), written first and authenticated with every chunk. */
  readonly header: Buffer;
  readonly fields: BackupHeader;
  /** The configured key the header's key id names (the per-backup key is derived from it). */
  readonly key: Uint8Array;
}

/** The backup file's bytes: the header, then the sealed chunks of `plain`. */
export async function* encryptStream(
  plain: AsyncIterable<Uint8Array>,
  input: EncryptInput,
): AsyncGenerator<Buffer> {
  const { header, fields } = input;
  const key = deriveBackupKey(input.key, fields.salt);
  // A sealed chunk is handed out as two pieces, ciphertext then tag (no copy to join them).
  const seal = (chunk: Buffer, counter: number, last: boolean): [Buffer, Buffer] => {
    const c = createCipheriv('aes-256-gcm', key, nonce(fields.noncePrefix, counter, last), {
      authTagLength: TAG_BYTES,
    });
    c.setAAD(header);
    const body = c.update(chunk);
    const final = c.final();
    assert(final.length === 0, 'GCM adds no bytes at final');
    return [body, c.getAuthTag()];
  };
  yield header;
  const queue = new ByteQueue();
  let counter = 0;
  // A full chunk is held back until more plaintext shows it is not the last one.
  let held: Buffer | null = null;
  for await (const piece of plain) {
    queue.push(piece);
    while (queue.length >= fields.chunkBytes) {
      if (held !== null) yield* seal(held, counter++, false);
      held = queue.take(fields.chunkBytes);
    }
  }
  if (queue.length > 0) {
    if (held !== null) yield* seal(held, counter++, false);
    held = queue.take(queue.length);
  }
  yield* seal(held ?? Buffer.alloc(0), counter, true);
}

export interface DecryptOptions {
  readonly keys: KeyRing;
  /** Names the backup in messages (`backup <name>`, `file <path>`). */
  readonly label: string;
  /**
   * Called once the header is read and its key found, before any chunk is opened: the fields
   * are not authenticated yet (use them for progress only until the stream ended without error).
   */
  readonly onHeader?: (header: BackupHeader) => void;
}

/**
 * The plaintext of a backup file, chunk by chunk, each authenticated before it is yielded. The
 * stream as a whole is authentic only once the generator returned without throwing: a caller
 * must not act on what it got before that (restore writes to a temporary file first).
 */
export async function* decryptStream(
  source: AsyncIterable<Uint8Array>,
  options: DecryptOptions,
): AsyncGenerator<Buffer> {
  const { label } = options;
  const queue = new ByteQueue();
  const iterator = source[Symbol.asyncIterator]();
  let ended = false;
  const fill = async (n: number): Promise<boolean> => {
    while (queue.length < n && !ended) {
      const r = await iterator.next();
      if (r.done === true) ended = true;
      else queue.push(r.value);
    }
    return queue.length >= n;
  };
  try {
    if (!(await fill(12)))
      throw backupCorrupt(`${label} is truncated: ${queue.length} bytes, shorter than a header`);
    const prefix = queue.take(12);
    const length = headerLength(prefix, label);
    assert(length <= HEADER_BYTES_MAX, 'header length checked');
    if (!(await fill(length - 12))) throw backupCorrupt(`${label} is truncated inside its header`);
    const header = Buffer.concat([prefix, queue.take(length - 12)]);
    const fields = decodeHeader(header, label);
    const key = deriveBackupKey(options.keys.get(fields.keyId, label), fields.salt);
    options.onHeader?.(fields);
    const frame = fields.chunkBytes + TAG_BYTES;
    const open = (sealed: Buffer, counter: number, last: boolean): Buffer | null => {
      const d = createDecipheriv('aes-256-gcm', key, nonce(fields.noncePrefix, counter, last), {
        authTagLength: TAG_BYTES,
      });
      d.setAAD(header);
      d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const body = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      try {
        d.final();
      } catch {
        return null;
      }
      return body;
    };
    const where = (counter: number) => `chunk ${counter} (byte ${length + counter * frame})`;
    const fail = (sealed: Buffer, counter: number, last: boolean): never => {
      // Say what happened when the other flag opens it: the file was cut or has bytes appended.
      if (open(sealed, counter, !last) !== null) {
        throw backupCorrupt(
          last
            ? `${label} is truncated: it ends after ${where(counter)}, which is not its final chunk`
            : `${label} has bytes after its final chunk, ${where(counter)}`,
        );
      }
      // The stream ended inside this chunk: it may be cut short as well as damaged.
      const cut = last ? ' or truncated' : '';
      if (counter === 0)
        throw backupCorrupt(
          `${label}: ${where(0)} does not authenticate: key '${fields.keyId}' is not the key this backup was made with, or the file is damaged${cut}`,
        );
      throw backupCorrupt(
        `${label}: ${where(counter)} does not authenticate: the file is damaged${cut} or its chunks were reordered`,
      );
    };
    let counter = 0;
    for (;;) {
      // More than one frame queued: the first one is not the last chunk.
      await fill(frame + 1);
      if (queue.length <= frame) break;
      const sealed = queue.take(frame);
      const body = open(sealed, counter, false) ?? fail(sealed, counter, false);
      counter++;
      if (counter >= CHUNKS_MAX) throw backupCorrupt(`${label} has more than 2^32 chunks`);
      yield body;
    }
    if (queue.length < TAG_BYTES) {
      throw backupCorrupt(
        queue.length === 0
          ? `${label} is truncated: it ends after ${counter === 0 ? 'its header' : where(counter - 1)}, with no final chunk`
          : `${label} is truncated inside ${where(counter)}`,
      );
    }
    const sealed = queue.take(queue.length);
    yield open(sealed, counter, true) ?? fail(sealed, counter, true);
  } finally {
    if (!ended) await iterator.return?.();
  }
}
