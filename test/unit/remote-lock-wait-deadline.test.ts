/**
 * A remote client's lock wait keeps its `waitMs` when its node goes away mid-wait: the attempt
 * whose connection was lost is withdrawn before the next one queues, and that withdrawal (a
 * cache write to a node that does not answer) is bounded by what is left of the wait and by the
 * caller's deadline, not by the client's request timeout. Found from outside: a client whose only
 * node was killed 400 ms into a 2,000 ms wait got HQL_TIMEOUT "not granted within 2000 ms" after
 * 10.4 s (its requestTimeoutMs). The link is fake: attempts lose their connection, writes get no
 * answer until their own timeout (the link's, as ClusterLink keeps it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CacheApi } from '../../src/client/cache-client.js';
import type { ClusterLink } from '../../src/client/cluster-link.js';
import { RemoteCacheOps } from '../../src/client/remote-cache.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { systemClock } from '../../src/node/system-clock.js';
import { TEST_REMOTE_CACHE_OPTIONS } from '../support/remote-cache-options.js';

/** The client's request timeout: what a write waits for an answer that never comes. */
const REQUEST_TIMEOUT_MS = 8_000;

test('a lock wait whose node is gone ends at waitMs with HQL_TIMEOUT, not at the request timeout of the withdrawal', async () => {
  const timers = new Set<NodeJS.Timeout>();
  /** The deadline of each withdrawal (a lockCancel write) the client sent. */
  const withdrawalTimeouts: (number | undefined)[] = [];
  let attempts = 0;
  const link = {
    onEvent: () => () => {},
    keepConnectedWhile: () => {},
    cacheTokenFloor: () => 0,
    call: (body: { op: string; holderId?: string }, o: { timeoutMs?: number }) =>
      new Promise((_resolve, reject) => {
        if (body.op === 'cacheLock') {
          attempts++;
          // Queued, then the connection is lost: the attempt may wait on in the lock's queue.
          const t = setTimeout(
            () =>
              reject(
                new HiqliteError('HQL_OUTCOME_UNKNOWN', 'the connection failed after the request was sent', {
                  retryable: false,
                }),
              ),
            50,
          );
          timers.add(t);
          return;
        }
        // The withdrawal (lockCancel): no node answers before the call's own deadline.
        withdrawalTimeouts.push(o.timeoutMs);
        const t = setTimeout(
          () => reject(new HiqliteError('HQL_TIMEOUT', 'no answer', { retryable: true })),
          o.timeoutMs ?? REQUEST_TIMEOUT_MS,
        );
        timers.add(t);
      }),
  } as unknown as ClusterLink;
  const api = new CacheApi(new RemoteCacheOps(link, TEST_REMOTE_CACHE_OPTIONS), systemClock);
  const waitMs = 600;
  const started = performance.now();
  try {
    await assert.rejects(api.lock('job', { leaseMs: 5_000, waitMs }), (e: unknown) => {
      assert.ok(e instanceof HiqliteError, String(e));
      assert.equal(e.code, 'HQL_TIMEOUT');
      assert.match(e.message, /lock 'job' was not granted within 600 ms/);
      return true;
    });
    const tookMs = performance.now() - started;
    assert.ok(attempts >= 1, 'the wait was asked for');
    // Each withdrawal before a next attempt is bounded by what was left of the wait (the one
    // sent as the call ends runs behind it, with the request timeout: undefined here).
    const bounded = withdrawalTimeouts.filter((t) => t !== undefined);
    assert.ok(bounded.length >= 1, `withdrawals before a next attempt: ${withdrawalTimeouts.join(', ')}`);
    for (const t of bounded)
      assert.ok(t <= waitMs, `a withdrawal with a deadline of ${t} ms in a wait of ${waitMs}`);
    // Its deadline kept: the request timeout (8 s) is far from it, whatever the machine's load.
    assert.ok(
      tookMs < REQUEST_TIMEOUT_MS / 2,
      `the wait of ${waitMs} ms ended after ${Math.round(tookMs)} ms`,
    );
  } finally {
    for (const t of timers) clearTimeout(t);
  }
});
