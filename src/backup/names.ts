/**
 * Backup file and object names: `backup_<UTC time>_i<log index>_n<node id>.hqbak`, e.g.
 * `backup_20250102T023000.123Z_i12345_n1.hqbak`. The time (creation, UTC, ms) sorts names by
 * age and drives retention; the index says what the backup holds without opening it; the node
 * says which node took it. Names are the same in every target (local folder, S3 bucket).
 */
import { assert } from '../lib/assert.js';

export const BACKUP_NAME_PREFIX = 'backup_';
export const BACKUP_NAME_SUFFIX = '.hqbak';
const NAME_RE =
  /^backup_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z_i(\d{1,16})_n(\d{1,10})\.hqbak$/;

export interface BackupName {
  readonly createdMs: number;
  readonly logIndex: number;
  readonly nodeId: number;
}

export function formatBackupName(n: BackupName): string {
  assert(Number.isSafeInteger(n.createdMs) && n.createdMs >= 0, 'backup time is a non-negative integer');
  assert(Number.isSafeInteger(n.logIndex) && n.logIndex >= 0, 'backup index is a non-negative integer');
  assert(Number.isSafeInteger(n.nodeId) && n.nodeId >= 1, 'backup node id is positive');
  const iso = new Date(n.createdMs).toISOString(); // 2025-01-02T02:30:00.123Z
  const time = iso.replace(/[-:]/g, '');
  return `${BACKUP_NAME_PREFIX}${time}_i${n.logIndex}_n${n.nodeId}${BACKUP_NAME_SUFFIX}`;
}

/** The parts of a backup name, or null when `name` is not one (other files in a folder or bucket). */
export function parseBackupName(name: string): BackupName | null {
  const m = NAME_RE.exec(name);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, ms, index, node] = m as unknown as string[];
  const createdMs = Date.UTC(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    Number(s),
    Number(ms),
  );
  const logIndex = Number(index);
  const nodeId = Number(node);
  if (!Number.isSafeInteger(createdMs) || !Number.isSafeInteger(logIndex) || nodeId < 1) return null;
  // Reject dates that Date.UTC rolled over (month 13, day 32): the name must round-trip.
  if (formatBackupName({ createdMs, logIndex, nodeId }) !== name) return null;
  return { createdMs, logIndex, nodeId };
}
