/**
 * Which backups retention deletes: those whose creation time (from the name) is more than
 * `keepDays` before `nowMs` — but never one of the newest `keepNewest`. The backup service sets
 * `keepNewest` to the number of runs its schedule makes in `keepDays` (`scheduledRunsWithin`), so
 * retention never leaves fewer backups than the schedule keeps when all is well: a node clock that
 * jumps ahead (a year on, every earlier backup looks a year old), backups that failed for weeks,
 * or a long stop do not wipe the history down to the one backup just taken.
 */
import type { Cron } from 'croner';
import { assert } from '../lib/assert.js';
import { parseBackupName } from './names.js';
import type { BackupObject } from './target.js';

export const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * The most runs `scheduledRunsWithin` counts (a pattern firing every minute makes 43,200 in 30
 * days; counting one costs about 27 µs). Past it the days alone decide.
 */
export const SCHEDULED_RUNS_COUNTED_MAX = 1000;

export function expiredBackups(
  objects: readonly BackupObject[],
  keepDays: number,
  nowMs: number,
  keepNewest = 1,
): string[] {
  assert(Number.isSafeInteger(keepDays) && keepDays >= 1, 'keepDays is a positive integer');
  assert(Number.isSafeInteger(keepNewest) && keepNewest >= 1, 'keepNewest is a positive integer');
  const dated = objects
    .map((o) => ({ name: o.name, parsed: parseBackupName(o.name) }))
    .filter((o) => o.parsed !== null)
    .sort((a, b) => (b.parsed?.createdMs ?? 0) - (a.parsed?.createdMs ?? 0));
  const cutoffMs = nowMs - keepDays * DAY_MS;
  return dated
    .slice(keepNewest)
    .filter((o) => (o.parsed?.createdMs ?? 0) < cutoffMs)
    .map((o) => o.name);
}

/** How many times `cron` fires in the `days` before `nowMs` (at least 1, at most SCHEDULED_RUNS_COUNTED_MAX). */
export function scheduledRunsWithin(cron: Cron, days: number, nowMs: number): number {
  let at: Date | null = new Date(nowMs - days * DAY_MS);
  let runs = 0;
  while (runs < SCHEDULED_RUNS_COUNTED_MAX) {
    at = cron.nextRun(at);
    if (at === null || at.getTime() > nowMs) break;
    runs++;
  }
  return Math.max(1, runs);
}
