/**
 * Which backups retention deletes: those whose creation time (from the name) is more than
 * `keepDays` before `nowMs` — never the newest one, so a cluster that stopped taking backups
 * keeps its last one whatever its age.
 */
import { assert } from '../lib/assert.js';
import { parseBackupName } from './names.js';
import type { BackupObject } from './target.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export function expiredBackups(objects: readonly BackupObject[], keepDays: number, nowMs: number): string[] {
  assert(Number.isSafeInteger(keepDays) && keepDays >= 1, 'keepDays is a positive integer');
  const dated = objects
    .map((o) => ({ name: o.name, parsed: parseBackupName(o.name) }))
    .filter((o) => o.parsed !== null)
    .sort((a, b) => (b.parsed?.createdMs ?? 0) - (a.parsed?.createdMs ?? 0));
  const cutoffMs = nowMs - keepDays * DAY_MS;
  return dated
    .slice(1)
    .filter((o) => (o.parsed?.createdMs ?? 0) < cutoffMs)
    .map((o) => o.name);
}
