/**
 * connect() tries every listed node: one that refuses the client's secret (its secret_api differs,
 * or another service answers there) does not keep it from the others. Only when no node took it
 * does it fail, HQL_UNAUTHORIZED naming each node's reason (found by an outside probe: a wrong
 * secret on the first address failed the connect at once).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

const OTHER_SECRET = 'another-api-secret-0123456789abcd';

describe('connect() with a secret one listed node refuses', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-connect-refused-'));
  let ours: HiqliteNode;
  let theirs: HiqliteNode;
  let oursAddr: string;
  let theirsAddr: string;

  before(async () => {
    const a = await oneNodeConfig(join(root, 'ours'));
    const b = await oneNodeConfig(join(root, 'theirs'), { secretApi: OTHER_SECRET });
    ours = await start(a, { thread: 'main' });
    theirs = await start(b, { thread: 'main' });
    oursAddr = a.nodes[0]!.addrApi;
    theirsAddr = b.nodes[0]!.addrApi;
    await ours.execute('CREATE TABLE here (x)');
  });
  after(async () => {
    await ours?.close();
    await theirs?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('the node that refuses is listed first: the client connects to the next', async () => {
    const db = await connect({ nodes: [theirsAddr, oursAddr], secretApi: TEST_SECRETS.secretApi });
    try {
      assert.deepEqual(await db.query("SELECT name FROM sqlite_master WHERE name = 'here'"), [
        { name: 'here' },
      ]);
    } finally {
      await db.close();
    }
  });

  test('no node takes the secret: HQL_UNAUTHORIZED with every node’s reason', async () => {
    await assert.rejects(
      connect({ nodes: [oursAddr, theirsAddr], secretApi: 'a-secret-nobody-has-0123456789ab' }),
      (e: Error & { code?: string; retryable?: boolean }) => {
        assert.equal(e.code, 'HQL_UNAUTHORIZED', e.message);
        assert.equal(e.retryable, false);
        assert.match(e.message, /^connect: no node took the client: /);
        assert.equal(e.message.split('; ').length, 2, e.message);
        return true;
      },
    );
  });
});
