/**
 * Exactly-once sessions of the cache group (Raft dissertation §6.3), with the rules of the SQL
 * group's table (src/sm/sql/sessions.ts), held in memory and in the snapshot:
 *
 * - seq greater than the stored one: applied, its result stored;
 * - seq equal: duplicate, the stored result is returned and nothing is applied again;
 * - seq lower: `HQL_SESSION_STALE` (one outstanding write per clientId).
 *
 * Time is the state machine's log clock. A session idle for more than `sessionTtlMs` counts as
 * absent. The map is kept in least-recently-seen order (a touch moves a session to the end), and
 * since the clock never goes back that is also `lastSeenMs` order: expired sessions are at the
 * front. A new session in a full table first removes the expired ones, then the least recently
 * seen. Results are bounded by bytes (`sessionResultsBytesMax`): over it, the results of the
 * least recently seen sessions are dropped but their seq is kept, so a late duplicate gets
 * `HQL_SESSION_RESULT_UNAVAILABLE` instead of being applied twice.
 */
import type { CacheSession } from './command.js';
import type { CacheErrorInfo } from './errors.js';
import type { CacheLimits } from './options.js';
import { type CacheResult, resultBytes } from './result.js';

export interface SessionRow {
  seq: number;
  lastSeenMs: number;
  /** Null: not kept (too large, or dropped for the byte bound). */
  result: CacheResult | null;
}

export type SessionLookup =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly result: CacheResult }
  | { readonly kind: 'stale'; readonly error: CacheErrorInfo };

/** The answer for a command to apply: one object for all (lookup runs for every command). */
const NEW: SessionLookup = Object.freeze({ kind: 'new' });

export class SessionTable {
  readonly rows = new Map<string, SessionRow>();
  private resultsBytes = 0;

  constructor(private readonly limits: CacheLimits) {}

  lookup(session: CacheSession, nowMs: number): SessionLookup {
    const row = this.rows.get(session.clientId);
    if (row === undefined || row.lastSeenMs < nowMs - this.limits.sessionTtlMs) return NEW;
    if (session.seq > row.seq) return NEW;
    if (session.seq < row.seq) {
      return {
        kind: 'stale',
        error: {
          code: 'HQL_SESSION_STALE',
          message: `session ${session.clientId}: seq ${session.seq} is older than the last applied seq ${row.seq}; its result is no longer known`,
        },
      };
    }
    this.touch(session.clientId, row, nowMs);
    if (row.result === null) {
      return {
        kind: 'duplicate',
        result: {
          ok: false,
          error: {
            code: 'HQL_SESSION_RESULT_UNAVAILABLE',
            message: `session ${session.clientId}: seq ${session.seq} was already applied, but its result was not kept`,
          },
        },
      };
    }
    return { kind: 'duplicate', result: row.result };
  }

  /** Stores the result of a command that `lookup` found new. */
  record(session: CacheSession, nowMs: number, result: CacheResult): void {
    const existing = this.rows.get(session.clientId);
    if (existing !== undefined) this.remove(session.clientId, existing);
    else this.makeRoom(nowMs);
    const bytes = resultBytes(result);
    const keep = bytes <= this.limits.sessionResultsBytesMax;
    // The row object is reused (removed above: the set puts it last, as a new one).
    const row = existing ?? { seq: 0, lastSeenMs: 0, result: null };
    row.seq = session.seq;
    row.lastSeenMs = nowMs;
    row.result = keep ? result : null;
    this.rows.set(session.clientId, row);
    if (keep) {
      this.resultsBytes += bytes;
      this.dropResultsOverBound();
    }
  }

  /** Inserts a row read from a snapshot, in snapshot (least recently seen first) order. */
  restore(clientId: string, row: SessionRow): void {
    this.rows.set(clientId, row);
    if (row.result !== null) this.resultsBytes += resultBytes(row.result);
  }

  get bytes(): number {
    return this.resultsBytes + this.rows.size * 64;
  }

  private touch(clientId: string, row: SessionRow, nowMs: number): void {
    this.rows.delete(clientId);
    row.lastSeenMs = nowMs;
    this.rows.set(clientId, row);
  }

  private remove(clientId: string, row: SessionRow): void {
    this.rows.delete(clientId);
    if (row.result !== null) this.resultsBytes -= resultBytes(row.result);
  }

  private makeRoom(nowMs: number): void {
    for (const [clientId, row] of this.rows) {
      const expired = row.lastSeenMs < nowMs - this.limits.sessionTtlMs;
      if (!expired && this.rows.size < this.limits.sessionsMax) return;
      this.remove(clientId, row);
    }
  }

  private dropResultsOverBound(): void {
    if (this.resultsBytes <= this.limits.sessionResultsBytesMax) return;
    for (const row of this.rows.values()) {
      if (row.result === null) continue;
      this.resultsBytes -= resultBytes(row.result);
      row.result = null;
      if (this.resultsBytes <= this.limits.sessionResultsBytesMax) return;
    }
  }
}
