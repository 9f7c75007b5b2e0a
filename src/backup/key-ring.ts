/**
 * The backup encryption keys (`enc_keys`, `enc_key_active`): new backups use the active key;
 * any configured key decrypts the backups made with it, so after a rotation older backups still
 * decrypt as long as their key stays listed. Each backup gets its own AES-256 key, derived with
 * HKDF-SHA256 from the configured key and a random salt stored in its header: two backups never
 * share a key, so the 7-byte random nonce prefix plus chunk counter never repeats under one key.
 */
import { hkdfSync } from 'node:crypto';
import { assert } from '../lib/assert.js';
import { backupKeyUnknown } from './backup-errors.js';

export const KEY_BYTES = 32;
/** The HKDF `info`: binds derived keys to this format and cipher. */
const HKDF_INFO = Buffer.from('hiqlite backup v1 AES-256-GCM STREAM', 'utf8');

export class KeyRing {
  private constructor(
    private readonly keys: ReadonlyMap<string, Uint8Array>,
    /** Null: the ring can read (when keys exist) but not write backups. */
    readonly activeId: string | null,
  ) {}

  static of(keys: ReadonlyMap<string, Uint8Array>, activeId: string | null): KeyRing {
    for (const [id, key] of keys) assert(key.length === KEY_BYTES, `key '${id}' is not ${KEY_BYTES} bytes`);
    assert(activeId === null || keys.has(activeId), 'the active key is one of the keys');
    return new KeyRing(keys, activeId);
  }

  /** The active key's id and bytes, for a new backup. */
  active(): { id: string; key: Uint8Array } {
    if (this.activeId === null)
      throw backupKeyUnknown('no backup encryption key is configured: set enc_keys and enc_key_active');
    return { id: this.activeId, key: this.keys.get(this.activeId) as Uint8Array };
  }

  /** The key a backup names; HQL_BACKUP_KEY_UNKNOWN when it is not configured. */
  get(id: string, label: string): Uint8Array {
    const key = this.keys.get(id);
    if (key !== undefined) return key;
    const known =
      this.keys.size === 0
        ? 'no keys are configured (enc_keys)'
        : `known: ${[...this.keys.keys()].join(', ')}`;
    throw backupKeyUnknown(`${label} was encrypted with key '${id}', which is not in enc_keys (${known})`);
  }
}

/** The per-backup AES-256 key: HKDF-SHA256(configured key, salt from the header). */
export function deriveBackupKey(key: Uint8Array, salt: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, HKDF_INFO, KEY_BYTES));
}
