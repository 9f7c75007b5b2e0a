/**
 * A lock's renewal and release name its holder: another client that knows the fencing token
 * (it is written into the rows it guards, so anyone reading them does) can neither release nor
 * renew the lock with it. Before, a release by key and token from any client with the API secret
 * ended another's lock (found by an outside probe).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { nodeAndRemote } from '../support/one-node-config.js';

/** The client's raw cache write (what a careless or hostile client can send). */
type RawWriter = { cacheWrite(command: Record<string, unknown>): Promise<unknown> };

describe('a lock released or renewed by another client that knows its token', () => {
  const f = nodeAndRemote('hq-lock-holder-');

  for (const [holderName, otherName] of [
    ['embedded', 'remote'],
    ['remote', 'embedded'],
  ] as const) {
    test(`held by the ${holderName} client: the ${otherName} one cannot end it`, async () => {
      const { node, remote } = f;
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

  test('a raw acquire that may queue: refused from a remote client, and on the node without a bounded wait lease (a waiter nobody renews or withdraws would get the lock in its turn)', async () => {
    const { node, remote } = f;
    const lock = await node.lock('raw-wait', { leaseMs: 30_000 });
    const refused = (pattern: RegExp) => (e: Error & { code?: string }) => {
      assert.equal(e.code, 'HQL_INVALID_PARAMS', e.message);
      assert.match(e.message, pattern);
      return true;
    };
    const acquire = { type: 'lockAcquire', key: 'raw-wait', holderId: 'ghost', leaseMs: 60_000 };
    const r = remote as unknown as RawWriter;
    for (const command of [
      acquire,
      { ...acquire, waitMs: 60_000 },
      { ...acquire, waitMs: 60_000, waitLeaseMs: 10_000 },
      { type: 'lockWaitRenew', waitLeaseMs: 3_600_000, keys: ['raw-wait'], holderIds: ['ghost'] },
    ]) {
      await assert.rejects(
        r.cacheWrite(command),
        refused(/is not a client's command: wait for a lock with lock\(\)/),
      );
    }
    const n = node as unknown as RawWriter;
    await assert.rejects(n.cacheWrite(acquire), refused(/must carry a wait lease \(waitLeaseMs\)/));
    for (const waitLeaseMs of [100, 1e12]) {
      await assert.rejects(
        n.cacheWrite({ ...acquire, waitLeaseMs }),
        refused(/waitLeaseMs .* is outside 300 to 3600000/),
      );
      await assert.rejects(
        n.cacheWrite({ type: 'lockWaitRenew', waitLeaseMs, keys: ['raw-wait'], holderIds: ['w'] }),
        refused(/waitLeaseMs .* is outside 300 to 3600000/),
      );
    }
    // A try-lock never queues: any client may send one.
    for (const raw of [n, r]) {
      assert.deepEqual(await raw.cacheWrite({ ...acquire, leaseMs: 1000, waitMs: 0 }), {
        type: 'lockAcquire',
        state: 'busy',
      });
    }
    await lock.release();
    const next = await node.tryLock('raw-wait');
    assert.ok(next !== null, 'nobody was queued');
    await next.release();
  });
});
