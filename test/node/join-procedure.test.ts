/**
 * The join procedure (src/node/join-procedure.ts) on its own, with a fake group, leader and
 * clock: what a joining node asks of the leader and when, and what it records.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HiqliteError, outcomeUnknown } from '../../src/lib/errors.js';
import { type JoinProcedure, type JoinRequest, joinGroup } from '../../src/node/join-procedure.js';
import type { JoiningState } from '../../src/node/joining-marker.js';
import type { LogIndex, Membership, NodeId } from '../../src/raft/types.js';

const ME = 3 as NodeId;

/** Node 3's group and a leader (node 1) that adds it at index 10 and promotes it when asked. */
function world(initial: JoiningState | null, o: { stayLearner?: boolean; appliedAdd?: boolean } = {}) {
  const stayLearner = o.stayLearner ?? false;
  let now = 0;
  // appliedAdd: its log already holds the entry that added it (a restart after the leader answered).
  let applied = (o.appliedAdd === true ? 10 : 0) as LogIndex;
  let membership: Membership =
    o.appliedAdd === true ? { voters: [1, 2] as NodeId[], learners: [ME] } : { voters: [], learners: [] };
  const asked: JoinRequest['op'][] = [];
  const record: Array<string> = [];
  let state = initial;
  let failNext: HiqliteError | null = null;
  const p: JoinProcedure = {
    nodeId: ME,
    group: 'cache',
    stayLearner,
    raft: {
      applied: () => applied,
      status: () => ({ leaderId: 1 as NodeId, membership }),
    },
    join: {
      get state() {
        return state;
      },
      added: async (i) => {
        state = { joinedAt: i };
        record.push(`added ${i}`);
      },
      complete: async () => {
        state = null;
        record.push('complete');
      },
    },
    request: async (_leader, req) => {
      asked.push(req.op);
      if (failNext !== null) {
        const e = failNext;
        failNext = null;
        throw e;
      }
      if (req.op === 'join') return 10 as LogIndex;
      membership = { voters: [1, 2, 3] as NodeId[], learners: [] };
      return null;
    },
    findLeader: async () => 1 as NodeId,
    nowMs: () => now,
    sleep: async (ms) => {
      now += ms;
      // The leader's entries arrive while the node sleeps: it applies the one that added it.
      if (asked.includes('join') && applied < 10) {
        applied = 10 as LogIndex;
        membership = { voters: [1, 2] as NodeId[], learners: [ME] };
      }
    },
    checkCancelled: () => {},
  };
  return {
    p,
    asked,
    record,
    fail: (e: HiqliteError) => {
      failNext = e;
    },
    membership: () => membership,
  };
}

/**
 * Node 3 holding (or waiting for) a copy of a dead group, and a new group led by node 1 that adds
 * it at index 3 and promotes it when asked: its mutable state, and a procedure without the hooks
 * (each test adds the one it checks, and what the node does when it drops its copy: `drop()`).
 */
function rejoiner(o: {
  joinedAt: LogIndex;
  applied: LogIndex;
  membership: Membership;
  leader: () => NodeId | null;
}) {
  const r = {
    now: 0,
    state: { joinedAt: o.joinedAt } as JoiningState | null,
    applied: o.applied,
    membership: o.membership,
    asked: [] as JoinRequest['op'][],
    /** What the node does when it drops its copy: a fresh join record, nothing applied or known. */
    drop: () => {
      r.state = { joinedAt: null };
      r.applied = 0 as LogIndex;
      r.membership = { voters: [], learners: [] };
    },
  };
  const p: JoinProcedure = {
    nodeId: ME,
    group: 'cache',
    stayLearner: false,
    raft: { applied: () => r.applied, status: () => ({ leaderId: o.leader(), membership: r.membership }) },
    join: {
      get state() {
        return r.state;
      },
      added: async (i) => {
        r.state = { joinedAt: i };
      },
      complete: async () => {
        r.state = null;
      },
    },
    request: async (_leader, req) => {
      r.asked.push(req.op);
      if (req.op === 'join') return 3 as LogIndex;
      r.membership = { voters: [1, ME] as NodeId[], learners: [] };
      return null;
    },
    findLeader: async () => 1 as NodeId,
    nowMs: () => r.now,
    sleep: async (ms) => {
      r.now += ms;
      // The new leader's entries arrive: the one that added it.
      if (r.asked.includes('join') && r.applied < 3) {
        r.applied = 3 as LogIndex;
        r.membership = { voters: [1] as NodeId[], learners: [ME] };
      }
    },
    checkCancelled: () => {},
  };
  return { r, p };
}

describe('the join procedure', () => {
  test('a new node asks to join, records the entry that added it, is promoted once it applied it', async () => {
    const w = world({ joinedAt: null });
    await joinGroup(w.p, 60_000);
    assert.deepEqual(w.asked, ['join', 'promote']);
    assert.deepEqual(w.record, ['added 10', 'complete']);
    assert.deepEqual(w.membership().voters, [1, 2, 3]);
  });

  test('a join a restart interrupted goes on from the entry that added the node (no second join)', async () => {
    const w = world({ joinedAt: 10 as LogIndex }, { appliedAdd: true });
    await joinGroup(w.p, 60_000);
    assert.deepEqual(w.asked, ['promote']);
    assert.deepEqual(w.record, ['complete']);
  });

  test('learner_only: once added it stays a learner and the join completes', async () => {
    const w = world({ joinedAt: null }, { stayLearner: true });
    await joinGroup(w.p, 60_000);
    assert.deepEqual(w.asked, ['join']);
    assert.deepEqual(w.record, ['added 10', 'complete']);
  });

  test('after rounds without a leader, a step forward is followed soon: promote and completion do not wait 1 s each', async () => {
    // A node taken in by a cache group founded anew after a long wait: each next step waited
    // the full pause of a long search (1 s).
    const w = world({ joinedAt: null });
    let rounds = 0;
    const pauses: number[] = [];
    const found = () => rounds > 15;
    const p: JoinProcedure = {
      ...w.p,
      raft: {
        applied: w.p.raft.applied,
        status: () => ({ leaderId: found() ? (1 as NodeId) : null, membership: w.membership() }),
      },
      findLeader: async () => (found() ? (1 as NodeId) : null),
      sleep: async (ms) => {
        rounds++;
        if (w.asked.length > 0) pauses.push(ms);
        await w.p.sleep(ms);
      },
    };
    await joinGroup(p, 120_000);
    assert.deepEqual(w.asked, ['join', 'promote']);
    assert.deepEqual(w.record, ['added 10', 'complete']);
    assert.ok(pauses.length >= 2, `pauses after the join: ${pauses.join(', ')}`);
    assert.ok(
      pauses.every((ms) => ms <= 200),
      `pauses after the join: ${pauses.join(', ')} ms (the search's pause was 1000 ms)`,
    );
  });

  test('a retryable refusal is retried; one that is not ends the procedure with it', async () => {
    const w = world({ joinedAt: null });
    w.fail(new HiqliteError('HQL_NOT_LEADER', 'moved', { retryable: true }));
    await joinGroup(w.p, 60_000);
    assert.deepEqual(w.asked, ['join', 'join', 'promote']);

    const refused = world({ joinedAt: null });
    refused.fail(new HiqliteError('HQL_CLUSTER_MISMATCH', 'other cluster', { retryable: false }));
    await assert.rejects(joinGroup(refused.p, 60_000), /other cluster/);
    assert.deepEqual(refused.record, [], 'nothing recorded');
  });

  test('a join or promote whose outcome is unknown (its leader stepped down meanwhile) is asked again', async () => {
    // Found by the cache simulator (--cache-loss seed 239): the procedure ended with it.
    const join = world({ joinedAt: null });
    join.fail(outcomeUnknown('the node shut down before the write was applied'));
    await joinGroup(join.p, 60_000);
    assert.deepEqual(join.asked, ['join', 'join', 'promote']);
    assert.deepEqual(join.record, ['added 10', 'complete']);
    const promote = world({ joinedAt: 10 as LogIndex }, { appliedAdd: true });
    promote.fail(outcomeUnknown('the node shut down before the write was applied'));
    await joinGroup(promote.p, 60_000);
    assert.deepEqual(promote.asked, ['promote', 'promote']);
  });

  test('its own view names a former leader that refuses: it asks the others who leads now', async () => {
    // The leader removed it (the first half of re-adding it) and then lost leadership: the node
    // hears from no leader any more, and its own view keeps naming node 2.
    const w = world({ joinedAt: null });
    const askedTo: NodeId[] = [];
    const request = w.p.request;
    await joinGroup(
      {
        ...w.p,
        raft: { ...w.p.raft, status: () => ({ ...w.p.raft.status(), leaderId: 2 as NodeId }) },
        request: (leader, req, timeoutMs) => {
          askedTo.push(leader);
          if (leader === 2)
            return Promise.reject(new HiqliteError('HQL_NOT_LEADER', 'not the leader', { retryable: true }));
          return request(leader, req, timeoutMs);
        },
      },
      60_000,
    );
    assert.equal(askedTo[0], 2);
    assert.equal(askedTo[1], 1, 'asked the leader the others named');
    assert.deepEqual(w.record, ['added 10', 'complete']);
  });

  test('without a leader that answers it fails with HQL_TIMEOUT once the time is up', async () => {
    const w = world({ joinedAt: null });
    await assert.rejects(
      joinGroup({ ...w.p, request: () => Promise.reject(new Error('unreachable')) }, 5000),
      (e) => {
        assert.ok(e instanceof HiqliteError && e.code === 'HQL_TIMEOUT', String(e));
        return true;
      },
    );
  });

  test('a start cancelled while it asked the others who leads sends no join (found by the simulator)', async () => {
    // A node that does not know the leader asks the others, which takes a while; if its start is
    // cancelled meanwhile (the process stops), it must not go on to ask the leader to add it: a
    // join that arrives for a node that no longer waits for it makes the leader remove a member.
    const w = world({ joinedAt: null });
    let cancelled = false;
    const p: JoinProcedure = {
      ...w.p,
      raft: {
        applied: () => 0 as LogIndex,
        status: () => ({ leaderId: null, membership: { voters: [], learners: [] } }),
      },
      findLeader: async () => {
        cancelled = true;
        return 1 as NodeId;
      },
      checkCancelled: () => {
        if (cancelled) throw new HiqliteError('HQL_CLOSED', 'the node is closing', { retryable: false });
      },
    };
    await assert.rejects(joinGroup(p, 60_000), { code: 'HQL_CLOSED' });
    assert.deepEqual(w.asked, []);
  });

  test('no leader anywhere: from its third round on it asks whether it may found the group, and ends the join once it did', async () => {
    const w = world({ joinedAt: null });
    let asks = 0;
    const p: JoinProcedure = {
      ...w.p,
      raft: {
        applied: () => 0 as LogIndex,
        status: () => ({ leaderId: null, membership: { voters: [], learners: [] } }),
      },
      findLeader: async () => null,
      mayFound: async () => ++asks === 2,
    };
    await joinGroup(p, 60_000);
    assert.equal(asks, 2, 'asked until it founded the group');
    assert.deepEqual(w.asked, [], 'no join sent: there was no leader');
    // With a leader found, it is never asked: the group exists.
    const withLeader = world({ joinedAt: null });
    await joinGroup(
      {
        ...withLeader.p,
        mayFound: async () => {
          throw new Error('asked with a leader known');
        },
      },
      60_000,
    );
    assert.deepEqual(withLeader.record, ['added 10', 'complete']);
  });

  test('the others name this node as the leader while its own group hears none: no leader, so it may found the group', async () => {
    // Fault suite, seed 15002: node 1 dropped its state; a learner of the dead group still named
    // node 1, so node 1 asked no one to take it in and never reached its founding step.
    const w = world({ joinedAt: null });
    let asks = 0;
    const p: JoinProcedure = {
      ...w.p,
      nodeId: 1 as NodeId,
      raft: {
        applied: () => 0 as LogIndex,
        status: () => ({ leaderId: null, membership: { voters: [], learners: [] } }),
      },
      findLeader: async () => 1 as NodeId,
      mayFound: async () => ++asks === 1,
    };
    await joinGroup(p, 60_000);
    assert.equal(asks, 1, 'it founded the group');
    assert.deepEqual(w.asked, [], 'it asked itself nothing');
  });

  test('a copy of a dead group and no leader anywhere: from its third round on it asks whether the group is dead, drops its copy and joins anew', async () => {
    // Found by the cache simulator (--cache-loss seed 193): learners of a group whose only voter
    // restarted waited for it for ever.
    let leader: NodeId | null = null;
    const { r, p } = rejoiner({
      joinedAt: 6 as LogIndex,
      applied: 6 as LogIndex,
      membership: { voters: [1] as NodeId[], learners: [ME] },
      leader: () => null,
    });
    let deadAsks = 0;
    await joinGroup(
      {
        ...p,
        findLeader: async () => leader,
        groupDead: async () => {
          deadAsks++;
          r.drop();
          leader = 1 as NodeId; // node 1 founds the group anew meanwhile
          return true;
        },
      },
      60_000,
    );
    assert.equal(deadAsks, 1, 'asked once, then joined the group founded anew');
    assert.deepEqual(r.asked, ['join', 'promote']);
    assert.equal(r.state, null, 'the join completed');
  });

  /** A node that holds a copy (voters 1, 2 and itself) it was sent before its join was asked. */
  function sentCopyUntilJoined(w: ReturnType<typeof world>): JoinProcedure['raft'] {
    return {
      applied: () => (w.asked.includes('join') ? (10 as LogIndex) : (3 as LogIndex)),
      status: () => ({
        leaderId: 1 as NodeId,
        membership: w.asked.includes('join')
          ? w.membership()
          : { voters: [1, 2, ME] as NodeId[], learners: [] },
      }),
    };
  }

  test('a copy sent while its join waited: before it asks to join, it checks the leader lists it (left behind otherwise)', async () => {
    // Found by the cache simulator (--cache-loss seed 39): the new group's log conflicted with
    // what the copy held as committed, and the node stopped.
    const w = world({ joinedAt: null });
    const checked: NodeId[] = [];
    await joinGroup(
      {
        ...w.p,
        raft: sentCopyUntilJoined(w),
        leftBehind: async (leader) => {
          checked.push(leader);
          return false;
        },
      },
      60_000,
    );
    assert.deepEqual(checked, [1], 'checked once, before its join');
    assert.deepEqual(w.record, ['added 10', 'complete']);
  });

  test('a copy sent while its join waited, and the leader does not answer whether its group lists this node: no join to it that round; the join goes to the leader that answers', async () => {
    // Found by the cache simulator (--cache-loss seed 6410 of 10,000): the leader it named was
    // down when asked; the join reached it after it had founded the group anew, which took the
    // node in with a copy whose committed log conflicted with the new group's, and it stopped.
    const w = world({ joinedAt: null });
    const checked: NodeId[] = [];
    let answers = 0;
    await joinGroup(
      {
        ...w.p,
        raft: sentCopyUntilJoined(w),
        leftBehind: async (leader) => {
          checked.push(leader);
          // Silent twice (down, restarting), then it answers that its group lists this node.
          return ++answers <= 2 ? null : false;
        },
      },
      60_000,
    );
    assert.deepEqual(checked, [1, 1, 1], 'asked until the leader answered');
    assert.equal(w.asked.filter((a) => a === 'join').length, 1, 'one join, after the answer');
    assert.deepEqual(w.record, ['added 10', 'complete']);
  });

  test('left behind: its join waits on a group that hears no leader while the leader the others name does not list it: it drops its state (leftBehind) and joins that group', async () => {
    // Found by the fault suite: node 2, restarted while the old leader re-added it to an
    // in-memory cache group, kept waiting for that group's entry (index 50) after the group died
    // and node 1 founded a new one, until its start timed out.
    const { r, p: base } = rejoiner({
      joinedAt: 50 as LogIndex,
      applied: 0 as LogIndex,
      membership: { voters: [], learners: [] },
      // It hears the new leader only once that one added it.
      leader: () => (r.asked.includes('join') ? (1 as NodeId) : null),
    });
    let drops = 0;
    const p: JoinProcedure = {
      ...base,
      leftBehind: async (leader) => {
        assert.equal(leader, 1);
        drops++;
        // What the node does: drops its state; a fresh join record, no join asked yet.
        r.state = { joinedAt: null };
        return true;
      },
    };
    await joinGroup(p, 60_000);
    assert.equal(drops, 1, 'dropped its state once');
    assert.deepEqual(r.asked, ['join', 'promote']);
    assert.equal(r.state, null, 'the join completed');
    assert.deepEqual(r.membership.voters, [1, ME]);
    // Without the hook it waits on the dead group's entry until its deadline.
    r.state = { joinedAt: 50 as LogIndex };
    r.applied = 0 as LogIndex;
    r.membership = { voters: [], learners: [] };
    r.asked.length = 0;
    const { leftBehind: _, ...without } = p;
    await assert.rejects(joinGroup(without, 10_000), { code: 'HQL_TIMEOUT' });
    assert.deepEqual(r.asked, [], 'never asked to join the group that does not list it');
  });
});
