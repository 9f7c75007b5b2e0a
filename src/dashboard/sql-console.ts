/**
 * The SQL console's two calls. A query is read page by page: a SELECT (or WITH / VALUES) is
 * wrapped as `SELECT * FROM (<sql>) LIMIT ? OFFSET ?`, so SQLite produces one page and one row
 * more (to know whether more follow), never the whole answer; other reads (PRAGMA, EXPLAIN) run
 * whole, bounded by the node's `query_rows_max`, and are cut into pages here. The wrapping is only
 * a way of paging: the read itself is checked by the node's statement guard like any read, on a
 * read-only connection, with `query_timeout_ms`.
 *
 * A write goes through the node's normal write path (Raft, exactly-once session) and answers
 * `rowsAffected`, `lastInsertRowid`, `logIndex` and the rows of a RETURNING clause.
 */
import { HiqliteError } from '../lib/errors.js';
import type { ExecuteResult, RowPage } from './api-types.js';
import type { DashboardBackend } from './backend.js';
import { toTable } from './rows.js';

export const PAGE_ROWS_DEFAULT = 100;
/** Most rows of one page: one answer of the console stays small. */
export const PAGE_ROWS_MAX = 1000;
export const OFFSET_MAX = 1_000_000_000;
/** Longest statement the console accepts, in characters. */
export const SQL_CHARS_MAX = 100_000;

export interface PageRequest {
  readonly sql: string;
  readonly consistency: 'local' | 'linearizable';
  readonly offset: number;
  readonly limit: number;
}

export async function queryPage(
  backend: DashboardBackend,
  r: PageRequest,
  signal: AbortSignal,
  now: () => number,
): Promise<RowPage> {
  const started = now();
  const body = stripTrailingSemicolons(r.sql);
  if (pageable(body)) {
    const rows = await withoutParams(
      backend.query(
        `SELECT * FROM (\n${body}\n) LIMIT ? OFFSET ?`,
        [r.limit + 1, r.offset],
        r.consistency,
        signal,
      ),
    );
    const t = toTable(rows.slice(0, r.limit));
    return { ...t, offset: r.offset, hasMore: rows.length > r.limit, elapsedMs: elapsed(started, now) };
  }
  const rows = await withoutParams(backend.query(r.sql, [], r.consistency, signal));
  const t = toTable(rows.slice(r.offset, r.offset + r.limit));
  return {
    ...t,
    offset: r.offset,
    hasMore: rows.length > r.offset + r.limit,
    elapsedMs: elapsed(started, now),
  };
}

export async function executeWrite(
  backend: DashboardBackend,
  sql: string,
  now: () => number,
): Promise<ExecuteResult> {
  const started = now();
  const out = await withoutParams(backend.execute(sql));
  const t = toTable((out.rows ?? []).slice(0, PAGE_ROWS_MAX));
  const id = out.lastInsertRowid;
  return {
    rowsAffected: out.rowsAffected,
    lastInsertRowid: typeof id === 'bigint' ? id.toString() : id,
    logIndex: out.logIndex,
    columns: t.columns,
    rows: t.rows,
    elapsedMs: elapsed(started, now),
  };
}

/**
 * The console sends no parameters: a statement that has some (`?`, `:name`, …) is told so, not
 * that it "takes 3 positional parameter(s), 2 given" (counting the paging wrapper's two).
 */
async function withoutParams<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    // Counted by hiqlite (HQL_INVALID_PARAMS), or by better-sqlite3 on a read thread ("Too few
    // parameter values were provided", "Missing named parameter": HQL_SQL there).
    const aboutParams =
      e instanceof HiqliteError &&
      (e.code === 'HQL_INVALID_PARAMS' || e.code === 'HQL_SQL') &&
      /parameter/i.test(e.message);
    if (!aboutParams) throw e;
    throw new HiqliteError(
      'HQL_INVALID_PARAMS',
      'the console runs statements without parameters: write the values into the SQL instead of ?, :name, @name or $name',
      { retryable: false, cause: e },
    );
  }
}

/** A statement whose first keyword (after comments) makes it a valid subquery. */
export function pageable(sql: string): boolean {
  const start = skipLeadingComments(sql);
  return /^(select|with|values)\b/i.test(sql.slice(start, start + 7));
}

/** Index of the first character after leading whitespace and comments (a linear scan). */
function skipLeadingComments(sql: string): number {
  let i = 0;
  for (;;) {
    while (i < sql.length && /\s/.test(sql[i] as string)) i++;
    if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else return i;
  }
}

function stripTrailingSemicolons(sql: string): string {
  let end = sql.length;
  while (end > 0 && /[\s;]/.test(sql[end - 1] as string)) end--;
  return sql.slice(0, end);
}

function elapsed(started: number, now: () => number): number {
  return Math.round((now() - started) * 10) / 10;
}
