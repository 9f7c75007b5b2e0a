/**
 * Load that cluster tests keep running through a fault, and what it must show afterwards: SQL
 * writes (every acknowledged row must be on every replica) and notifications (a listener must
 * receive every one that was sent, once, in order).
 */
import assert from 'node:assert/strict';
import type { HiqliteClient } from '../../src/index.js';
import { eventually, sleep, type TestCluster } from './harness.js';

/** Writes rows `${tag}-${n}` into `t (v)` with `concurrency` callers until `stop()`; keeps what was acknowledged. */
export function writer(db: HiqliteClient, tag: string, concurrency = 4) {
  const acked: string[] = [];
  const errors = new Map<string, number>();
  /** The first message of each error code, for a failing assertion to say why. */
  const messages = new Map<string, string>();
  let lastIndex = 0;
  let n = 0;
  let stopped = false;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      const v = `${tag}-${n++}`;
      try {
        const r = await db.execute('INSERT INTO t (v) VALUES (?)', [v]);
        acked.push(v);
        lastIndex = Math.max(lastIndex, r.logIndex);
      } catch (e) {
        const code = (e as { code?: string }).code ?? String(e);
        errors.set(code, (errors.get(code) ?? 0) + 1);
        if (!messages.has(code)) messages.set(code, (e as Error).message ?? String(e));
        await sleep(20);
      }
    }
  });
  return {
    acked,
    errors,
    /** What an assertion that no write failed prints: each code, its count and first message. */
    get failures(): string {
      return JSON.stringify([...errors].map(([code, count]) => ({ code, count, first: messages.get(code) })));
    },
    get lastIndex() {
      return lastIndex;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Every acknowledged row is on every node of `ids`, and their replicas are identical. */
export async function checkReplicasOf(
  c: TestCluster,
  acked: readonly string[],
  minIndex: number,
  ids: readonly number[] = [1, 2, 3],
): Promise<void> {
  const rows = await c.rowsOn<{ v: string }>('SELECT v FROM t ORDER BY id', { ids, minIndex });
  const [firstId, ...others] = ids as [number, ...number[]];
  const first = rows.get(firstId)!;
  for (const id of others)
    assert.deepEqual(rows.get(id), first, `node ${id} holds the rows node ${firstId} holds`);
  const held = new Set(first.map((r) => r.v));
  const lost = acked.filter((v) => !held.has(v));
  assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged writes lost`);
}

/**
 * `notifier` sends 1, 2, 3, … on `channel` (every 5 ms) while `listener` listens; `stop()` sends a
 * last one, waits for the listener to receive it (up to 20 s), and asserts that no notification
 * failed and that the listener received every one sent, once, in order.
 */
export async function notifications(listener: HiqliteClient, notifier: HiqliteClient, channel: string) {
  const received: number[] = [];
  const listening = (async () => {
    for await (const n of listener.listen(channel)) {
      received.push(n.payload as number);
      if (n.payload === -1) return;
    }
  })();
  // The listener is open once a notification sent now arrives; 0 may arrive more than once.
  await eventually('the listener to open', async () => {
    await notifier.notify(channel, 0);
    return received.length > 0;
  });
  const sent: number[] = [];
  const errors: string[] = [];
  let notifying = true;
  const notifies = (async () => {
    for (let i = 1; notifying; i++) {
      try {
        await notifier.notify(channel, i);
        sent.push(i);
      } catch (e) {
        errors.push((e as { code?: string }).code ?? String(e));
      }
      await sleep(5);
    }
  })();
  return {
    get sent() {
      return sent.length;
    },
    async stop(): Promise<void> {
      notifying = false;
      await notifies;
      await notifier.notify(channel, -1);
      sent.push(-1);
      await Promise.race([listening, sleep(20_000)]);
      assert.deepEqual(errors, [], 'no notification failed');
      assert.deepEqual(
        received.filter((n) => n !== 0),
        sent,
        'the listener got every notification once, in order',
      );
    },
  };
}
