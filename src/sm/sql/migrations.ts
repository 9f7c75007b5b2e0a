/**
 * The migrate command: ordered schema migrations recorded in `_migrations`.
 *
 * Rules (checked on every replica at apply time, deterministically):
 * - ids strictly increase within the command (`HQL_MIGRATION_ORDER`);
 * - an id already in `_migrations` must come with the same name and checksum, and is then
 *   skipped (`HQL_MIGRATION_CHANGED` otherwise): re-sending the full list is idempotent;
 * - a new id must be greater than every applied id (`HQL_MIGRATION_ORDER`): a migration cannot
 *   be slipped in below ones that already ran;
 * - all new migrations of the command apply in the command's savepoint: if any statement of any
 *   of them fails, nothing of the command remains.
 * `applied_index` / `applied_at_ms` record the log index and the proposer's clock, both
 * identical on every replica.
 */
import type Database from 'better-sqlite3';
import type { Migration } from './command.js';
import type { SqlErrorInfo } from './errors.js';
import type { CommandResult } from './result.js';
import { checkStatement } from './statement-guard.js';
import { type SqlStatement, splitStatements } from './tokenizer.js';

export const MIGRATIONS_TABLE = '_migrations';

export const MIGRATIONS_SCHEMA = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_index INTEGER NOT NULL,
  applied_at_ms INTEGER NOT NULL
)`;

interface AppliedMigration {
  readonly id: number;
  readonly name: string;
  readonly checksum: string;
}

export type RunStatement = (statement: SqlStatement, extra: Partial<SqlErrorInfo>) => SqlErrorInfo | null;

export function applyMigrations(
  db: Database.Database,
  migrations: readonly Migration[],
  ctx: { readonly index: number; readonly nowMs: number },
  run: RunStatement,
): CommandResult {
  for (let i = 1; i < migrations.length; i++) {
    const prev = migrations[i - 1]!;
    const m = migrations[i]!;
    if (!(m.id > prev.id)) {
      return fail('HQL_MIGRATION_ORDER', `migration ids must increase: ${m.id} follows ${prev.id}`, m.id);
    }
  }
  const applied = new Map<number, AppliedMigration>();
  let appliedIdMax = 0;
  for (const row of db
    .prepare(`SELECT id, name, checksum FROM ${MIGRATIONS_TABLE} ORDER BY id`)
    .all() as AppliedMigration[]) {
    applied.set(row.id, row);
    appliedIdMax = Math.max(appliedIdMax, row.id);
  }
  const pending: Migration[] = [];
  for (const m of migrations) {
    const done = applied.get(m.id);
    if (done !== undefined) {
      if (done.name !== m.name || done.checksum !== m.checksum) {
        return fail(
          'HQL_MIGRATION_CHANGED',
          `migration ${m.id} was applied as '${done.name}' (checksum ${done.checksum}) but is now '${m.name}' (checksum ${m.checksum}); applied migrations must not change`,
          m.id,
        );
      }
      continue;
    }
    if (m.id <= appliedIdMax) {
      return fail(
        'HQL_MIGRATION_ORDER',
        `migration ${m.id} is older than the newest applied migration ${appliedIdMax}`,
        m.id,
      );
    }
    pending.push(m);
  }
  const record = db.prepare(
    `INSERT INTO ${MIGRATIONS_TABLE} (id, name, checksum, applied_index, applied_at_ms) VALUES (?, ?, ?, ?, ?)`,
  );
  for (const m of pending) {
    const statements = splitStatements(m.sql);
    for (let i = 0; i < statements.length; i++) {
      const err = checkStatement(statements[i]!, 'write');
      if (err !== null) return { ok: false, error: { ...err, migrationId: m.id, statementIndex: i } };
    }
    for (let i = 0; i < statements.length; i++) {
      const err = run(statements[i]!, { migrationId: m.id, statementIndex: i });
      if (err !== null)
        return { ok: false, error: { ...err, message: `migration ${m.id} (${m.name}): ${err.message}` } };
    }
    record.run(BigInt(m.id), m.name, m.checksum, BigInt(ctx.index), BigInt(ctx.nowMs));
  }
  return { ok: true, type: 'migrate', value: { applied: pending.map((m) => m.id) } };
}

function fail(code: SqlErrorInfo['code'], message: string, migrationId: number): CommandResult {
  return { ok: false, error: { code, message, migrationId } };
}
