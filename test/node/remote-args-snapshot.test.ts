/**
 * A remote call sends what was passed at the call: a caller that reuses its Buffer or parameter
 * array right after calling (without awaiting) does not change what is written or read, even
 * when the request waits for a connection first (the node restarted: the client reconnects).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

const root = mkdtempSync(join(tmpdir(), 'hq-remote-args-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('a remote write or read waiting for a reconnection sends what was passed at the call', async () => {
  const cfg = await oneNodeConfig(root);
  let node = await start(cfg, { thread: 'main' });
  const db = await connect({ nodes: [cfg.nodes[0]?.addrApi ?? ''], secretApi: TEST_SECRETS.secretApi });
  try {
    await db.execute('CREATE TABLE b (v BLOB, s TEXT)');
    await node.close();
    node = await start(cfg, { thread: 'main' });
    // The client's connection died with the node: these wait for a new one before they leave.
    const buf = Buffer.from('aaaa');
    const params: Array<Uint8Array | string> = [Buffer.from('cccc'), 'y'];
    const writes = [
      db.execute('INSERT INTO b VALUES (?, ?)', [buf, 'x']),
      db.execute('INSERT INTO b VALUES (?, ?)', params),
      db.txn([['INSERT INTO b VALUES (?, ?)', params]]),
    ];
    buf.fill(0x62);
    params[1] = 'mutated';
    await Promise.all(writes);
    const rows = await db.query<{ v: Uint8Array; s: string }>('SELECT v, s FROM b ORDER BY rowid');
    assert.deepEqual(
      rows.map((r) => `${Buffer.from(r.v).toString()} ${r.s}`),
      ['aaaa x', 'cccc y', 'cccc y'],
    );
    // A read waiting for a reconnection likewise.
    await node.close();
    node = await start(cfg, { thread: 'main' });
    const readParams = ['y'];
    const read = db.query<{ p: string }>('SELECT ? AS p', readParams);
    readParams[0] = 'mutated';
    assert.deepEqual(await read, [{ p: 'y' }]);
  } finally {
    await db.close();
    await node.close();
  }
});
