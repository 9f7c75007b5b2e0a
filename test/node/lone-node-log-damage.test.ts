/**
 * A node configured alone whose Raft log was damaged while it was stopped. There is no cluster to
 * rejoin and no leader to re-sync from, so its state must never be discarded: that deleted the
 * database (every acknowledged row) and then waited forever for a cluster to join.
 * - The log lost its tail below what the database applied: nothing acknowledged is lost (a node
 *   alone acknowledges a write once applied); the node starts from a snapshot of its database.
 * - Damage it cannot recover from: the start fails with HQL_CORRUPTION, and nothing is deleted.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { HiqliteError, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

async function nodeWithRows(rows: number): Promise<{ cfg: NodeConfig; dataDir: string }> {
  const root = mkdtempSync(join(tmpdir(), 'hq-lone-'));
  roots.push(root);
  const dataDir = join(root, 'data');
  const cfg = await oneNodeConfig(root, { dataDir });
  const node = await start(cfg, { thread: 'main' });
  try {
    await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    for (let i = 0; i < rows; i++) await node.execute('INSERT INTO t (v) VALUES (?)', ['x'.repeat(400)]);
  } finally {
    await node.close();
  }
  return { cfg, dataDir };
}

/** Zeroes the last `bytes` of the records of the newest segment (synced records lost). */
function zeroLogTail(dataDir: string, bytes: number): void {
  const logs = join(dataDir, 'logs');
  const segments = readdirSync(logs)
    .filter((n) => n.endsWith('.seg'))
    .sort();
  const file = join(logs, segments[segments.length - 1]!);
  const content = readFileSync(file);
  let end = content.length;
  while (end > 0 && content[end - 1] === 0) end--; // segments are preallocated with zeros
  assert.ok(end > bytes, 'the segment holds more records than are cut');
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(bytes), 0, bytes, end - bytes);
  } finally {
    closeSync(fd);
  }
}

function rowsInDatabaseFile(dataDir: string): number {
  const dir = join(dataDir, 'state_machine', 'db');
  const file = readdirSync(dir).find((n) => n.endsWith('.db'));
  assert.ok(file !== undefined, 'the database file is still there');
  const db = new Database(join(dir, file), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('a node configured alone whose Raft log was damaged while stopped', () => {
  test('a tail lost below what the database applied: it starts with every row and takes writes', async () => {
    const { cfg, dataDir } = await nodeWithRows(120);
    zeroLogTail(dataDir, 12_000);
    let node = await start(cfg, { thread: 'main' });
    try {
      assert.deepEqual(await node.query('SELECT count(*) AS n FROM t'), [{ n: 120 }]);
      await node.execute('INSERT INTO t (v) VALUES (?)', ['after']);
    } finally {
      await node.close();
    }
    // The recovery holds across a restart.
    node = await start(cfg, { thread: 'main' });
    try {
      assert.deepEqual(await node.query('SELECT count(*) AS n FROM t'), [{ n: 121 }]);
    } finally {
      await node.close();
    }
  });

  test('damage it cannot recover from stops the start with HQL_CORRUPTION and deletes nothing', async () => {
    const { cfg, dataDir } = await nodeWithRows(20);
    rmSync(join(dataDir, 'logs', 'hard-state'));
    await assert.rejects(
      start(cfg, { thread: 'main' }),
      (e: unknown) =>
        e instanceof HiqliteError &&
        e.code === 'HQL_CORRUPTION' &&
        /hard state is lost/.test(e.message) &&
        /nothing was deleted/.test(e.message),
    );
    assert.equal(rowsInDatabaseFile(dataDir), 20);
  });
});
