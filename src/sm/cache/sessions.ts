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
 * seen — but never one within its protection (`protectMs`, stamped into its last command by the
 * node that took it: how long its client may still retry that command, lib/client-session.ts),
 * whose retry would be applied a second time: when only such sessions are left the new session
 * is refused (`HQL_SESSIONS_FULL`, nothing applied, retryable). A command without the stamp
 * (written before it existed) evicts as commands did then: the least recently seen. Results are bounded by bytes (`sessionResultsBytesMax`): over it, the results of the
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
  /** Not forgotten for room before lastSeenMs + protectMs (null: no protection). */
  protectMs: number | null;
}

export type SessionLookup =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly result: CacheResult }
  | { readonly kind: 'stale'; readonly error: CacheErrorInfo }
  | { readonly kind: 'refused'; readonly error: CacheErrorInfo };

/** The answer for a command to apply: one object for all (lookup runs for every command). */
const NEW: SessionLookup = Object.freeze({ kind: 'new' });

export class SessionTable {
  readonly rows = new Map<string, SessionRow>();
  private resultsBytes = 0;
  /**
   * No row can be removed for room at a log time at or before this: a lower bound of the rows'
   * `lastSeenMs + min(protectMs, sessionTtlMs)` (a row without protection: any time), set when a stamped new session found no room,
   * lowered by every row written. A new session refused within it costs no scan of the table.
   * Only ever below the truth, so it answers as the scan would (src/sm/sql/sessions.ts likewise).
   */
  private noRoomUntilMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly limits: CacheLimits) {}

  lookup(session: CacheSession, nowMs: number): SessionLookup {
    const row = this.rows.get(session.clientId);
    if (row === undefined) {
      if (
        this.rows.size >= this.limits.sessionsMax &&
        !this.makeRoom(nowMs, session.protectMs !== undefined)
      ) {
        return { kind: 'refused', error: this.fullError(session) };
      }
      return NEW;
    }
    if (row.lastSeenMs < nowMs - this.limits.sessionTtlMs) return NEW;
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
    // A retry's stamp protects its session anew (until the retry's own deadline).
    if (session.protectMs !== undefined) row.protectMs = session.protectMs;
    this.rowWritten(row);
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
    const bytes = resultBytes(result);
    const keep = bytes <= this.limits.sessionResultsBytesMax;
    // The row object is reused (removed above: the set puts it last, as a new one).
    const row: SessionRow = existing ?? { seq: 0, lastSeenMs: 0, result: null, protectMs: null };
    row.seq = session.seq;
    row.lastSeenMs = nowMs;
    row.result = keep ? result : null;
    row.protectMs = session.protectMs ?? null;
    this.rows.set(session.clientId, row);
    this.rowWritten(row);
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

  /**
   * Room for one more session: the expired go, then the least recently seen (for a stamped
   * command, only those whose protection ran out). False: no room (all protected). With
   * protection, a full table is scanned to its end at worst (each refused new session).
   */
  private makeRoom(nowMs: number, stamped: boolean): boolean {
    if (stamped && nowMs <= this.noRoomUntilMs) return false;
    const expiredBefore = nowMs - this.limits.sessionTtlMs;
    let kept = Number.POSITIVE_INFINITY;
    for (const [clientId, row] of this.rows) {
      const expired = row.lastSeenMs < expiredBefore;
      if (!expired && this.rows.size < this.limits.sessionsMax) return true;
      if (!expired && stamped && row.protectMs !== null && row.lastSeenMs + row.protectMs >= nowMs) {
        kept = Math.min(kept, this.removableAfter(row));
        continue;
      }
      this.remove(clientId, row);
    }
    if (this.rows.size < this.limits.sessionsMax) return true;
    // Every row was looked at and kept (stamped: a command without the stamp removes some).
    this.noRoomUntilMs = kept;
    return false;
  }

  /** After this log time the row may be removed for room (one without protection: at any time). */
  private removableAfter(row: SessionRow): number {
    if (row.protectMs === null) return Number.NEGATIVE_INFINITY;
    return row.lastSeenMs + Math.min(row.protectMs, this.limits.sessionTtlMs);
  }

  /** A row was written: it may be removable sooner than the bound says. */
  private rowWritten(row: SessionRow): void {
    const after = this.removableAfter(row);
    if (after < this.noRoomUntilMs) this.noRoomUntilMs = after;
  }

  private fullError(session: CacheSession): CacheErrorInfo {
    return {
      code: 'HQL_SESSIONS_FULL',
      message: `session ${session.clientId}: not started and its write not applied: all ${this.limits.sessionsMax} exactly-once sessions (cache_sessions_max) belong to writes that may still be retried (each is kept until its write's deadline has passed, plus a margin, at most session_protect_ms), and none may be forgotten before; retry later, or raise cache_sessions_max`,
    };
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
