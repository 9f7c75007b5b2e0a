/**
 * Exactly-once sessions (Raft dissertation §6.3): the state machine remembers, per client, the
 * last applied sequence number and its result, in SQLite and in the same transaction as the
 * command. A retried command (same seq) is not applied again and gets the original result.
 *
 * - seq greater than the stored one: applied, stored;
 * - seq equal: duplicate, the stored result is returned;
 * - seq lower: `HQL_SESSION_STALE` (only the latest result is kept, so a client must have at most
 *   one outstanding write per clientId; concurrent writers use several clientIds).
 * Expiry is deterministic: it uses the entries' `nowMs`, never the local clock. A session idle
 * for more than `ttlMs` is dropped (and its next command counts as new); when `sessionsMax` is
 * reached the least recently seen session is evicted. Results larger than `resultBytesMax` are
 * not kept: a duplicate then gets `HQL_SESSION_RESULT_UNAVAILABLE` (it *was* applied).
 * These settings change replicated state, so they must be identical on every node.
 */
import type Database from 'better-sqlite3';
import type { Session } from './command.js';
import type { SqlErrorInfo } from './errors.js';
import { type CommandResult, decodeResult, encodeResult } from './result.js';

export const SESSIONS_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS _hq_sessions (
    client_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    result BLOB,
    last_seen_ms INTEGER NOT NULL
  ) WITHOUT ROWID`,
  'CREATE INDEX IF NOT EXISTS _hq_sessions_seen ON _hq_sessions (last_seen_ms, client_id)',
];

export interface SessionOptions {
  readonly ttlMs: number;
  readonly sessionsMax: number;
  readonly resultBytesMax: number;
}

export type SessionLookup =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly result: CommandResult }
  | { readonly kind: 'stale'; readonly error: SqlErrorInfo };

interface SessionRow {
  readonly seq: number;
  readonly result: Uint8Array | null;
}

export class SessionTable {
  private readonly get: Database.Statement<[string], SessionRow>;
  private readonly sweepStmt: Database.Statement<[number]>;
  private readonly countStmt: Database.Statement<[], number>;
  private readonly evictStmt: Database.Statement<[number]>;
  private readonly upsert: Database.Statement<[string, number, Uint8Array | null, number]>;
  private readonly touchStmt: Database.Statement<[number, string]>;

  constructor(
    db: Database.Database,
    private readonly options: SessionOptions,
  ) {
    this.get = db.prepare('SELECT seq, result FROM _hq_sessions WHERE client_id = ?');
    this.sweepStmt = db.prepare('DELETE FROM _hq_sessions WHERE last_seen_ms < ?');
    this.countStmt = db.prepare<[], number>('SELECT count(*) FROM _hq_sessions').pluck();
    this.evictStmt = db.prepare(
      'DELETE FROM _hq_sessions WHERE client_id IN (SELECT client_id FROM _hq_sessions ORDER BY last_seen_ms, client_id LIMIT ?)',
    );
    this.upsert = db.prepare(
      `INSERT INTO _hq_sessions (client_id, seq, result, last_seen_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET seq = excluded.seq, result = excluded.result, last_seen_ms = excluded.last_seen_ms`,
    );
    this.touchStmt = db.prepare(
      'UPDATE _hq_sessions SET last_seen_ms = max(last_seen_ms, ?) WHERE client_id = ?',
    );
  }

  /** Drops sessions idle for longer than the TTL, as of this entry's time. Run for every command. */
  sweep(nowMs: number): void {
    this.sweepStmt.run(nowMs - this.options.ttlMs);
  }

  lookup(session: Session, nowMs: number): SessionLookup {
    const row = this.get.get(session.clientId);
    if (row === undefined || session.seq > row.seq) return { kind: 'new' };
    if (session.seq < row.seq) {
      return {
        kind: 'stale',
        error: {
          code: 'HQL_SESSION_STALE',
          message: `session ${session.clientId}: seq ${session.seq} is older than the last applied seq ${row.seq}; its result is no longer known`,
        },
      };
    }
    this.touchStmt.run(nowMs, session.clientId);
    if (row.result === null) {
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
    return { kind: 'duplicate', result: decodeResult(row.result) };
  }

  record(session: Session, nowMs: number, result: CommandResult): void {
    if (this.get.get(session.clientId) === undefined) {
      const count = this.countStmt.get() ?? 0;
      if (count >= this.options.sessionsMax) this.evictStmt.run(count - this.options.sessionsMax + 1);
    }
    const encoded = encodeResult(result);
    this.upsert.run(
      session.clientId,
      session.seq,
      encoded.length > this.options.resultBytesMax ? null : encoded,
      nowMs,
    );
  }
}
