/**
 * A lock's renewal and release name its holder: another client that knows the fencing token
 * (it is written into the rows it guards, so anyone reading them does) can neither release nor
 * renew the lock with it. Before, a release by key and token from any client with the API secret
 * ended another's lock (found by an outside probe).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteClient, type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

/** The client's raw cache write (what a careless or hostile client can send). */
type RawWriter = { cacheWrite(command: Record<string, unknown>): Promise<unknown> };

describe('a lock released or renewed by another client that knows its token', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-lock-holder-'));
  let node: HiqliteNode;
  let remote: HiqliteClient;

  before(async () => {
    const cfg = await oneNodeConfig(root);
    node = await start(cfg, { thread: 'worker' });
    remote = await connect({ nodes: [cfg.nodes[0]!.addrApi], secretApi: TEST_SECRETS.secretApi });
  });
  after(async () => {
    await remote?.close();
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  for (const [holderName, otherName] of [
    ['embedded', 'remote'],
    ['remote', 'embedded'],
  ] as const) {
    test(`held by the ${holderName} client: the ${otherName} one cannot end it`, async () => {
      const holder = holderName === 'embedded' ? node : remote;
      const other = (otherName === 'embedded' ? node : remote) as unknown as RawWriter;
      const key = `job-${holderName}`;
      const lock = await holder.lock(key, { leaseMs: 30_000 });
      for (const type of ['lockRelease', 'lockRenew']) {
        await assert.rejects(
          other.cacheWrite({ type, key, token: lock.token }),
          (e: Error & { code?: string }) => {
            assert.equal(e.code, 'HQL_INVALID_PARAMS', e.message);
            assert.match(e.message, /must name its holder \(holderId\)/);
            return true;
          },
        );
      }
      assert.deepEqual(
        await other.cacheWrite({ type: 'lockRelease', key, token: lock.token, holderId: 'guess' }),
        {
          type: 'lockRelease',
          released: false,
        },
      );
      assert.equal(await (other as unknown as HiqliteClient).tryLock(key), null, 'still held');
      assert.equal(lock.lost.aborted, false);
      await lock.release();
      const next = await (other as unknown as HiqliteClient).tryLock(key);
      assert.ok(next !== null && next.token > lock.token);
      await next.release();
    });
  }
});
