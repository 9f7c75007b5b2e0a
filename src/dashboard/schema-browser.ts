/**
 * The Tables page: tables, views, indexes and triggers from `sqlite_schema` with their SQL, row
 * counts of tables, and the rows of a table or view page by page. Every read goes through the
 * node's normal read path (read threads, statement guard, `query_timeout_ms`).
 *
 * The state machine's own tables (`_hq_*`) are listed, marked internal, and never read: the
 * statement guard refuses every read of them, and their content differs between replicas.
 * Counting is bounded: at most `COUNTED_TABLES_MAX` tables, and no new count is started once
 * `COUNT_BUDGET_MS` have passed (a count reads the whole table); the others show no count.
 */
import { HiqliteError } from '../lib/errors.js';
import type { RowPage, SchemaList, SchemaObject } from './api-types.js';
import type { DashboardBackend } from './backend.js';
import { quoteIdent, toTable } from './rows.js';

export const SCHEMA_OBJECTS_MAX = 1000;
export const COUNTED_TABLES_MAX = 200;
export const COUNT_BUDGET_MS = 2000;
const RESERVED_PREFIX = '_hq_';

export async function listSchema(
  backend: DashboardBackend,
  signal: AbortSignal,
  now: () => number,
): Promise<SchemaList> {
  const rows = await backend.query(
    `SELECT type, name, tbl_name AS tableName, sql FROM sqlite_schema
     WHERE type IN ('table', 'view', 'index', 'trigger') ORDER BY type = 'table' DESC, type, name LIMIT ?`,
    [SCHEMA_OBJECTS_MAX + 1],
    'local',
    signal,
  );
  const started = now();
  let counted = 0;
  const objects: SchemaObject[] = [];
  for (const r of rows.slice(0, SCHEMA_OBJECTS_MAX)) {
    const type = r.type as SchemaObject['type'];
    const name = String(r.name);
    const table = String(r.tableName);
    const internal = isInternal(name) || isInternal(table);
    let count: number | null = null;
    if (type === 'table' && !internal && counted < COUNTED_TABLES_MAX && now() - started < COUNT_BUDGET_MS) {
      counted++;
      count = await countRows(backend, name, signal);
    }
    objects.push({ type, name, table, sql: typeof r.sql === 'string' ? r.sql : null, rows: count, internal });
  }
  return { objects, truncated: rows.length > SCHEMA_OBJECTS_MAX };
}

/** A page of the rows of table or view `name`, which must exist and not be internal. */
export async function browseRows(
  backend: DashboardBackend,
  name: string,
  offset: number,
  limit: number,
  signal: AbortSignal,
  now: () => number,
): Promise<RowPage> {
  const started = now();
  if (isInternal(name))
    throw new HiqliteError('HQL_STATEMENT_NOT_ALLOWED', `'${name}' is internal to the state machine`, {
      retryable: false,
    });
  const found = await backend.query(
    "SELECT 1 AS found FROM sqlite_schema WHERE name = ? AND type IN ('table', 'view')",
    [name],
    'local',
    signal,
  );
  if (found.length === 0)
    throw new HiqliteError('HQL_NOT_FOUND', `no table or view named '${name}'`, { retryable: false });
  const rows = await backend.query(
    `SELECT * FROM ${quoteIdent(name)} LIMIT ? OFFSET ?`,
    [limit + 1, offset],
    'local',
    signal,
  );
  const t = toTable(rows.slice(0, limit));
  return { ...t, offset, hasMore: rows.length > limit, elapsedMs: Math.round((now() - started) * 10) / 10 };
}

export function isInternal(name: string): boolean {
  return name.toLowerCase().startsWith(RESERVED_PREFIX);
}

async function countRows(
  backend: DashboardBackend,
  name: string,
  signal: AbortSignal,
): Promise<number | null> {
  try {
    const r = await backend.query(`SELECT count(*) AS n FROM ${quoteIdent(name)}`, [], 'local', signal);
    const n = r[0]?.n;
    return typeof n === 'number' ? n : typeof n === 'bigint' ? Number(n) : null;
  } catch {
    // A table the guard refuses to read, or a count past the read's deadline: shown uncounted.
    return null;
  }
}
