/**
 * The JSON routes of the API port (`POST /execute`, `/query`, `/txn`, `/batch`): the request
 * body turned into a command or a read, and the answer's `value`, in one place for the node and
 * the proxy (README, "The server and the CLI"). Where the command is proposed and the read runs
 * is the caller's: `ops`.
 */

import { blobFromJson } from '../http/http-body.js';
import { consistencyOf, onlyFields, optionalBoolean, type ReadConsistency } from '../http/request-fields.js';
import { HiqliteError } from '../lib/errors.js';
import type { CommandInput } from '../sm/sql/command.js';
import { isShallowStmtRef, PARAMS_MAX } from '../sm/sql/params.js';
import type { QueryParams } from '../sm/sql/reader.js';
import type { CommandResult } from '../sm/sql/result.js';
import type { Row } from '../sm/sql/values.js';

export type JsonRoute = 'execute' | 'query' | 'txn' | 'batch';

export interface JsonRouteOps {
  /** Proposes the command; a failed command is thrown as its error. */
  writeOk(command: CommandInput): Promise<{ index: number; result: Extract<CommandResult, { ok: true }> }>;
  query(sql: string, params: QueryParams, consistency: ReadConsistency): Promise<Row[]>;
}

/** The fields each route reads; any other field is refused (a misspelled one would be ignored). */
const ROUTE_FIELDS: Readonly<Record<JsonRoute, readonly string[]>> = {
  execute: ['sql', 'params', 'returning'],
  query: ['sql', 'params', 'consistency'],
  txn: ['statements'],
  batch: ['sql'],
};

export async function serveJsonRoute(
  route: JsonRoute,
  body: Record<string, unknown>,
  ops: JsonRouteOps,
): Promise<unknown> {
  onlyFields(body, ROUTE_FIELDS[route], `/${route}`);
  const sql = body.sql;
  const params = jsonParams(body.params, 'params');
  switch (route) {
    case 'execute': {
      if (typeof sql !== 'string') throw invalidParams('execute needs "sql"');
      const out = await ops.writeOk({
        type: 'execute',
        sql,
        params: params as never,
        returning: optionalBoolean(body.returning, 'returning'),
      });
      return { ...(out.result as { value: object }).value, logIndex: out.index };
    }
    case 'query': {
      if (typeof sql !== 'string') throw invalidParams('query needs "sql"');
      return ops.query(sql, params, consistencyOf(body.consistency ?? 'local', 'consistency'));
    }
    case 'txn': {
      const statements = body.statements;
      if (!Array.isArray(statements)) throw invalidParams('txn needs "statements": [[sql, params?], …]');
      const out = await ops.writeOk({
        type: 'txn',
        statements: statements.map((s: unknown, i: number) => {
          if (Array.isArray(s) && (s.length === 0 || s.length > 2))
            throw invalidParams(`statements[${i}] must be [sql] or [sql, params], got ${s.length} items`);
          const [stmtSql, stmtParams] = (Array.isArray(s) ? s : [s]) as [unknown, unknown];
          if (typeof stmtSql !== 'string') throw invalidParams('each txn statement starts with its SQL');
          return { sql: stmtSql, params: jsonParams(stmtParams, `statements[${i}].params`) as never };
        }),
      });
      return { results: (out.result as { value: unknown }).value, logIndex: out.index };
    }
    case 'batch': {
      if (typeof sql !== 'string') throw invalidParams('batch needs "sql"');
      const out = await ops.writeOk({ type: 'batch', sql });
      return { results: (out.result as { value: unknown }).value, logIndex: out.index };
    }
  }
}

/**
 * The parameters of a JSON body: absent, an array or an object of values SQLite binds (null,
 * boolean, number, string) or, in a txn, `{"$ref": […]}` (isShallowStmtRef). Anything else is
 * refused here, before it travels further: a nested
 * array or object cannot be bound anyway, and one nested deeply enough overflows the stack of
 * whatever copies it next (the structured clone to a read thread), which must not take the node
 * down.
 */
function jsonParams(params: unknown, where: string): QueryParams {
  if (params === undefined || params === null) return [];
  if (typeof params !== 'object') throw invalidParams(`${where} must be an array or an object`);
  // Counted before each is converted (checkReadText and the command's validation count them too,
  // after): 300,000 of them held the node's thread for seconds.
  const count = Array.isArray(params) ? params.length : Object.keys(params).length;
  if (count > PARAMS_MAX)
    throw invalidParams(`${where}: ${count} parameters, more than a statement can take (${PARAMS_MAX})`);
  // A BLOB is `{"$blob": base64}`, as the routes answer one.
  const bound = (v: unknown, at: string): unknown => {
    if (isScalar(v) || isShallowStmtRef(v)) return v;
    const bytes = blobFromJson(v, `${where}${at}`);
    if (bytes !== null) return bytes;
    throw invalidParams(
      `${where}${at}: ${Array.isArray(v) ? 'an array' : 'an object'} cannot be bound (use null, number, string, boolean or {"$blob": base64})`,
    );
  };
  if (Array.isArray(params)) return params.map((v, i) => bound(v, `[${i}]`)) as QueryParams;
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(params)) out[k] = bound(v, `.${k}`);
  return out as QueryParams;
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string';
}

function invalidParams(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}
