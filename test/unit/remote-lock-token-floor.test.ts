/**
 * A remote client's held lock and the cache token floor alone (no event of a group founded
 * anew): a node restarted into a cache group founded anew tells only its floor, and every held
 * lock whose token is below it is lost at once (`lost` aborted with HQL_UNAVAILABLE), not at its
 * next renewal; one at or above it is kept. The link (fake here; its floor keeping is
 * test/transport/cluster-link-token-floor) is told to keep connected exactly while locks are held.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CacheApi } from '../../src/client/cache-client.js';
import type { ClusterLink } from '../../src/client/cluster-link.js';
import { RemoteCacheOps } from '../../src/client/remote-cache.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { API_EVENT_CACHE_TOKEN_FLOOR, type ApiEvent } from '../../src/protocol/api-codec.js';
import { ManualClock } from '../support/manual-clock.js';
import { TEST_REMOTE_CACHE_OPTIONS } from '../support/remote-cache-options.js';

const LEASE_MS = 60_000;

test('a token floor above a held lock loses it at once; locks at or above it are kept', async () => {
  const clock = new ManualClock();
  const hooks = new Set<(e: ApiEvent) => void>();
  let floor = 0;
  let holds: () => boolean = () => false;
  let nextToken = 1_000;
  const link = {
    onEvent: (hook: (e: ApiEvent) => void) => {
      hooks.add(hook);
      return () => hooks.delete(hook);
    },
    keepConnectedWhile: (h: () => boolean) => {
      holds = h;
    },
    cacheTokenFloor: () => floor,
    call: async (body: { op: string; holderId?: string }) => {
      if (body.op === 'cacheLock') {
        nextToken += 1_000;
        return {
          token: nextToken,
          holderId: body.holderId,
          expiresAtMs: clock.wallMs() + LEASE_MS,
          remainingMs: LEASE_MS,
          waitedMs: 0,
        };
      }
      return { index: 1, result: { ok: true, value: { type: 'lockRelease', released: true } } };
    },
  } as unknown as ClusterLink;
  const ops = new RemoteCacheOps(link, TEST_REMOTE_CACHE_OPTIONS);
  const api = new CacheApi(ops, clock);
  const tell = (f: number) => {
    floor = f;
    for (const h of hooks) h({ event: API_EVENT_CACHE_TOKEN_FLOOR, floor: f });
  };

  const a = await api.lock('a', { leaseMs: LEASE_MS }); // token 2000
  const b = await api.lock('b', { leaseMs: LEASE_MS }); // token 3000
  assert.deepEqual([a.token, b.token], [2000, 3000]);
  assert.equal(holds(), true, 'the link keeps connected while locks are held');

  tell(3000);
  assert.equal(a.lost.aborted, true, 'token 2000 < floor 3000: granted by a group before');
  const reason = a.lost.reason as HiqliteError;
  assert.ok(reason instanceof HiqliteError, String(reason));
  assert.equal(reason.code, 'HQL_UNAVAILABLE');
  assert.match(reason.message, /lock 'a' was lost: the cache group was founded anew/);
  assert.equal(b.lost.aborted, false, 'token 3000 is not below the floor');
  assert.equal(b.remainingMs() > 0, true);
  assert.equal(holds(), true, 'b is still held');

  await b.release();
  assert.equal(holds(), false, 'nothing held: no reconnection needed');
  // A lock granted after the floor was told is above it.
  const c = await api.lock('c', { leaseMs: LEASE_MS });
  assert.equal(c.lost.aborted, false);
  await c.release();
});
