/**
 * Exactly-once sessions (Raft dissertation §6.3): the state machine remembers, per client, the
 * last applied sequence number and its result, in SQLite and in the same transaction as the
 * command. A retried command (same seq) is not applied again and gets the original result.
 *
 * - seq greater than the stored one: applied, stored;
 * - seq equal: duplicate, the stored result is returned;
 * - seq lower: `HQL_SESSION_STALE` (only the latest result is kept, so a client must have at most
 *   one outstanding write per clientId; concurrent writers use several clientIds).
 * Expiry is deterministic: it uses the entries' `nowMs`, never the local clock, made monotonic
 * (a command's session time is the largest `nowMs` any session command carried so far, which is
 * also the largest `last_seen_ms` in the table, so it survives restarts and snapshots: a leader
 * whose clock is behind cannot revive an expired session). A session idle for more than `ttlMs`
 * counts as absent (its next command is new). Expired rows are deleted lazily, only when a new
 * session finds the table at `sessionsMax`: then everything expired goes, and if that is not
 * enough the least recently seen tenth of the bound is evicted — but never a session within its
 * protection (`protect_ms`, stamped into its last command by the node that took it: how long its
 * client may still retry that command, lib/client-session.ts): that retry would find its
 * session gone and be applied a second time. When only protected sessions are left, the new
 * session is refused (`HQL_SESSIONS_FULL`, nothing applied, retryable). A command without the
 * stamp (written before it existed) evicts as commands did then: the least recently seen,
 * protected or not. Every replica does the same deletions at the same command, whatever its
 * batch boundaries, so replicas hold identical tables. Results larger than
 * `resultBytesMax` are not kept: a duplicate then gets `HQL_SESSION_RESULT_UNAVAILABLE` (it
 * *was* applied). These settings change replicated state, so they must be identical on every node.
 *
 * Cost per command with a session: one upsert (plus a read of the stored result for a duplicate).
 * Client ids, sequence numbers and the session clock are also kept in memory; the state machine
 * reports each commit and rollback, and a rollback of a transaction that wrote to the table
 * rebuilds them from it.
 */
import type Database from 'better-sqlite3';
import { assert } from '../../lib/assert.js';
import type { Session } from './command.js';
import type { SqlErrorInfo } from './errors.js';
import { type CommandResult, decodeResult, encodeResult } from './result.js';

export const SESSIONS_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS _hq_sessions (
    client_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    result BLOB,
    last_seen_ms INTEGER NOT NULL,
    protect_ms INTEGER
  ) WITHOUT ROWID`,
  // No index on last_seen_ms: it would cost every write; only a full table is scanned for it.
  'DROP INDEX IF EXISTS _hq_sessions_seen',
];

export interface SessionOptions {
  readonly ttlMs: number;
  readonly sessionsMax: number;
  readonly resultBytesMax: number;
}

export type SessionLookup =
  | { readonly kind: 'new'; readonly nowMs: number }
  | { readonly kind: 'duplicate'; readonly result: CommandResult }
  | { readonly kind: 'stale'; readonly error: SqlErrorInfo }
  | { readonly kind: 'refused'; readonly error: SqlErrorInfo };

/** What the state machine keeps in memory of a table row (everything but the result). */
interface Known {
  seq: number;
  lastSeenMs: number;
}

export class SessionTable {
  private readonly resultStmt: Database.Statement<[string], { result: Uint8Array | null }>;
  private readonly allStmt: Database.Statement<[], { client_id: string; seq: number; last_seen_ms: number }>;
  private readonly sweepStmt: Database.Statement<[number], string>;
  private readonly evictStmt: Database.Statement<[number], string>;
  private readonly evictUnprotectedStmt: Database.Statement<[number, number], string>;
  private readonly upsert: Database.Statement<[string, number, Uint8Array | null, number, number | null]>;
  private readonly touchStmt: Database.Statement<[number, number | null, string]>;
  /**
   * The table without the results, in memory: a new command (the common case) is recognized
   * without a query. Kept equal to the table: rebuilt by `reload()`, which the state machine
   * calls after anything that changed the table behind its back (open, restore, reset, rollback).
   */
  private readonly known = new Map<string, Known>();
  /** The largest last_seen_ms in the table: session time never goes below it. */
  private clockMs = 0;
  /** The open transaction wrote to the table: a rollback must rebuild `known` and the clock. */
  private written = false;
  /**
   * No row can be removed for room (expired or past its protection) at a session time at or
   * before this: a lower bound of the rows' `last_seen_ms + min(protect_ms, ttl)`, set when a
   * stamped new session found no room, lowered by every row written, reset by `reload()`. A new
   * session refused within it costs no scan (a full scan was 1.3 ms per refusal at 10,000
   * sessions, on every replica's writer). Only ever below the truth, so it answers as the scan.
   */
  private noRoomUntilMs = Number.NEGATIVE_INFINITY;
  private readonly noRoomStmt: Database.Statement<[number], number | null>;

  constructor(
    db: Database.Database,
    private readonly options: SessionOptions,
  ) {
    this.resultStmt = db.prepare('SELECT result FROM _hq_sessions WHERE client_id = ?');
    this.allStmt = db.prepare('SELECT client_id, seq, last_seen_ms FROM _hq_sessions');
    this.sweepStmt = db
      .prepare<[number], string>('DELETE FROM _hq_sessions WHERE last_seen_ms < ? RETURNING client_id')
      .pluck();
    this.evictStmt = db
      .prepare<[number], string>(
        'DELETE FROM _hq_sessions WHERE client_id IN (SELECT client_id FROM _hq_sessions ORDER BY last_seen_ms, client_id LIMIT ?) RETURNING client_id',
      )
      .pluck();
    this.evictUnprotectedStmt = db
      .prepare<[number, number], string>(
        'DELETE FROM _hq_sessions WHERE client_id IN (SELECT client_id FROM _hq_sessions WHERE last_seen_ms + coalesce(protect_ms, 0) < ? ORDER BY last_seen_ms, client_id LIMIT ?) RETURNING client_id',
      )
      .pluck();
    this.upsert = db.prepare(
      `INSERT INTO _hq_sessions (client_id, seq, result, last_seen_ms, protect_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET seq = excluded.seq, result = excluded.result, last_seen_ms = excluded.last_seen_ms, protect_ms = excluded.protect_ms`,
    );
    // A retry's stamp protects its session anew (until the retry's own deadline); one without keeps it.
    this.touchStmt = db.prepare(
      'UPDATE _hq_sessions SET last_seen_ms = ?, protect_ms = coalesce(?, protect_ms) WHERE client_id = ?',
    );
    this.noRoomStmt = db
      .prepare<[number], number | null>(
        'SELECT min(last_seen_ms + min(coalesce(protect_ms, 0), ?)) FROM _hq_sessions',
      )
      .pluck();
    this.reload();
  }

  /** The transaction that wrote to the table committed: memory and table agree. */
  committed(): void {
    this.written = false;
  }

  /** The transaction was rolled back: undo in memory what it wrote, by reading the table again. */
  rolledBack(): void {
    if (this.written) this.reload();
  }

  /** Rebuilds the in-memory view and the clock from the table. */
  reload(): void {
    this.written = false;
    this.noRoomUntilMs = Number.NEGATIVE_INFINITY;
    this.known.clear();
    this.clockMs = 0;
    for (const row of this.allStmt.iterate()) {
      this.known.set(row.client_id, { seq: row.seq, lastSeenMs: row.last_seen_ms });
      if (row.last_seen_ms > this.clockMs) this.clockMs = row.last_seen_ms;
    }
  }

  lookup(session: Session, entryNowMs: number): SessionLookup {
    const nowMs = Math.max(this.clockMs, entryNowMs);
    const row = this.known.get(session.clientId);
    if (row === undefined || row.lastSeenMs < nowMs - this.options.ttlMs) {
      if (
        this.known.size >= this.options.sessionsMax &&
        !this.makeRoom(nowMs, session.protectMs !== undefined)
      ) {
        return { kind: 'refused', error: this.fullError(session) };
      }
      return { kind: 'new', nowMs };
    }
    if (session.seq > row.seq) return { kind: 'new', nowMs };
    if (session.seq < row.seq) {
      return {
        kind: 'stale',
        error: {
          code: 'HQL_SESSION_STALE',
          message: `session ${session.clientId}: seq ${session.seq} is older than the last applied seq ${row.seq}; its result is no longer known`,
        },
      };
    }
    const result = this.resultStmt.get(session.clientId);
    assert(result !== undefined, `session ${session.clientId} is known but not in the table`);
    this.touchStmt.run(nowMs, session.protectMs ?? null, session.clientId);
    this.written = true;
    this.rowWritten(nowMs, session.protectMs);
    row.lastSeenMs = nowMs;
    this.clockMs = nowMs;
    if (result.result === null) {
      return {
        kind: 'duplicate',
        result: {
          ok: false,
          error: {
            code: 'HQL_SESSION_RESULT_UNAVAILABLE',
            message: `session ${session.clientId}: seq ${session.seq} was already applied, but its result was larger than ${this.options.resultBytesMax} bytes and was not kept`,
          },
        },
      };
    }
    return { kind: 'duplicate', result: decodeResult(result.result) };
  }

  /** Stores the result of a command that `lookup` found new. */
  record(session: Session, found: Extract<SessionLookup, { kind: 'new' }>, result: CommandResult): void {
    const { nowMs } = found;
    this.written = true;
    const encoded = encodeResult(result);
    this.upsert.run(
      session.clientId,
      session.seq,
      encoded.length > this.options.resultBytesMax ? null : encoded,
      nowMs,
      session.protectMs ?? null,
    );
    this.rowWritten(nowMs, session.protectMs);
    const row = this.known.get(session.clientId);
    if (row === undefined) this.known.set(session.clientId, { seq: session.seq, lastSeenMs: nowMs });
    else {
      row.seq = session.seq;
      row.lastSeenMs = nowMs;
    }
    this.clockMs = nowMs;
  }

  /**
   * The table is full and a new session arrives: first everything expired goes (this client's
   * own expired row included), then, if that was not enough, the least recently seen, a tenth
   * of the bound at once so that a full table does not cost a scan for every new session; for a
   * stamped command, only sessions whose protection ran out. False: no room (all protected).
   */
  private makeRoom(nowMs: number, stamped: boolean): boolean {
    if (stamped && nowMs <= this.noRoomUntilMs) return false;
    this.written = true;
    for (const id of this.sweepStmt.all(nowMs - this.options.ttlMs)) this.known.delete(id);
    const max = this.options.sessionsMax;
    if (this.known.size < max) return true;
    const evict = this.known.size - max + 1 + Math.floor(max / 10);
    const evicted = stamped ? this.evictUnprotectedStmt.all(nowMs, evict) : this.evictStmt.all(evict);
    for (const id of evicted) this.known.delete(id);
    if (this.known.size < max) return true;
    if (stamped) this.noRoomUntilMs = this.noRoomStmt.get(this.options.ttlMs) ?? Number.NEGATIVE_INFINITY;
    return false;
  }

  /** A row was written at `nowMs` with protection `protectMs`: it may be removable from then on. */
  private rowWritten(nowMs: number, protectMs: number | undefined): void {
    const removableAfter = nowMs + Math.min(protectMs ?? 0, this.options.ttlMs);
    if (removableAfter < this.noRoomUntilMs) this.noRoomUntilMs = removableAfter;
  }

  private fullError(session: Session): SqlErrorInfo {
    return {
      code: 'HQL_SESSIONS_FULL',
      message: `session ${session.clientId}: not started and its write not applied: all ${this.options.sessionsMax} exactly-once sessions (sql_sessions_max) belong to writes that may still be retried (each is kept until its write's deadline has passed, plus a margin, at most session_protect_ms), and none may be forgotten before; retry later, or raise sql_sessions_max`,
    };
  }
}
