/**
 * The STREAM construction of backups: any plaintext round-trips however the bytes are cut; one
 * flipped byte anywhere, truncation (also at a chunk boundary), reordered chunks, appended bytes
 * and a wrong or unknown key are refused with typed errors naming what failed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type BackupHeader,
  encodeHeader,
  FORMAT_VERSION,
  HEADER_FIXED_BYTES,
} from '../../src/backup/format.js';
import { KeyRing } from '../../src/backup/key-ring.js';
import { decryptStream, encryptStream, TAG_BYTES } from '../../src/backup/stream-cipher.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { collect, pieces, ring } from './helpers.js';

const CHUNK = 4096;

function header(keyId: string, chunkBytes = CHUNK): BackupHeader {
  return {
    formatVersion: FORMAT_VERSION,
    clusterId: '0123456789abcdef0123456789abcdef',
    logIndex: 42,
    logTerm: 3,
    schemaVersion: 7,
    createdMs: Date.UTC(2025, 0, 2, 2, 30),
    databaseBytes: 0,
    nodeId: 1,
    chunkBytes,
    salt: randomBytes(16),
    noncePrefix: randomBytes(7),
    keyId,
  };
}

async function seal(plain: Uint8Array, keys: { ring: KeyRing; keys: Map<string, Uint8Array> }, piece = 1000) {
  const { id, key } = keys.ring.active();
  const fields = header(id);
  return collect(encryptStream(pieces(plain, piece), { header: encodeHeader(fields), fields, key }));
}

function open(file: Uint8Array, keyRing: KeyRing, piece = 777): Promise<Buffer> {
  return collect(decryptStream(pieces(file, piece), { keys: keyRing, label: 'test backup' }));
}

async function refused(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

const HEADER_BYTES = HEADER_FIXED_BYTES + 2; // key id 'k1'
const FRAME = CHUNK + TAG_BYTES;

describe('backup STREAM encryption', () => {
  test('round-trips any plaintext, however the stored bytes and the plaintext are cut', async () => {
    const k = ring('k1');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5 * CHUNK + 10 }),
        fc.integer({ min: 1, max: 3 * CHUNK }),
        fc.integer({ min: 1, max: 3 * CHUNK }),
        async (size, inPiece, outPiece) => {
          const plain = randomBytes(size);
          const file = await seal(plain, k, inPiece);
          const chunks = Math.max(1, Math.ceil(size / CHUNK));
          assert.equal(file.length, HEADER_BYTES + size + chunks * TAG_BYTES);
          assert.deepEqual(await open(file, k.ring, outPiece), plain);
        },
      ),
      { numRuns: 60, seed: 1 },
    );
  });

  test('one flipped byte anywhere is refused', async () => {
    const k = ring('k1');
    const file = await seal(randomBytes(3 * CHUNK + 100), k);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: file.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, x) => {
          const bad = Buffer.from(file);
          bad[at] = (bad[at] as number) ^ x;
          await assert.rejects(
            open(bad, k.ring),
            (e: unknown) => e instanceof HiqliteError && e.code.startsWith('HQL_BACKUP_'),
          );
        },
      ),
      { numRuns: 200, seed: 2 },
    );
  });

  test('a flipped byte in chunk 2 is named with its chunk and offset', async () => {
    const k = ring('k1');
    const file = await seal(randomBytes(3 * CHUNK + 100), k);
    const bad = Buffer.from(file);
    const at = HEADER_BYTES + 2 * FRAME + 10;
    bad[at] = (bad[at] as number) ^ 1;
    await refused(open(bad, k.ring), 'HQL_BACKUP_CORRUPT', /chunk 2 \(byte \d+\) does not authenticate/);
  });

  test('a file cut at a chunk boundary is refused as truncated', async () => {
    const k = ring('k1');
    const file = await seal(randomBytes(3 * CHUNK + 100), k);
    await refused(
      open(file.subarray(0, HEADER_BYTES + 2 * FRAME), k.ring),
      'HQL_BACKUP_CORRUPT',
      /truncated: it ends after chunk 1 .*not its final chunk/,
    );
    await refused(
      open(file.subarray(0, HEADER_BYTES + FRAME + 100), k.ring),
      'HQL_BACKUP_CORRUPT',
      /chunk 1 \(byte \d+\) does not authenticate: the file is damaged or truncated/,
    );
    await refused(
      open(file.subarray(0, HEADER_BYTES), k.ring),
      'HQL_BACKUP_CORRUPT',
      /truncated: it ends after its header/,
    );
    await refused(open(file.subarray(0, 50), k.ring), 'HQL_BACKUP_CORRUPT', /truncated inside its header/);
    await refused(open(file.subarray(0, 0), k.ring), 'HQL_BACKUP_CORRUPT', /shorter than a header/);
  });

  test('swapped chunks are refused', async () => {
    const k = ring('k1');
    const file = await seal(randomBytes(3 * CHUNK + 100), k);
    const c1 = file.subarray(HEADER_BYTES + FRAME, HEADER_BYTES + 2 * FRAME);
    const c2 = file.subarray(HEADER_BYTES + 2 * FRAME, HEADER_BYTES + 3 * FRAME);
    const swapped = Buffer.concat([
      file.subarray(0, HEADER_BYTES + FRAME),
      c2,
      c1,
      file.subarray(HEADER_BYTES + 3 * FRAME),
    ]);
    await refused(open(swapped, k.ring), 'HQL_BACKUP_CORRUPT', /chunk 1 .*does not authenticate/);
  });

  test('bytes appended after the final chunk are refused', async () => {
    const k = ring('k1');
    const file = await seal(randomBytes(2 * CHUNK), k);
    const longer = Buffer.concat([file, file.subarray(HEADER_BYTES, HEADER_BYTES + FRAME)]);
    await refused(open(longer, k.ring), 'HQL_BACKUP_CORRUPT', /does not authenticate|after its final chunk/);
  });

  test('an unknown key id is HQL_BACKUP_KEY_UNKNOWN naming the ids; a wrong key under the id is corrupt at chunk 0', async () => {
    const k = ring('k1');
    const file = await seal(randomBytes(100), k);
    await refused(
      open(file, ring('k2').ring),
      'HQL_BACKUP_KEY_UNKNOWN',
      /key 'k1', which is not in enc_keys \(known: k2\)/,
    );
    await refused(
      open(file, KeyRing.of(new Map(), null)),
      'HQL_BACKUP_KEY_UNKNOWN',
      /no keys are configured/,
    );
    await refused(
      open(file, ring('k1').ring),
      'HQL_BACKUP_CORRUPT',
      /chunk 0 .*key 'k1' is not the key this backup was made with/,
    );
  });

  test('after a rotation, backups of the old key still decrypt', async () => {
    const old = ring('old');
    const plain = randomBytes(CHUNK + 5);
    const file = await seal(plain, old);
    const rotated = new Map(old.keys);
    rotated.set('new', new Uint8Array(randomBytes(32)));
    const r = KeyRing.of(rotated, 'new');
    assert.equal(r.active().id, 'new');
    assert.deepEqual(await open(file, r), plain);
  });

  test('a newer format version is HQL_BACKUP_UNSUPPORTED; other bytes are not a backup', async () => {
    const k = ring('k1');
    const file = await seal(randomBytes(10), k);
    const newer = Buffer.from(file);
    newer.writeUInt16BE(FORMAT_VERSION + 1, 8);
    await refused(open(newer, k.ring), 'HQL_BACKUP_UNSUPPORTED', /format version 2/);
    await refused(
      open(Buffer.from('SQLite format 3\0 and more bytes'), k.ring),
      'HQL_BACKUP_CORRUPT',
      /not a hiqlite backup/,
    );
  });
});
