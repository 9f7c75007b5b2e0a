import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LogIndex, NodeId } from '../../src/raft/types.js';
import { emptyMemoryLogState } from '../../src/storage/memory-log-store.js';
import { GroupCluster, KvStateMachine } from './group-harness.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('RaftGroup runtime (in-memory parts, real timers)', () => {
  test('elects a leader; a write resolves with its own result once applied, on every replica', async () => {
    const c = await GroupCluster.create(3);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      const first = await leader.group.propose(enc('a=1'), { timeoutMs: 5000 });
      const second = await leader.group.propose(enc('a=2'), { timeoutMs: 5000 });
      assert.deepEqual(first.result, { old: null });
      assert.deepEqual(second.result, { old: '1' });
      assert.ok(second.index > first.index);
      for (const n of c.nodes.values()) {
        await n.group.waitForApplied(second.index, { timeoutMs: 5000 });
        assert.equal(n.sm.data.get('a'), '2');
      }
    } finally {
      await c.close();
    }
  });

  test('a write that cannot commit ends at its own deadline with HQL_OUTCOME_UNKNOWN, deadlines out of order too', async () => {
    const c = await GroupCluster.create(3);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      await leader.group.propose(enc('a=1'), { timeoutMs: 5000 });
      // The followers are cut off: nothing commits. Deadlines shorter than an election (100 ms),
      // given out of order: each ends at its own, not at the earliest or the latest.
      for (const n of c.nodes.values()) if (n !== leader) c.cut.add(n.id);
      const ended: number[] = [];
      const waits = [60, 20, 40].map((timeoutMs) =>
        leader.group.propose(enc(`w=${timeoutMs}`), { timeoutMs }).then(
          () => assert.fail(`the write with ${timeoutMs} ms committed without a quorum`),
          (e: unknown) => {
            ended.push(timeoutMs);
            assert.equal((e as { code?: string }).code, 'HQL_OUTCOME_UNKNOWN');
            assert.match(String(e), new RegExp(`no outcome within ${timeoutMs} ms`));
          },
        ),
      );
      await Promise.all(waits);
      assert.deepEqual(ended, [20, 40, 60]);
    } finally {
      await c.close();
    }
  });

  test('a follower refuses writes with HQL_NOT_LEADER naming the leader', async () => {
    const c = await GroupCluster.create(3);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      const follower = [...c.nodes.values()].find((n) => n !== leader)!;
      await c.waitFor('follower knows leader', () => follower.group.status().leaderId === leader.id);
      await assert.rejects(follower.group.propose(enc('x=1'), { timeoutMs: 1000 }), (e: unknown) => {
        const err = e as { code: string; leaderId: number };
        return err.code === 'HQL_NOT_LEADER' && err.leaderId === leader.id;
      });
    } finally {
      await c.close();
    }
  });

  test('a linearizable read on a follower sees every write acknowledged before it began', async () => {
    const c = await GroupCluster.create(3);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      const follower = [...c.nodes.values()].find((n) => n !== leader)!;
      for (let i = 0; i < 20; i++) await leader.group.propose(enc(`k=${i}`), { timeoutMs: 5000 });
      const index = await follower.group.readBarrier({ timeoutMs: 5000 });
      assert.ok(follower.group.applied() >= index);
      assert.equal(follower.sm.data.get('k'), '19');
    } finally {
      await c.close();
    }
  });

  test('many concurrent writes are batched and all resolve in log order', async () => {
    const c = await GroupCluster.create(3);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) => leader.group.propose(enc(`c${i}=${i}`), { timeoutMs: 10_000 })),
      );
      const indices = results.map((r) => r.index);
      assert.deepEqual(
        indices,
        [...indices].sort((a, b) => a - b),
      );
      assert.equal(new Set(indices).size, 500);
    } finally {
      await c.close();
    }
  });

  test('after the leader stops, the others elect a new one and keep every acknowledged write', async () => {
    const c = await GroupCluster.create(3);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      for (let i = 0; i < 10; i++) await leader.group.propose(enc(`w${i}=${i}`), { timeoutMs: 5000 });
      await c.stop(leader.id);
      const next = await c.waitFor('a new leader', () => c.leader(), 10_000);
      assert.notEqual(next.id, leader.id);
      await next.group.propose(enc('after=1'), { timeoutMs: 5000 });
      for (let i = 0; i < 10; i++) assert.equal(next.sm.data.get(`w${i}`), String(i));
    } finally {
      await c.close();
    }
  });

  test('after a restart, applied entries boot without payload and still reach a peer that needs them', async () => {
    const c = await GroupCluster.create(3, 1000);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      let last = 0 as LogIndex;
      for (let i = 0; i < 30; i++)
        last = (await leader.group.propose(enc(`b${i}=${i}`), { timeoutMs: 5000 })).index;
      await c.waitFor('every node applied', () =>
        [...c.nodes.values()].every((n) => n.sm.appliedIndex() >= last),
      );
      const stopped = [];
      for (const id of [...c.nodes.keys()]) stopped.push(await c.stop(id));
      const voters = stopped.map((n) => n.id).sort() as NodeId[];
      // Two come back with their log and state machine: they boot with everything applied …
      for (const n of stopped.slice(0, 2)) await c.startNode(n.id, voters, 1000, n.logState, n.sm);
      // … the third lost both, so the leader sends it all of the log, read back from its store.
      const fresh = stopped[2]!;
      const back = await c.startNode(fresh.id, voters, 1000, emptyMemoryLogState(), new KvStateMachine());
      await back.group.waitForApplied(last, { timeoutMs: 10_000 });
      for (let i = 0; i < 30; i++) assert.equal(back.sm.data.get(`b${i}`), String(i));
    } finally {
      await c.close();
    }
  });

  test('a large state machine is not snapshotted for a little log: entries and bytes must both be due', async () => {
    const c = await GroupCluster.create(3, 20);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      // 8 bytes of state per byte of log at most: 1,600 bytes of state need 200 bytes of commands.
      for (const n of c.nodes.values()) n.sm.reportedSize = 1600;
      const command = (i: number) => enc(`k${i % 10}=${'v'.repeat(6)}`); // 9 bytes
      let i = 0;
      for (; i < 21; i++) await leader.group.propose(command(i), { timeoutMs: 5000 });
      // 21 entries (> 20) of 189 bytes (< 200): not yet. The policy runs right after each
      // applied batch, before the proposer hears back, so no snapshot has been started.
      assert.equal(leader.sm.snapshotsStarted, 0);
      for (; i < 24; i++) await leader.group.propose(command(i), { timeoutMs: 5000 });
      assert.equal(leader.sm.snapshotsStarted, 1, 'due once the bytes reach 1/8 of the size');
      await c.waitFor('leader snapshot', () => leader.group.status().snapshotIndex > 0);
    } finally {
      await c.close();
    }
  });

  test('a restarted node recovers from its log and snapshot, and a lagging node is sent a snapshot', async () => {
    const c = await GroupCluster.create(3, 20);
    try {
      const { stopped, last } = await c.followerBehindSnapshot();
      // The stopped node comes back with its old log state but an empty state machine: the
      // leader's log no longer has what it needs, so it must receive a snapshot.
      const voters = [...c.nodes.keys(), stopped.id].sort() as NodeId[];
      const back = await c.startNode(stopped.id, voters, 20, stopped.logState, new KvStateMachine());
      await back.group.waitForApplied(last, { timeoutMs: 10_000 });
      for (let i = 0; i < 60; i++) assert.equal(back.sm.data.get(`s${i}`), String(i));
      assert.ok(back.group.status().snapshotIndex > 0, 'installed a snapshot');
    } finally {
      await c.close();
    }
  });
});

describe('a group that stops (its disk failed)', () => {
  /** Applies normally until `failing`, then every apply fails as a full disk fails SQLite. */
  class FailingStateMachine extends KvStateMachine {
    failing = false;
    override async apply(entries: Parameters<KvStateMachine['apply']>[0], wanted: readonly boolean[]) {
      if (this.failing && entries.some((e) => e.kind === 'command'))
        throw new Error('SQLITE_FULL: database or disk is full');
      return super.apply(entries, wanted);
    }
  }

  test('answers the writes and reads waiting on it at once, not at their deadlines', async () => {
    const c = await GroupCluster.create(0);
    try {
      const sm = new FailingStateMachine();
      const node = await c.startNode(1 as NodeId, [1 as NodeId], 1000, emptyMemoryLogState(), sm);
      await c.waitFor('a leader', () => c.leader());
      await node.group.propose(enc('a=1'), { timeoutMs: 5000 });
      sm.failing = true;
      const startedAt = Date.now();
      const outcomes = await Promise.allSettled([
        node.group.propose(enc('a=2'), { timeoutMs: 120_000 }),
        node.group.propose(enc('a=3'), { timeoutMs: 120_000 }),
        node.group.waitForApplied(100 as LogIndex, { timeoutMs: 120_000 }),
      ]);
      const waitedMs = Date.now() - startedAt;
      assert.ok(
        waitedMs < 60_000,
        `settled when the group stopped, not at the 120 s deadlines (${waitedMs} ms)`,
      );
      const codes = outcomes.map((o) =>
        o.status === 'rejected' ? (o.reason as { code?: string }).code : 'ok',
      );
      assert.deepEqual(codes, ['HQL_OUTCOME_UNKNOWN', 'HQL_OUTCOME_UNKNOWN', 'HQL_IO']);
      const first = outcomes[0] as PromiseRejectedResult;
      assert.match((first.reason as Error).message, /stopped .*SQLITE_FULL/);
      // And a call after it is refused at once, naming the cause.
      await assert.rejects(
        async () => node.group.propose(enc('a=4'), { timeoutMs: 120_000 }),
        /stopped: SQLITE_FULL/,
      );
    } finally {
      await c.close();
    }
  });
});
