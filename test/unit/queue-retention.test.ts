/**
 * What a queue or cache has let go of can be collected: a removed item is not kept alive by the
 * backing array. Found with 800 notifications of 900 KB: every node of a 3-node cluster held
 * ~750 MB in its log store's cache, bounded at 8 MiB, because evicted entries stayed in the
 * deque's array until 1,024 of them had been evicted. Each structure that removes from the front
 * by an index is checked here (the log cache, the peer send queue, the snapshot chunk channel,
 * a listener's queue, the notification ring).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { IndexDeque } from '../../src/lib/index-deque.js';
import { ListenQueue } from '../../src/node/listen-queue.js';
import type { Entry, LogIndex, Term } from '../../src/raft/types.js';
import { NotificationRing } from '../../src/sm/cache/notifications.js';
import { DEFAULT_CACHE_LIMITS } from '../../src/sm/cache/options.js';
import { openFileLogStore } from '../../src/storage/file-log-store.js';
import { ChunkChannel } from '../../src/transport/chunk-channel.js';
import { FrameQueue } from '../../src/transport/frame-queue.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** How many of `refs` are still reachable after full collections. */
async function alive(refs: readonly WeakRef<object>[]): Promise<number> {
  // WeakRefs are cleared only after the current job: collect across a few turns.
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

/** Hands `count` fresh 1,000-byte arrays to `add`, keeping only weak references to them. */
function addTracked(count: number, add: (bytes: Uint8Array) => void): WeakRef<object>[] {
  const refs: WeakRef<object>[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(1000);
    refs.push(new WeakRef(bytes));
    add(bytes);
  }
  return refs;
}

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('removed items are not retained', () => {
  test('IndexDeque: dropFront and shift release what they remove', async () => {
    const refs: WeakRef<object>[] = [];
    const deque = new IndexDeque<{ n: number }>();
    (() => {
      for (let n = 0; n < 10; n++) {
        const item = { n };
        refs.push(new WeakRef(item));
        deque.push(item);
      }
    })();
    deque.dropFront(3);
    assert.equal(deque.shift()?.n, 3);
    assert.equal(deque.length, 6);
    assert.equal(await alive(refs.slice(0, 4)), 0, 'removed items still reachable');
    assert.equal(await alive(refs.slice(4)), 6, 'kept items must stay');
    assert.deepEqual(
      Array.from({ length: deque.length }, (_, i) => deque.get(i).n),
      [4, 5, 6, 7, 8, 9],
    );
  });

  test('FileLogStore: entries evicted from its cache (cacheBytesMax) can be collected', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hiqlite-retention-'));
    dirs.push(dir);
    const { store } = await openFileLogStore(dir, { cacheBytesMax: 256 * 1024 });
    const refs: WeakRef<object>[] = [];
    for (let index = 1; index <= 40; index++) {
      const data = new Uint8Array(100_000).fill(index);
      refs.push(new WeakRef(data));
      const entry: Entry = { kind: 'command', index: index as LogIndex, term: 1 as Term, data };
      await store.append([entry]);
    }
    // 40 entries of 100 KB against a 256 KB cache: all but the newest few are evicted.
    const held = await alive(refs);
    assert.ok(held <= 4, `${held} of 40 entries of 100 KB still in memory (cache bound 256 KB)`);
    // Evicted entries are still readable (from disk).
    const first = store.entries(1 as LogIndex, 2 as LogIndex)[0];
    assert.ok(first?.kind === 'command' && first.data[0] === 1);
    await store.close();
  });

  test('FrameQueue: frames taken for the socket are released', async () => {
    const q = new FrameQueue(100, 1 << 30);
    const refs = addTracked(20, (frame) => q.push(frame));
    assert.equal(q.takeBatch(5000).length, 5);
    assert.equal(q.length, 15);
    assert.equal(await alive(refs.slice(0, 5)), 0);
    assert.equal(q.bytes, 15_000);
  });

  test('ChunkChannel: chunks handed to the consumer are released', async () => {
    let consumed = 0;
    const ch = new ChunkChannel((n) => {
      consumed += n;
    });
    const refs = addTracked(10, (chunk) => ch.push(chunk));
    const it = ch[Symbol.asyncIterator]();
    for (let i = 0; i < 4; i++) assert.equal((await it.next()).done, false);
    assert.equal(consumed, 4000);
    assert.equal(await alive(refs.slice(0, 4)), 0);
    assert.equal(await alive(refs.slice(4)), 6);
    await it.return?.();
  });

  test('ListenQueue: notifications taken by the listener are released', async () => {
    const q = new ListenQueue(100);
    const refs = addTracked(10, (payload) => {
      q.offer({ channel: 'c', payload, index: 1, time: 0, seq: 1 });
    });
    assert.equal(q.drain(4).length, 4);
    assert.equal(await alive(refs.slice(0, 4)), 0);
    assert.equal(await alive(refs.slice(4)), 6);
    q.close();
  });

  test('NotificationRing: notifications evicted past its bound are released', async () => {
    const ring = new NotificationRing({ ...DEFAULT_CACHE_LIMITS, notificationsRingMax: 3 });
    const refs = addTracked(10, (payload) => {
      ring.push('c', payload, 1, 0);
    });
    assert.equal(ring.size, 3);
    assert.deepEqual(
      ring.after(0, 10).notifications.map((n) => n.seq),
      [8, 9, 10],
    );
    assert.equal(await alive(refs.slice(0, 7)), 0);
    assert.equal(await alive(refs.slice(7)), 3);
  });
});
