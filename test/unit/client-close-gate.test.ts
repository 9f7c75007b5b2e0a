/**
 * The cache API's close gate (client/cache-client.ts CacheApi.beginClose): from the call of the
 * client's close() on, every call is refused with HQL_CLOSED without reaching the node, except the
 * releases of the locks the client holds; a lock asked for before close() and granted after it is
 * released at once (the client could not renew it) and its caller told HQL_CLOSED.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CacheApi, type CacheOps } from '../../src/client/cache-client.js';
import type { HiqliteError } from '../../src/lib/errors.js';
import { ManualClock } from '../support/manual-clock.js';

function fakeNode() {
  const clock = new ManualClock();
  const sent: Array<{ type: string; token?: number }> = [];
  const grants: Array<(token: number) => void> = [];
  let calls = 0;
  const ops = {
    cacheLock: () => {
      calls++;
      return new Promise((resolve) => {
        grants.push((token) => resolve({ token, expiresAtMs: clock.wallMs() + 10_000 }));
      });
    },
    cacheWrite: async (command: { type: string; token?: number }) => {
      calls++;
      sent.push(command);
      return { type: command.type, index: 1, renewed: true };
    },
    cacheRead: async () => {
      calls++;
      return null;
    },
    cacheListen: () => {
      calls++;
      return { next: () => new Promise(() => {}), close: () => {} };
    },
    cacheLocalEntry: () => {
      calls++;
      return null;
    },
  } as unknown as CacheOps;
  return { api: new CacheApi(ops, clock), sent, grants, calls: () => calls };
}

const closed = (e: HiqliteError) => e.code === 'HQL_CLOSED' && e.retryable === false;

test('after close() is called every call is refused, none reaches the node; held locks are released', async () => {
  const n = fakeNode();
  const pending = n.api.lock('held');
  n.grants.shift()?.(7);
  const held = await pending;
  const before = n.calls();
  const closing = n.api.beginClose();
  await assert.rejects(n.api.cache('c').put('k', 1), closed);
  await assert.rejects(n.api.cache('c').get('k'), closed);
  await assert.rejects(n.api.cache('c').delete('k'), closed);
  await assert.rejects(n.api.counter('n').add('k', 1), closed);
  await assert.rejects(n.api.notify('ch', 1), closed);
  await assert.rejects(n.api.clearCaches(), closed);
  await assert.rejects(n.api.lock('other'), closed);
  await assert.rejects(n.api.tryLock('other'), closed);
  assert.throws(() => n.api.cache('c').getLocal('k'), closed);
  assert.throws(() => n.api.listen('ch'), closed);
  await closing;
  // The only call that reached the node: the release of the held lock.
  assert.deepEqual(
    n.sent.slice(-1).map((c) => [c.type, c.token]),
    [['lockRelease', 7]],
  );
  assert.equal(n.calls(), before + 1);
  await held.release(); // released by close(): a no-op
  assert.equal(n.calls(), before + 1);
});

test('a lock granted after close() was called is released at once and its caller told HQL_CLOSED', async () => {
  const n = fakeNode();
  const asked = n.api.lock('job');
  const outcome = asked.then(
    () => 'granted',
    (e: HiqliteError) => e.code,
  );
  await n.api.beginClose();
  n.grants.shift()?.(11);
  assert.equal(await outcome, 'HQL_CLOSED');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    n.sent.map((c) => [c.type, c.token]),
    [['lockRelease', 11]],
  );
});
