/**
 * The notification hub (src/node/cache-listeners.ts) over a real cache state machine, wired as
 * the cache group wires it: notifications published from the state machine's hook, the ring read
 * for resumes, `replaced()` after the state is swapped for a snapshot. A listener either receives
 * every notification after its start, in order, once, or ends with `lagged` and the exact count
 * of what it did not get; it never misses one in silence.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ListenItem, NotificationHub, type Subscription } from '../../src/node/cache-listeners.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { bytes, commandEntry, T0 } from '../sm/cache-helpers.js';

/** A member: its state machine, the hub fed by it, and `replayingTo` as the group computes it. */
class Member {
  readonly sm: CacheStateMachine;
  readonly hub: NotificationHub;
  replayingTo = 0;

  constructor(ringMax = 1000) {
    this.sm = new CacheStateMachine({
      limits: { notificationsRingMax: ringMax },
      hooks: { onNotification: (n) => this.hub.publish(n) },
    });
    this.hub = new NotificationHub(
      {
        lastSeq: () => this.sm.lastNotificationSeq(),
        heldAfter: (afterSeq) => this.sm.notificationsAfter(afterSeq),
        replayingTo: () => this.replayingTo,
      },
      100,
    );
  }

  notify(channel: string, text: string): void {
    const index = this.sm.appliedIndex() + 1;
    this.sm.applySync(
      [commandEntry(index, { type: 'notify', channel, payload: bytes(text) }, T0 + index)],
      [false],
    );
  }

  /** Replaces this member's state by `from`'s (a snapshot installed), then tells the hub. */
  async install(from: CacheStateMachine): Promise<void> {
    const chunks: Uint8Array[] = [];
    await from.writeSnapshot((c) => {
      chunks.push(c.slice());
    });
    await this.sm.restoreFrom(
      (async function* () {
        yield* chunks;
      })(),
    );
    this.hub.replaced();
  }
}

function payloads(sub: Subscription): string[] {
  return sub.drain(100_000).map((i) => describeItem(i));
}

function describeItem(i: ListenItem): string {
  return i.kind === 'lagged'
    ? `lagged ${i.missed}`
    : `${i.notification.seq}:${new TextDecoder().decode(i.notification.payload)}`;
}

/** Applies the same notifies on the leader and, for the first `followerUpTo`, on the follower. */
function both(leader: Member, follower: Member, texts: readonly string[]): void {
  for (const t of texts) {
    leader.notify('c', t);
    follower.notify('c', t);
  }
}

describe('notification hub: listeners never miss notifications in silence', () => {
  test('a member that installs a snapshot replays to its listeners what the new ring holds after their last seq', async () => {
    const leader = new Member();
    const follower = new Member();
    both(leader, follower, ['a', 'b']);
    const all = follower.hub.subscribe({ channel: null, bufferMax: 100 });
    const onlyC = follower.hub.subscribe({ channel: 'c', bufferMax: 100 });
    const onlyD = follower.hub.subscribe({ channel: 'd', bufferMax: 100 });
    both(leader, follower, ['c']);
    // The follower is cut off; the leader goes on, and later sends a snapshot instead of entries.
    leader.notify('c', 'd');
    leader.notify('d', 'e');
    leader.notify('c', 'f');
    await follower.install(leader.sm);
    assert.deepEqual(payloads(all), ['3:c', '4:d', '5:e', '6:f']);
    assert.deepEqual(payloads(onlyC), ['3:c', '4:d', '6:f']);
    assert.deepEqual(payloads(onlyD), ['5:e']);
    // And on with live ones, no repeat.
    both(leader, follower, ['g']);
    assert.deepEqual(payloads(all), ['7:g']);
    assert.equal(follower.hub.size, 3);
  });

  test('when the installed ring no longer holds some, the listener gets what it had, then lagged with the exact count', async () => {
    const leader = new Member(3);
    const follower = new Member(3);
    both(leader, follower, ['a']);
    const sub = follower.hub.subscribe({ channel: null, bufferMax: 100 });
    both(leader, follower, ['b']);
    for (const t of ['c', 'd', 'e', 'f', 'g', 'h']) leader.notify('c', t);
    // The ring holds f, g, h (seqs 6–8); the listener saw up to 2 (b): 3, 4, 5 are gone, and
    // the listener ends there: it gets f, g, h no more either. All six are counted.
    await follower.install(leader.sm);
    assert.deepEqual(payloads(sub), ['2:b', 'lagged 6']);
    assert.equal(sub.ended, true);
    assert.equal(follower.hub.size, 0);
    await assert.rejects(sub.next(), (e: Error & { code?: string }) => e.code === 'HQL_CLOSED');
  });

  test('a snapshot at or behind what a listener saw (a reset, an old snapshot) repeats nothing', async () => {
    const old = new Member();
    old.notify('c', 'a');
    const m = new Member();
    for (const t of ['a', 'b', 'c']) m.notify('c', t);
    const sub = m.hub.subscribe({ channel: null, bufferMax: 100 });
    await m.install(old.sm);
    assert.deepEqual(payloads(sub), []);
    // Applied again from seq 2 on: passed until the seq the listener saw, then delivered.
    m.notify('c', 'b');
    m.notify('c', 'c');
    m.notify('c', 'd');
    assert.deepEqual(payloads(sub), ['4:d']);
  });

  test('a resume from afterSeq is served the held notifications first, then live ones (every channel filter)', () => {
    const m = new Member();
    for (const t of ['a', 'b', 'c', 'd']) m.notify(t === 'c' ? 'x' : 'c', t);
    const all = m.hub.subscribe({ channel: null, bufferMax: 100, afterSeq: 1 });
    const onlyC = m.hub.subscribe({ channel: 'c', bufferMax: 100, afterSeq: 1 });
    assert.equal(all.startSeq, 1);
    m.notify('c', 'e');
    assert.deepEqual(payloads(all), ['2:b', '3:c', '4:d', '5:e']);
    assert.deepEqual(payloads(onlyC), ['2:b', '4:d', '5:e']);
  });

  test('a resume with more held than one read returns, on a filtered channel, loses none in between', () => {
    const m = new Member(5000);
    for (let i = 1; i <= 3000; i++) m.notify(i % 100 === 0 ? 'rare' : 'busy', `${i}`);
    const sub = m.hub.subscribe({ channel: 'rare', bufferMax: 40, afterSeq: 0 });
    m.notify('rare', 'live');
    const got = payloads(sub);
    assert.equal(got.length, 31);
    assert.equal(got[0], '100:100');
    assert.equal(got[29], '3000:3000');
    assert.equal(got[30], '3001:live');
  });

  test('a resume past what the ring holds is lagged with the exact count; one ahead of this member repeats nothing', () => {
    const m = new Member(2);
    for (const t of ['a', 'b', 'c', 'd', 'e']) m.notify('c', t);
    // The ring holds d, e (seqs 4, 5): 2 and 3 are gone, and d, e are not delivered after the
    // gap (the listener ends): 4 missed.
    const behind = m.hub.subscribe({ channel: null, bufferMax: 100, afterSeq: 1 });
    assert.deepEqual(payloads(behind), ['lagged 4']);
    assert.equal(behind.ended, true);
    const ahead = m.hub.subscribe({ channel: null, bufferMax: 100, afterSeq: 7 });
    m.notify('c', 'f');
    m.notify('c', 'g');
    m.notify('c', 'h');
    assert.deepEqual(payloads(ahead), ['8:h']);
  });

  test('a new listener starts after the log replayed at start; a resuming one gets the replayed notifications', () => {
    const m = new Member();
    m.notify('c', 'a');
    m.replayingTo = 3;
    const fresh = m.hub.subscribe({ channel: null, bufferMax: 100 });
    const resumed = m.hub.subscribe({ channel: null, bufferMax: 100, afterSeq: 1 });
    m.notify('c', 'b');
    m.notify('c', 'c');
    m.replayingTo = 0;
    m.notify('c', 'd');
    assert.deepEqual(payloads(fresh), ['4:d']);
    assert.deepEqual(payloads(resumed), ['2:b', '3:c', '4:d']);
  });

  test('a seq that jumps without a state replaced ends the listener with lagged, never a silent gap', () => {
    const m = new Member();
    const sub = m.hub.subscribe({ channel: null, bufferMax: 100 });
    const n = (seq: number) => ({ channel: 'c', payload: bytes(`${seq}`), index: seq, time: T0, seq });
    m.hub.publish(n(1));
    m.hub.publish(n(4));
    assert.deepEqual(payloads(sub), ['1:1', 'lagged 2']);
  });

  test('a full buffer drops it and counts what was dropped', () => {
    const m = new Member();
    const sub = m.hub.subscribe({ channel: null, bufferMax: 2 });
    for (const t of ['a', 'b', 'c']) m.notify('c', t);
    assert.deepEqual(payloads(sub), ['lagged 3']);
  });

  test('a resume further behind than its buffer is served from the ring as it reads: every one, in order, then live ones', () => {
    const m = new Member(1000);
    for (let i = 1; i <= 300; i++) m.notify('c', `${i}`);
    const sub = m.hub.subscribe({ channel: null, bufferMax: 16, afterSeq: 0 });
    const got: string[] = [];
    // Bounded: 300 held at 16 per read, and the live ones sent while it reads.
    for (let round = 0; round < 100 && got.length < 310; round++) {
      const items = sub.drain(1000);
      assert.ok(items.length <= 16, `${items.length} items in one read, the buffer holds 16`);
      for (const i of items) got.push(describeItem(i));
      if (round < 10) m.notify('c', `live${round}`);
    }
    assert.equal(sub.ended, false);
    assert.equal(got.length, 310);
    assert.deepEqual(
      got.map((g) => Number(g.split(':')[0])),
      Array.from({ length: 310 }, (_, i) => i + 1),
    );
    assert.equal(got[300], '301:live0');
    m.notify('c', 'after');
    assert.deepEqual(payloads(sub), ['311:after']);
  });

  test('a resume the ring overtakes while it reads lags with the exact count of what it did not get', () => {
    const m = new Member(50);
    for (let i = 1; i <= 40; i++) m.notify('c', `${i}`);
    const sub = m.hub.subscribe({ channel: null, bufferMax: 10, afterSeq: 0 });
    assert.equal(payloads(sub).length, 10); // 1..10
    for (let i = 41; i <= 100; i++) m.notify('c', `${i}`);
    // The ring now holds 51..100. What the catch-up had taken from it (up to 40) is still
    // delivered; 41..50 are gone, and the 50 held after the gap are not delivered either.
    const rest: string[] = [];
    for (let round = 0; round < 20 && !sub.ended; round++) rest.push(...payloads(sub));
    rest.push(...payloads(sub));
    assert.deepEqual(
      rest.slice(0, 30),
      Array.from({ length: 30 }, (_, i) => `${i + 11}:${i + 11}`),
    );
    assert.deepEqual(rest.slice(30), ['lagged 60']);
    assert.equal(sub.ended, true);
  });

  test('a catching-up reader that holds what it took is given more only as it reads (the bound covers both)', () => {
    const m = new Member(1000);
    for (let i = 1; i <= 100; i++) m.notify('c', `${i}`);
    const sub = m.hub.subscribe({ channel: null, bufferMax: 8, afterSeq: 0 });
    const first = sub.drain(1000);
    assert.equal(first.length, 8);
    sub.holdDownstream(8, 0);
    assert.deepEqual(sub.drain(1000), [], 'nothing more while the reader holds a buffer');
    sub.holdDownstream(3, 0);
    assert.equal(sub.drain(1000).length, 5);
    sub.holdDownstream(0, 0);
    const next = sub.drain(1000);
    assert.equal(next.length, 8);
    assert.equal(describeItem(next[0]!), '14:14');
    assert.equal(sub.ended, false);
  });
});
