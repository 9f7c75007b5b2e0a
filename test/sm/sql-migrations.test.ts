import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Migration } from '../../src/sm/sql/command.js';
import type { CommandResult } from '../../src/sm/sql/result.js';
import { cmd, dumpDatabase, NOW_MS, smFixture } from './sql-test-helpers.js';

const M1: Migration = {
  id: 1,
  name: 'users',
  sql: 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);',
  checksum: 'c1',
};
const M2: Migration = {
  id: 2,
  name: 'audit',
  sql: `CREATE TABLE audit (user_id INTEGER);
        CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN
          INSERT INTO audit VALUES (new.id);
        END;`,
  checksum: 'c2',
};
const M3: Migration = {
  id: 3,
  name: 'emails',
  sql: 'ALTER TABLE users ADD COLUMN email TEXT',
  checksum: 'c3',
};

function setup() {
  const { sm, log } = smFixture();
  const migrate = (...migrations: Migration[]): CommandResult =>
    sm.applyBatch(log.entries(cmd({ type: 'migrate', migrations })))[0]!;
  const migrationsTable = () => dumpDatabase(sm.path)._migrations;
  const tables = () =>
    (dumpDatabase(sm.path).__schema as string[][]).filter((r) => r[0] === 'table').map((r) => r[1]);
  return { sm, log, migrate, migrationsTable, tables };
}

function errorCode(r: CommandResult): string {
  return r.ok ? 'ok' : r.error.code;
}

describe('migrate', () => {
  test('applies migrations in order and records id, name, checksum, log index and time', () => {
    const { migrate, migrationsTable } = setup();
    assert.deepEqual(migrate(M1, M2), { ok: true, type: 'migrate', value: { applied: [1, 2] } });
    const t = BigInt(NOW_MS);
    assert.deepEqual(migrationsTable(), [
      [1n, 'users', 'c1', 1n, t],
      [2n, 'audit', 'c2', 1n, t],
    ]);
  });

  test('re-sending applied migrations is idempotent; only new ones run', () => {
    const { migrate, migrationsTable } = setup();
    migrate(M1);
    assert.deepEqual(migrate(M1, M2, M3), { ok: true, type: 'migrate', value: { applied: [2, 3] } });
    assert.deepEqual(migrate(M1, M2, M3), { ok: true, type: 'migrate', value: { applied: [] } });
    assert.equal(migrationsTable()?.length, 3);
  });

  test('an applied migration with a changed checksum or name is HQL_MIGRATION_CHANGED and nothing applies', () => {
    const { migrate, migrationsTable, tables } = setup();
    migrate(M1);
    const changedChecksum = migrate({ ...M1, checksum: 'other' }, M2);
    assert.equal(errorCode(changedChecksum), 'HQL_MIGRATION_CHANGED');
    assert.equal(!changedChecksum.ok && changedChecksum.error.migrationId, 1);
    assert.equal(errorCode(migrate({ ...M1, name: 'renamed' })), 'HQL_MIGRATION_CHANGED');
    assert.equal(migrationsTable()?.length, 1);
    assert.equal(tables().includes('audit'), false);
  });

  test('ids must increase within the command and stay above every applied id', () => {
    const { migrate, migrationsTable } = setup();
    assert.equal(errorCode(migrate(M2, M1)), 'HQL_MIGRATION_ORDER');
    migrate(M1, M3);
    assert.equal(errorCode(migrate(M1, M2, M3)), 'HQL_MIGRATION_ORDER');
    assert.deepEqual(
      migrationsTable()?.map((r) => (r as unknown[])[0]),
      [1n, 3n],
    );
  });

  test('a failing migration applies nothing of the command', () => {
    const { migrate, migrationsTable, tables } = setup();
    const broken: Migration = {
      id: 3,
      name: 'broken',
      sql: 'CREATE TABLE ok (a); CREATE TABLE nope (',
      checksum: 'c',
    };
    const r = migrate(M1, M2, broken);
    assert.equal(errorCode(r), 'HQL_SQL');
    assert.ok(!r.ok);
    assert.equal(r.error.migrationId, 3);
    assert.equal(r.error.statementIndex, 1);
    assert.equal(migrationsTable()?.length ?? 0, 0);
    assert.deepEqual(
      tables().filter((t) => !String(t).startsWith('_')),
      [],
    );
  });

  test('transaction control inside a migration is rejected', () => {
    const { migrate, migrationsTable } = setup();
    const r = migrate({ id: 1, name: 'tx', sql: 'BEGIN; CREATE TABLE a (x); COMMIT;', checksum: 'c' });
    assert.equal(errorCode(r), 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(migrationsTable()?.length ?? 0, 0);
  });

  test('the trigger created by a migration works', () => {
    const { sm, log, migrate } = setup();
    migrate(M1, M2);
    sm.applyBatch(
      log.entries(
        cmd({ type: 'execute', sql: "INSERT INTO users (name) VALUES ('a')", params: [], returning: false }),
      ),
    );
    assert.deepEqual(dumpDatabase(sm.path).audit, [[1n]]);
  });
});
