/**
 * A remote listener that resumes after a lost connection, at a seq the cluster no longer knows
 * (its in-memory caches were lost in a full restart: found from outside), ends with HQL_LAGGED
 * (listen again), not with HQL_INVALID_PARAMS as if its caller had passed something wrong.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterLink } from '../../src/client/cluster-link.js';
import { RemoteCacheOps } from '../../src/client/remote-cache.js';
import { HiqliteError } from '../../src/lib/errors.js';
import type { ApiPush } from '../../src/protocol/cache-api-codec.js';
import { TEST_REMOTE_CACHE_OPTIONS } from '../support/remote-cache-options.js';

test('a resume refused as an unknown seq ends the listener with HQL_LAGGED, retryable', async () => {
  const opens: Array<number | undefined> = [];
  let lose: ((e: HiqliteError) => void) | null = null;
  const link = {
    async listen(
      body: { channel: string | null; afterSeq?: number },
      onPush: (p: ApiPush) => void,
      onLost: (e: HiqliteError) => void,
    ) {
      opens.push(body.afterSeq);
      if (body.afterSeq !== undefined)
        throw new HiqliteError(
          'HQL_INVALID_PARAMS',
          `cannot resume after notification ${body.afterSeq}: the cluster has sent 0 (the seq comes from elsewhere, another cluster or caches lost in a full restart): listen again without it`,
          { retryable: false },
        );
      lose = onLost;
      setImmediate(() =>
        onPush({
          push: 1,
          items: [{ channel: 'c', payload: new Uint8Array([1]), index: 7, time: 1, seq: 4 }],
        }),
      );
      return { afterSeq: 3, stop: async () => {} };
    },
    onEvent: () => () => {},
    keepConnectedWhile: () => {},
    cacheTokenFloor: () => 0,
  } as unknown as ClusterLink;
  const ops = new RemoteCacheOps(link, TEST_REMOTE_CACHE_OPTIONS);
  const source = ops.cacheListen('c');
  const first = await source.next();
  assert.equal(first.kind, 'notification');
  // The connection is lost: the listener resumes after seq 4, which the cluster does not know.
  (lose as unknown as (e: HiqliteError) => void)(
    new HiqliteError('HQL_UNAVAILABLE', 'gone', { retryable: true }),
  );
  await assert.rejects(source.next(), (e: unknown) => {
    assert.ok(e instanceof HiqliteError, String(e));
    assert.equal(e.code, 'HQL_LAGGED', e.message);
    assert.equal(e.retryable, true);
    assert.match(e.message, /cannot resume after notification 4: .*how many were missed is unknown/);
    return true;
  });
  assert.deepEqual(opens, [undefined, 4]);
  await source.close();
});
