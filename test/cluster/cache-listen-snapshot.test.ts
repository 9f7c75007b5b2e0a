/**
 * Listeners of a node that catches up by installing a cache snapshot (real processes): node 3 is
 * stopped (SIGSTOP) while the others notify and write far past its log, so the leader compacts
 * behind it and sends it a snapshot when it continues. A listener on node 3 (a remote client
 * bound to it) must then receive the notifications of the skipped range that the new state's
 * ring holds, in order, or be told it lagged: never miss them in silence.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ListenNotification } from '../../src/client/cache-client.js';
import type { HiqliteClient } from '../../src/index.js';
import { eventually, TestCluster } from './harness.js';

const RING = 60;

/** Collects a listener's payloads until `stop` is one of them, or it fails (HQL_LAGGED). */
async function collect(
  it: AsyncIterableIterator<ListenNotification<number>>,
  stop: number,
): Promise<{ got: number[]; error: (Error & { code?: string; missed?: number }) | null }> {
  const got: number[] = [];
  try {
    for await (const n of it) {
      got.push(n.payload);
      if (n.payload === stop) break;
    }
    return { got, error: null };
  } catch (e) {
    return { got, error: e as Error };
  }
}

describe('cache listeners across a snapshot install', () => {
  let cluster: TestCluster;
  let writer: HiqliteClient;
  let onNode3: HiqliteClient;
  let next = 0;

  before(async () => {
    cluster = await TestCluster.create({
      nodes: 3,
      toml: ['logs_until_snapshot = 20', `cache_notifications_ring_max = ${RING}`].join('\n'),
    });
    writer = await cluster.client([1, 2]);
    onNode3 = await cluster.client([3]);
  });

  after(async () => {
    await cluster?.close();
  });

  /** A listener on node 3, open once a probe notification reached it (bounded). */
  async function openListener(): Promise<AsyncIterableIterator<ListenNotification<number>>> {
    const it = onNode3.listen<number>('snap');
    const probe = next++;
    const first = it.next();
    await eventually('the listener on node 3 to receive a probe', async () => {
      await writer.notify('snap', probe);
      const r = await Promise.race([first, new Promise<null>((ok) => setTimeout(() => ok(null), 200))]);
      return r !== null && !r.done && r.value.payload >= probe;
    });
    return it;
  }

  /**
   * One notification delivered to the listener, then node 3 stopped while `count` notifications
   * (and 600 other writes around them) are made; then continued. `pre`: what the listener
   * received up to the one before the pause.
   */
  async function notifyWhileNode3Stopped(
    it: AsyncIterableIterator<ListenNotification<number>>,
    count: number,
  ): Promise<{ beforePause: number; pre: number[]; sent: number[] }> {
    const beforePause = next++;
    await writer.notify('snap', beforePause);
    // Received, not only applied on node 3: stopped between its apply and the push to the
    // client, it would come after the snapshot install, gone from the ring (counted as missed).
    const pre: number[] = [];
    for (let i = 0; i < 100 && !pre.includes(beforePause); i++) {
      const r = await it.next();
      assert.ok(!r.done, 'the listener ended');
      pre.push(r.value.payload);
    }
    assert.ok(pre.includes(beforePause), `the notification before the pause arrives: [${pre.join(',')}]`);
    cluster.pause(3);
    const sent: number[] = [];
    try {
      // Writes first: appends the leader had sent before the stop, still in flight, reach node 3
      // when it continues; the notifications must lie beyond them, in the compacted log.
      for (let i = 0; i < 300; i++) await writer.cache('c').put(`k${i % 10}`, i);
      for (let i = 0; i < count; i++) {
        const v = next++;
        await writer.notify('snap', v);
        sent.push(v);
      }
      for (let i = 0; i < 300; i++) await writer.cache('c').put(`k${i % 10}`, i);
    } finally {
      cluster.resume(3);
    }
    return { beforePause, pre, sent };
  }

  test('the ring holds the skipped range: the listener receives all of it, in order, once', async () => {
    const it = await openListener();
    const { beforePause, pre, sent } = await notifyWhileNode3Stopped(it, RING / 2);
    const last = next++;
    await writer.notify('snap', last);
    const collected = await collect(it, last);
    const { error } = collected;
    const got = [...pre, ...collected.got];
    assert.equal(error, null, `the listener failed: ${String(error)}`);
    // Everything from the notification before the pause on, with no gap and no repeat.
    const expected = [beforePause, ...sent, last];
    assert.deepEqual(got.slice(got.indexOf(beforePause)), expected);
  });

  test('the ring no longer holds part of it: the listener gets what came before, then HQL_LAGGED', async () => {
    const it = await openListener();
    const { beforePause, pre, sent } = await notifyWhileNode3Stopped(it, RING * 4);
    const last = next++;
    await writer.notify('snap', last);
    const collected = await collect(it, last);
    const { error } = collected;
    const got = [...pre, ...collected.got];
    assert.ok(error !== null, `the listener got ${got.length} notifications and no lag: [${got.join(',')}]`);
    assert.equal(error.code, 'HQL_LAGGED');
    const from = got.indexOf(beforePause);
    assert.ok(from !== -1, 'the notification before the pause was delivered');
    // What was delivered follows on without a gap; the lag covers at least the gone part.
    const delivered = got.slice(from);
    assert.deepEqual(delivered, [beforePause, ...sent].slice(0, delivered.length));
    assert.ok(
      (error.missed ?? 0) >= 1 && (error.missed ?? 0) <= sent.length + 1,
      `missed ${error.missed} of ${sent.length}`,
    );
  });
});
