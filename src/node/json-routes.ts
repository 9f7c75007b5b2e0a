/**
 * The JSON routes of the API port (`POST /execute`, `/query`, `/txn`, `/batch`): the request
 * body turned into a command or a read, and the answer's `value`, in one place for the node and
 * the proxy (README, "The server and the CLI"). Where the command is proposed and the read runs
 * is the caller's: `ops`.
 */
import { HiqliteError } from '../lib/errors.js';
import type { Consistency } from '../protocol/api-codec.js';
import type { CommandInput } from '../sm/sql/command.js';
import type { QueryParams } from '../sm/sql/reader.js';
import type { CommandResult } from '../sm/sql/result.js';
import type { Row } from '../sm/sql/values.js';

export type JsonRoute = 'execute' | 'query' | 'txn' | 'batch';

export interface JsonRouteOps {
  /** Proposes the command; a failed command is thrown as its error. */
  writeOk(command: CommandInput): Promise<{ index: number; result: Extract<CommandResult, { ok: true }> }>;
  query(sql: string, params: QueryParams, consistency: Consistency): Promise<Row[]>;
}

export async function serveJsonRoute(
  route: JsonRoute,
  body: Record<string, unknown>,
  ops: JsonRouteOps,
): Promise<unknown> {
  const sql = body.sql;
  const params = (body.params ?? []) as QueryParams;
  switch (route) {
    case 'execute': {
      if (typeof sql !== 'string') throw invalidParams('execute needs "sql"');
      const out = await ops.writeOk({
        type: 'execute',
        sql,
        params: params as never,
        returning: body.returning === true,
      });
      return { ...(out.result as { value: object }).value, logIndex: out.index };
    }
    case 'query': {
      if (typeof sql !== 'string') throw invalidParams('query needs "sql"');
      return ops.query(sql, params, body.consistency === 'linearizable' ? 'linearizable' : 'local');
    }
    case 'txn': {
      const statements = body.statements;
      if (!Array.isArray(statements)) throw invalidParams('txn needs "statements": [[sql, params?], …]');
      const out = await ops.writeOk({
        type: 'txn',
        statements: statements.map((s: unknown) => {
          const [stmtSql, stmtParams] = (Array.isArray(s) ? s : [s]) as [unknown, unknown];
          if (typeof stmtSql !== 'string') throw invalidParams('each txn statement starts with its SQL');
          return { sql: stmtSql, params: (stmtParams ?? []) as never };
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

function invalidParams(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}
