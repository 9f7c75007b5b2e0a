/**
 * Everything a node writes under its data directory is private to its user: directories 0700,
 * files 0600, whatever the process's umask (issue 9, item 9). The database holds the
 * application's data; the directory holds the cluster id and the Raft log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { start } from '../../src/index.js';
import { freePorts } from '../support/free-ports.js';

function walk(dir: string): string[] {
  const out = [dir];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

test('a node creates its directories 0700 and its files 0600 under a permissive umask', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-modes-'));
  const dataDir = join(root, 'data');
  const [raft, api] = await freePorts(2);
  const umask = process.umask(0o022);
  try {
    const node = await start({
      nodeId: 1,
      nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
      dataDir,
      secretRaft: 'raft-secret-for-tests-0123456789',
      secretApi: 'api-secret-for-tests-0123456789',
      logsUntilSnapshot: 10,
    });
    try {
      await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      // Enough writes for a snapshot, so its files are among those checked.
      for (let i = 0; i < 30; i++) await node.execute('INSERT INTO t (id) VALUES (?)', [i]);
    } finally {
      await node.close();
    }
    const paths = walk(dataDir);
    assert.ok(
      paths.some((p) => p.endsWith('.snap')),
      `a snapshot was taken: ${paths.join(', ')}`,
    );
    assert.ok(
      paths.some((p) => p.endsWith('.db')),
      'the database file exists',
    );
    for (const p of paths) {
      const mode = statSync(p).mode & 0o777;
      const expected = statSync(p).isDirectory() ? 0o700 : 0o600;
      assert.equal(mode.toString(8), expected.toString(8), p.slice(root.length));
    }
  } finally {
    process.umask(umask);
    rmSync(root, { recursive: true, force: true });
  }
});
