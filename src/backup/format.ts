/**
 * The header of a backup file (docs/internals/backup-format.md). All integers big-endian.
 *
 *   off len
 *     0   8  magic "HQBACKUP"
 *     8   2  format version (1)
 *    10   2  header length in bytes (this whole header, 106 to 124)
 *    12   1  cipher: 1 = AES-256-GCM STREAM, key by HKDF-SHA256
 *    13   1  compression: 1 = gzip
 *    14   2  flags, 0
 *    16  16  cluster id of the cluster the backup was taken from (zeros: none)
 *    32   8  log index the database copy holds (its applied index)
 *    40   8  term of that entry
 *    48   8  schema version: the highest applied migration id (0: none)
 *    56   8  creation time, ms since the epoch (UTC)
 *    64   8  database bytes: the size of the SQLite file inside (after decompression)
 *    72   4  node id that took the backup
 *    76   4  chunk bytes: plaintext bytes per encrypted chunk (the last chunk may be shorter)
 *    80  16  HKDF salt
 *    96   7  nonce prefix (random)
 *   103   1  key id length n (2 to 20)
 *   104   n  key id (ASCII letters and digits)
 *
 * The header is not encrypted; it is the associated data of every chunk, so a changed header
 * byte makes every chunk fail to authenticate. Its fields must not be acted on before the
 * chunks behind it authenticated (decrypt.ts says when).
 */
import { assert } from '../lib/assert.js';
import { backupCorrupt, backupUnsupported } from './backup-errors.js';

export const MAGIC = Buffer.from('HQBACKUP', 'ascii');
export const FORMAT_VERSION = 1;
export const CIPHER_AES_256_GCM_STREAM = 1;
export const COMPRESSION_GZIP = 1;
/** Bytes before the key id; also what a reader reads first to learn the header's length. */
export const HEADER_FIXED_BYTES = 104;
export const HEADER_BYTES_MAX = HEADER_FIXED_BYTES + 20;
export const SALT_BYTES = 16;
export const NONCE_PREFIX_BYTES = 7;
export const CLUSTER_ID_BYTES = 16;
/** Chunk sizes a reader accepts: what it must buffer per chunk is bounded by the upper one. */
export const CHUNK_BYTES_MIN = 4096;
export const CHUNK_BYTES_MAX = 16 * 1024 * 1024;
export const CHUNK_BYTES_DEFAULT = 1024 * 1024;

export interface BackupHeader {
  readonly formatVersion: number;
  /** 32 hex digits, or null when the cluster had none. */
  readonly clusterId: string | null;
  readonly logIndex: number;
  readonly logTerm: number;
  readonly schemaVersion: number;
  readonly createdMs: number;
  readonly databaseBytes: number;
  readonly nodeId: number;
  readonly chunkBytes: number;
  readonly salt: Uint8Array;
  readonly noncePrefix: Uint8Array;
  readonly keyId: string;
}

export function encodeHeader(h: BackupHeader): Buffer {
  const keyId = Buffer.from(h.keyId, 'ascii');
  assert(/^[a-zA-Z0-9]{2,20}$/.test(h.keyId), 'key id is 2 to 20 letters and digits');
  assert(h.salt.length === SALT_BYTES && h.noncePrefix.length === NONCE_PREFIX_BYTES, 'salt and nonce sizes');
  assert(h.chunkBytes >= CHUNK_BYTES_MIN && h.chunkBytes <= CHUNK_BYTES_MAX, 'chunk size in range');
  const b = Buffer.alloc(HEADER_FIXED_BYTES + keyId.length);
  MAGIC.copy(b, 0);
  b.writeUInt16BE(FORMAT_VERSION, 8);
  b.writeUInt16BE(b.length, 10);
  b.writeUInt8(CIPHER_AES_256_GCM_STREAM, 12);
  b.writeUInt8(COMPRESSION_GZIP, 13);
  b.writeUInt16BE(0, 14);
  if (h.clusterId !== null) {
    assert(/^[0-9a-f]{32}$/.test(h.clusterId), 'cluster id is 32 hex digits');
    Buffer.from(h.clusterId, 'hex').copy(b, 16);
  }
  writeU64(b, 32, h.logIndex);
  writeU64(b, 40, h.logTerm);
  writeU64(b, 48, h.schemaVersion);
  writeU64(b, 56, h.createdMs);
  writeU64(b, 64, h.databaseBytes);
  b.writeUInt32BE(h.nodeId, 72);
  b.writeUInt32BE(h.chunkBytes, 76);
  Buffer.from(h.salt).copy(b, 80);
  Buffer.from(h.noncePrefix).copy(b, 96);
  b.writeUInt8(keyId.length, 103);
  keyId.copy(b, HEADER_FIXED_BYTES);
  return b;
}

/**
 * The header's length from its first 12 bytes (magic, version, length); throws when they are not
 * a backup header this code reads.
 */
export function headerLength(prefix: Buffer, label: string): number {
  assert(prefix.length >= 12, 'the header prefix has 12 bytes');
  if (!prefix.subarray(0, 8).equals(MAGIC))
    throw backupCorrupt(`${label} is not a hiqlite backup file (no HQBACKUP magic)`);
  const version = prefix.readUInt16BE(8);
  if (version > FORMAT_VERSION)
    throw backupUnsupported(
      `${label} has format version ${version}; this hiqlite reads up to version ${FORMAT_VERSION}`,
    );
  if (version < 1) throw backupCorrupt(`${label} has format version 0, which does not exist`);
  const length = prefix.readUInt16BE(10);
  if (length < HEADER_FIXED_BYTES + 2 || length > HEADER_BYTES_MAX)
    throw backupCorrupt(
      `${label} has a header length of ${length} bytes, outside [${HEADER_FIXED_BYTES + 2}, ${HEADER_BYTES_MAX}]`,
    );
  return length;
}

export function decodeHeader(b: Buffer, label: string): BackupHeader {
  const length = headerLength(b, label);
  if (b.length !== length) throw backupCorrupt(`${label}: header of ${b.length} bytes, expected ${length}`);
  const bad = (what: string) => backupCorrupt(`${label}: header ${what}`);
  if (b.readUInt8(12) !== CIPHER_AES_256_GCM_STREAM) throw bad(`names unknown cipher ${b.readUInt8(12)}`);
  if (b.readUInt8(13) !== COMPRESSION_GZIP) throw bad(`names unknown compression ${b.readUInt8(13)}`);
  if (b.readUInt16BE(14) !== 0) throw bad(`has unknown flags ${b.readUInt16BE(14)}`);
  const cluster = b.subarray(16, 32);
  const chunkBytes = b.readUInt32BE(76);
  if (chunkBytes < CHUNK_BYTES_MIN || chunkBytes > CHUNK_BYTES_MAX)
    throw bad(`chunk size ${chunkBytes} is outside [${CHUNK_BYTES_MIN}, ${CHUNK_BYTES_MAX}]`);
  const keyIdLength = b.readUInt8(103);
  if (HEADER_FIXED_BYTES + keyIdLength !== length)
    throw bad(`key id length ${keyIdLength} does not match its length`);
  const keyId = b.subarray(HEADER_FIXED_BYTES).toString('latin1');
  if (!/^[a-zA-Z0-9]{2,20}$/.test(keyId)) throw bad('key id is not 2 to 20 letters and digits');
  const u64 = (off: number, what: string) => {
    const v = b.readBigUInt64BE(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} is out of range`);
    return Number(v);
  };
  return {
    formatVersion: b.readUInt16BE(8),
    clusterId: cluster.every((x) => x === 0) ? null : cluster.toString('hex'),
    logIndex: u64(32, 'log index'),
    logTerm: u64(40, 'term'),
    schemaVersion: u64(48, 'schema version'),
    createdMs: u64(56, 'creation time'),
    databaseBytes: u64(64, 'database size'),
    nodeId: b.readUInt32BE(72),
    chunkBytes,
    salt: new Uint8Array(b.subarray(80, 96)),
    noncePrefix: new Uint8Array(b.subarray(96, 103)),
    keyId,
  };
}

function writeU64(b: Buffer, off: number, v: number): void {
  assert(Number.isSafeInteger(v) && v >= 0, 'a u64 header field is a non-negative safe integer');
  b.writeBigUInt64BE(BigInt(v), off);
}
