/**
 * The cache mirror protocol without threads: a node-side state machine with its `MirrorFeed`,
 * and a `CacheMirror`, joined by an in-memory queue that stands for the MessagePort. The mirror
 * never applies a gap (it stops serving and asks for a new epoch), the feed's window bounds what
 * is in flight (an overflow loses the epoch and a snapshot follows once the mirror caught up), an
 * installed snapshot on the node starts a new epoch, and after each the two states are equal byte
 * for byte.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CacheMirror, digestOf } from '../../src/client/cache-mirror.js';
import { MirrorFeed } from '../../src/client/cache-mirror-feed.js';
import { type MirrorEvent, packEntries } from '../../src/client/cache-mirror-wire.js';
import type { LogClockSource } from '../../src/lib/log-clock.js';
import type { Entry } from '../../src/raft/types.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { commandEntry, T0 } from '../sm/cache-helpers.js';

class Pair {
  readonly node = new CacheStateMachine();
  readonly feed: MirrorFeed;
  readonly mirror: CacheMirror;
  /** Events sent by the node and not yet delivered to the mirror (the port). */
  readonly port: MirrorEvent[] = [];
  readonly acks: number[] = [];
  readonly resyncs: number[] = [];
  readonly problems: string[] = [];

  constructor(inflightBytesMax = 1 << 20, clock: LogClockSource = { monotonicMs: () => 0, wallMs: () => 0 }) {
    this.feed = new MirrorFeed({
      sm: this.node,
      inflightBytesMax,
      post: (e) => this.port.push(e),
      onError: (e) => {
        throw e;
      },
    });
    this.mirror = new CacheMirror({
      limits: {},
      ack: (bytes) => this.acks.push(bytes),
      resync: (epoch) => this.resyncs.push(epoch),
      onProblem: (m) => this.problems.push(m),
      clock,
    });
  }

  /** Applies `n` puts on the node (one entry each) and tells the feed. */
  put(n: number, valueBytes = 10): void {
    for (let i = 0; i < n; i++) {
      const index = this.node.appliedIndex() + 1;
      const e = commandEntry(
        index,
        {
          type: 'put',
          cache: 'c',
          key: `k${index % 50}`,
          value: new Uint8Array(valueBytes).fill(index % 251),
        },
        T0 + index,
      );
      this.node.applySync([e], [false]);
      this.feed.applied([e]);
    }
  }

  /** Delivers what the port holds, then hands the mirror's acks and resync requests back; repeats. */
  async settle(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      // Macrotask turns: the feed's snapshot writer and the mirror's restore run on promises.
      await new Promise((r) => setImmediate(r));
      const events = this.port.splice(0);
      for (const e of events) this.mirror.onEvent(e);
      const acks = this.acks.splice(0);
      for (const b of acks) this.feed.ack(b);
      const resyncs = this.resyncs.splice(0);
      for (const ep of resyncs) this.feed.resyncRequested(ep);
      if (events.length === 0 && acks.length === 0 && resyncs.length === 0 && this.mirror.live) {
        await new Promise((r) => setImmediate(r));
        if (this.port.length === 0 && this.acks.length === 0) return;
      }
    }
    throw new Error(
      `did not settle: ${JSON.stringify(this.mirror.status())} ${JSON.stringify({ inflight: this.feed.inflight, problems: this.problems, port: this.port.map((e) => e.type) })}`,
    );
  }

  async assertEqual(): Promise<void> {
    assert.equal(this.mirror.live, true);
    assert.equal(this.feed.inflight, 0, 'every byte sent was acknowledged');
    assert.deepEqual(await this.mirror.digest(), await digestOf(this.node));
  }
}

describe('cache mirror protocol', () => {
  test('reads judge expiry by the clock the mirror is given (the cluster’s, on an embedded node)', async () => {
    const c = { mono: 0, wall: T0 };
    const p = new Pair(1 << 20, { monotonicMs: () => c.mono, wallMs: () => c.wall });
    const put = commandEntry(
      1,
      { type: 'put', cache: 'c', key: 'k', value: new Uint8Array([7]), ttlMs: 1_000 },
      T0,
    );
    p.node.applySync([put], [false]);
    p.feed.start();
    await p.settle();
    const get = () => p.mirror.read({ type: 'get', cache: 'c', key: 'k' });
    c.wall = T0 + 999;
    assert.deepEqual(get(), new Uint8Array([7]), 'live by the given clock');
    assert.notEqual(p.mirror.entry('c', 'k'), null);
    c.wall = T0 + 1_000;
    assert.equal(get(), null, 'expired by the given clock');
    assert.equal(p.mirror.entry('c', 'k'), null);
  });

  test('a new mirror starts from a snapshot and follows by entries', async () => {
    const p = new Pair();
    p.put(30);
    p.feed.start();
    await p.settle();
    assert.equal(p.mirror.status().snapshots, 1);
    p.put(100);
    await p.settle();
    await p.assertEqual();
    assert.equal(p.mirror.status().snapshots, 1, 'entries alone kept it in step');
    assert.equal(p.mirror.appliedIndex(), 130);
  });

  test('a gap is never applied: the mirror stops serving, asks for a new epoch and is equal again', async () => {
    const p = new Pair();
    p.feed.start();
    p.put(10);
    await p.settle();
    const before = p.mirror.appliedIndex();
    // Entry 12 without 11, in the current epoch.
    const lostEntry = commandEntry(
      before + 1,
      { type: 'put', cache: 'c', key: 'gap', value: new Uint8Array(1) },
      T0,
    );
    const next = commandEntry(
      before + 2,
      { type: 'put', cache: 'c', key: 'gap2', value: new Uint8Array(1) },
      T0,
    );
    p.node.applySync([lostEntry, next], [false, false]);
    const bytes = packEntries([next as Entry]);
    p.mirror.onEvent({
      type: 'mirror-entries',
      epoch: p.mirror.status().epoch,
      bytes,
      first: before + 2,
      last: before + 2,
    });
    assert.equal(p.mirror.live, false, 'not serving after a gap');
    assert.equal(p.mirror.appliedIndex(), before, 'the batch after the gap was not applied');
    assert.equal(p.mirror.status().gaps, 1);
    assert.equal(p.acks.pop(), bytes.byteLength, 'a dropped batch is acknowledged');
    assert.deepEqual(p.resyncs, [1]);
    assert.match(p.problems[0] ?? '', /does not follow/);
    await p.settle();
    await p.assertEqual();
    assert.equal(p.mirror.status().epoch, 2);
    assert.ok(p.mirror.appliedIndex() >= before + 2);
  });

  test('the window bounds what is in flight: an overflow loses the epoch, a snapshot follows', async () => {
    const p = new Pair(1 << 20); // 1 MiB
    p.feed.start();
    await p.settle();
    // The mirror does not read for a while: 4 MiB of entries are applied on the node.
    p.put(400, 10_000);
    assert.ok(p.feed.inflight <= 1 << 20, `in flight ${p.feed.inflight}`);
    assert.ok(p.port.some((e) => e.type === 'mirror-lost'));
    await p.settle();
    await p.assertEqual();
    assert.equal(p.mirror.status().epoch, 2);
  });

  test('a snapshot installed on the node starts a new epoch (the mirror matches it)', async () => {
    const p = new Pair();
    p.feed.start();
    p.put(20);
    await p.settle();
    // Another replica's state, installed on the node as a snapshot (Raft InstallSnapshot).
    const other = new CacheStateMachine();
    for (let i = 1; i <= 70; i++) {
      other.applySync(
        [commandEntry(i, { type: 'counterAdd', counter: 'n', key: 'x', delta: 2n }, T0 + i)],
        [false],
      );
    }
    const chunks: Uint8Array[] = [];
    await other.writeSnapshot((c) => {
      chunks.push(c.slice());
    });
    await p.node.restoreFrom(
      (async function* () {
        yield* chunks;
      })(),
    );
    p.feed.replaced();
    await p.settle();
    await p.assertEqual();
    assert.equal(p.mirror.appliedIndex(), 70);
    assert.equal(p.mirror.read({ type: 'counterGet', counter: 'n', key: 'x' }), 140n);
    assert.equal(p.mirror.read({ type: 'get', cache: 'c', key: 'k1' }), null, 'the old state is gone');
    p.put(5);
    await p.settle();
    await p.assertEqual();
  });

  test('a snapshot that cannot be read is never swapped in: a new epoch is asked for', async () => {
    const p = new Pair();
    p.put(5);
    p.feed.start();
    // Flip a byte of the first chunk on its way.
    await new Promise((r) => setImmediate(r));
    const chunk = p.port.find((e) => e.type === 'mirror-chunk');
    assert.ok(chunk !== undefined && chunk.type === 'mirror-chunk');
    const bytes = chunk.chunk;
    bytes[20] = (bytes[20] ?? 0) ^ 0xff;
    await p.settle();
    assert.ok(
      p.problems.some((m) => /could not be read/.test(m)),
      p.problems.join('\n'),
    );
    await p.assertEqual();
    assert.equal(p.mirror.status().epoch, 2);
  });
});
