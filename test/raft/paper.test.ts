/**
 * Scenario tests in the spirit of etcd's raft_paper_test.go: each pins one rule of the Raft paper
 * (Ongaro & Ousterhout, 2014) or of Ongaro's thesis (2014), cited in its name.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RaftCore } from '../../src/raft/raft.js';
import type { Entry, LogIndex, Message, RaftBootState, Term } from '../../src/raft/types.js';
import { Cluster, cmd, id, testConfig } from './harness.js';

/** `from`'s acknowledgement of `match` to leader `r` (echoing the epoch of r's record of it). */
const appendOk = (r: RaftCore, from: number, t: number, match: number): Message => ({
  type: 'append-response',
  from: id(from),
  to: id(1),
  term: t as Term,
  matchIndex: match as LogIndex,
  reject: false,
  rejectedIndex: 0 as LogIndex,
  rejectHint: 0 as LogIndex,
  rejectHintTerm: 0 as Term,
  epoch: r.status().progress?.get(id(from))?.epoch ?? 0,
});

/** Boot state of a node of voters 1–3 with `entries` and no snapshot; applied = commit. */
function threeVoterBoot(term: number, commit: number, entries: Entry[]): RaftBootState {
  return {
    hardState: { term: term as Term, vote: null, commit: commit as LogIndex },
    snapshot: {
      index: 0 as LogIndex,
      term: 0 as Term,
      membership: { voters: [id(1), id(2), id(3)], learners: [] },
    },
    entries,
    appliedIndex: commit as LogIndex,
  };
}

/** Hands out and completes one Ready at a time; `persist` sees each Ready's entries. */
function readyDrainer(r: RaftCore, persist: (entries: readonly Entry[]) => void = () => {}) {
  return () => {
    const rd = r.ready();
    persist(rd.entries);
    r.advance(rd);
    return rd;
  };
}

/** A lone core (pre-vote off) campaigns and wins with the vote of `voter`. */
function winElection(r: RaftCore, drain: () => unknown, voter: number): void {
  r.campaign();
  drain();
  r.step({ type: 'vote-response', from: id(voter), to: r.status().id, term: r.status().term, granted: true });
  assert.equal(r.status().role, 'leader');
}

const three = () => new Cluster({ voters: [id(1), id(2), id(3)], learners: [] });
const five = () => new Cluster({ voters: [id(1), id(2), id(3), id(4), id(5)], learners: [] });

describe('§5.2 leader election', () => {
  test('a follower that hears from no leader within the election timeout starts an election and wins', () => {
    const c = three();
    // Randomized timeouts lie in [10, 20) ticks; 20 ticks guarantee somebody campaigns.
    c.tickAll(20);
    const leaders = c.leaders();
    assert.equal(leaders.length, 1);
    assert.equal(c.node(leaders[0] as number).status().term, 1);
  });

  test('a candidate becomes leader with votes from a majority, not before', () => {
    const c = five();
    c.isolate(4);
    c.isolate(5);
    c.cut.delete('1-2');
    c.cut.delete('2-1');
    // Only 1 and 2 reach each other, with 3 cut from 1 too: no majority.
    c.cut.add('1-3');
    c.cut.add('3-1');
    c.elect(1);
    assert.notEqual(c.node(1).status().role, 'leader');
    c.cut.delete('1-3');
    c.cut.delete('3-1');
    c.elect(1);
    assert.equal(c.node(1).status().role, 'leader');
  });

  test('each server votes for at most one candidate in a term, first come first served', () => {
    const c = three();
    c.node(1).step({
      type: 'vote',
      from: id(2),
      to: id(1),
      term: 1 as Term,
      lastIndex: 0 as LogIndex,
      lastTerm: 0 as Term,
      transfer: false,
    });
    c.node(1).step({
      type: 'vote',
      from: id(3),
      to: id(1),
      term: 1 as Term,
      lastIndex: 0 as LogIndex,
      lastTerm: 0 as Term,
      transfer: false,
    });
    const rd = c.node(1).ready();
    const answers = rd.messagesAfterPersist.filter((m) => m.type === 'vote-response');
    assert.deepEqual(
      answers.map((m) => [m.to, m.type === 'vote-response' && m.granted]),
      [
        [2, true],
        [3, false],
      ],
    );
    assert.equal(rd.hardState?.vote, 2);
  });

  test('a candidate that receives an append from a leader of its term becomes a follower', () => {
    const c = three();
    c.node(1).step({ type: 'timeout-now', from: id(3), to: id(1), term: 0 as Term });
    assert.equal(c.node(1).status().role, 'candidate');
    const term = c.node(1).status().term;
    c.node(1).step({
      type: 'append',
      from: id(2),
      to: id(1),
      term,
      prevIndex: 0 as LogIndex,
      prevTerm: 0 as Term,
      entries: [],
      commit: 0 as LogIndex,
      epoch: 1,
    });
    assert.equal(c.node(1).status().role, 'follower');
    assert.equal(c.node(1).status().leaderId, 2);
  });

  test('randomized timeouts resolve split votes: a leader emerges for every seed', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const c = new Cluster({ voters: [id(1), id(2), id(3), id(4), id(5)], learners: [] }, seed);
      c.tickAll(60);
      assert.equal(c.leaders().length, 1, `seed ${seed}`);
    }
  });
});

describe('§5.3 log replication', () => {
  test('an entry is committed once the leader has replicated it on a majority', () => {
    const c = three();
    c.elect(1);
    c.isolate(3);
    const p = c.node(1).propose(cmd('a'));
    assert.ok(p.ok);
    c.stabilize();
    assert.equal(c.node(1).status().commitIndex, p.index);
    assert.deepEqual(c.appliedCommands(1), ['a']);
    assert.deepEqual(c.appliedCommands(2), ['a']);
    assert.deepEqual(c.appliedCommands(3), []);
  });

  test('without a majority nothing commits', () => {
    const c = three();
    c.elect(1);
    c.isolate(2);
    c.isolate(3);
    const p = c.node(1).propose(cmd('a'));
    assert.ok(p.ok);
    c.stabilize();
    assert.ok(c.node(1).status().commitIndex < p.index);
    assert.deepEqual(c.appliedCommands(1), []);
  });

  test('the leader forces a follower with a conflicting log to duplicate its own (§5.3, Figure 7)', () => {
    const c = three();
    c.elect(1);
    c.node(1).propose(cmd('a'));
    c.stabilize();
    // Node 1 appends entries nobody else receives, then loses leadership.
    c.isolate(1);
    c.node(1).propose(cmd('lost-1'));
    c.node(1).propose(cmd('lost-2'));
    c.stabilize();
    c.tickAll(40); // 2 or 3 elects a new leader; 1 steps down (check-quorum)
    const leader = c.leaders().find((n) => n !== 1);
    assert.ok(leader !== undefined);
    c.node(leader).propose(cmd('b'));
    c.stabilize();
    c.heal();
    c.tickAll(5);
    for (const n of [1, 2, 3]) assert.deepEqual(c.appliedCommands(n), ['a', 'b'], `node ${n}`);
    const l1 = c
      .node(1)
      .entries(1 as LogIndex, 100 as LogIndex)
      .map((e) => [e.index, e.term]);
    const l2 = c
      .node(leader)
      .entries(1 as LogIndex, 100 as LogIndex)
      .map((e) => [e.index, e.term]);
    assert.deepEqual(l1, l2);
  });

  test('appends are pipelined within the in-flight window and batched per Ready', () => {
    const c = new Cluster({ voters: [id(1), id(2)], learners: [] }, 1, { inflightMessagesMax: 2 });
    c.elect(1);
    // Many proposals before the next Ready travel in one append message.
    for (let i = 0; i < 10; i++) c.node(1).propose(cmd(`x${i}`));
    const rd = c.node(1).ready();
    const appends = rd.messages.filter((m) => m.type === 'append');
    assert.equal(appends.length, 1);
    assert.equal(appends[0]?.type === 'append' && appends[0].entries.length, 10);
    c.node(1).advance(rd);
  });
});

describe('§5.4 safety', () => {
  test('§5.4.1 a voter denies its vote to a candidate whose log is less up-to-date', () => {
    const c = three();
    c.elect(1);
    c.node(1).propose(cmd('a'));
    c.stabilize();
    const status = c.node(2).status();
    c.node(2).step({
      type: 'vote',
      from: id(3),
      to: id(2),
      term: (status.term + 5) as Term,
      lastIndex: 1 as LogIndex,
      lastTerm: status.term,
      transfer: true,
    });
    const rd = c.node(2).ready();
    const resp = rd.messagesAfterPersist.find((m) => m.type === 'vote-response');
    assert.ok(resp !== undefined && resp.type === 'vote-response' && !resp.granted);
  });

  test('§5.4.2 (Figure 8) a leader never commits an entry of a previous term by counting replicas', () => {
    // Node 1 restarts holding (1,t1) and (2,t1), the latter never committed, and wins term 3.
    const boot = threeVoterBoot(2, 1, [
      { kind: 'noop', index: 1 as LogIndex, term: 1 as Term },
      { kind: 'command', index: 2 as LogIndex, term: 1 as Term, data: cmd('old') },
    ]);
    const r = new RaftCore(testConfig(1, 1, { preVote: false }), boot);
    const drain = readyDrainer(r);
    winElection(r, drain, 2);
    drain(); // persists the term-3 no-op at index 3
    // Node 2 acknowledges index 2 only: (2,t1) is now on a majority, yet must not be committed.
    r.step(appendOk(r, 2, 3, 2));
    drain();
    assert.equal(r.status().commitIndex, 1);
    // Once the term-3 entry is on a majority, everything up to it commits.
    r.step(appendOk(r, 2, 3, 3));
    const rd = drain();
    assert.equal(r.status().commitIndex, 3);
    assert.deepEqual(
      rd.committed.map((e) => [e.index, e.term]),
      [
        [2, 1],
        [3, 3],
      ],
    );
  });

  test('§5.4 a newly elected leader appends a no-op of its term', () => {
    const c = three();
    c.elect(2);
    const e = c.node(2).entries(1 as LogIndex, 10 as LogIndex);
    assert.equal(e.length, 1);
    assert.equal(e[0]?.kind, 'noop');
    assert.equal(e[0]?.term, c.node(2).status().term);
  });
});

describe('Ready contract', () => {
  test('votes and acknowledgements wait for persistence; leader appends do not', () => {
    const c = three();
    c.node(1).campaign();
    const rd1 = c.node(1).ready();
    assert.equal(rd1.messages.length, 0);
    assert.ok(
      rd1.messagesAfterPersist.length === 2 && rd1.messagesAfterPersist.every((m) => m.type === 'pre-vote'),
    );
    c.queue.push(...rd1.messagesAfterPersist);
    c.node(1).advance(rd1);
    c.stabilize();
    c.node(1).propose(cmd('a'));
    const rd = c.node(1).ready();
    assert.ok(rd.messages.some((m) => m.type === 'append'));
    assert.equal(rd.entries.length, 1);
    c.node(1).advance(rd);
  });

  test('the leader counts its own vote for commitment only once its entry is durable', () => {
    const c = new Cluster({ voters: [id(1)], learners: [] });
    c.elect(1);
    const p = c.node(1).propose(cmd('a'));
    assert.ok(p.ok);
    const rd = c.node(1).ready();
    assert.equal(rd.committed.length, 0, 'not committed before persistence');
    c.node(1).advance(rd);
    const rd2 = c.node(1).ready();
    assert.deepEqual(
      rd2.committed.map((e) => e.index),
      [p.index],
    );
    c.node(1).advance(rd2);
  });
});

describe('thesis §9.6 pre-vote and §6.2 check-quorum', () => {
  test('a node rejoining from a partition does not disturb a healthy leader', () => {
    const c = three();
    c.elect(1);
    const term = c.node(1).status().term;
    c.isolate(3);
    c.tickAll(100); // node 3 keeps pre-voting, never raising its term
    assert.equal(c.node(3).status().term, term);
    c.heal();
    c.tickAll(5);
    assert.equal(c.node(1).status().role, 'leader');
    assert.equal(c.node(1).status().term, term);
  });

  test('a leader that loses its quorum steps down within an election timeout', () => {
    const c = three();
    c.elect(1);
    c.isolate(1);
    c.tickAll(25);
    assert.notEqual(c.node(1).status().role, 'leader');
    // and the majority side elected a new leader
    assert.equal(c.leaders().filter((n) => n !== 1).length, 1);
  });
});

describe('thesis §6.4 ReadIndex', () => {
  const readStates = (c: Cluster, node: number) =>
    c.readyLog.filter((r) => r.node === node).flatMap((r) => r.ready.readStates);

  test('a follower gets the leader commit index, confirmed by a quorum round', () => {
    const c = three();
    c.elect(1);
    c.node(1).propose(cmd('a'));
    c.stabilize();
    c.node(3).readIndex(42);
    c.stabilize();
    assert.deepEqual(readStates(c, 3), [{ requestId: 42, index: c.node(1).status().commitIndex }]);
  });

  test('a leader cut off from its quorum does not answer reads', () => {
    const c = three();
    c.elect(1);
    c.isolate(1);
    c.node(1).readIndex(7);
    c.stabilize();
    assert.deepEqual(readStates(c, 1), []);
    // When it steps down the request fails instead of hanging.
    c.tickAll(25);
    const failures = c.readyLog.filter((r) => r.node === 1).flatMap((r) => r.ready.readFailures);
    assert.deepEqual(
      failures.map((f) => f.requestId),
      [7],
    );
  });

  test('a read on a node without a known leader fails at once', () => {
    const c = three();
    c.node(2).readIndex(5);
    const rd = c.node(2).ready();
    assert.deepEqual(rd.readFailures, [{ requestId: 5, reason: 'no-leader' }]);
    c.node(2).advance(rd);
  });
});

describe('thesis §3.10 leadership transfer', () => {
  test('the target becomes leader at once, without an election timeout', () => {
    const c = three();
    c.elect(1);
    c.node(1).propose(cmd('a'));
    c.stabilize();
    const r = c.node(1).transferLeadership(id(3));
    assert.ok(r.ok);
    c.stabilize();
    assert.equal(c.node(3).status().role, 'leader');
    assert.equal(c.node(1).status().role, 'follower');
  });

  test('proposals are refused while a transfer is in progress, and it aborts after a timeout', () => {
    const c = three();
    c.elect(1);
    c.isolate(3);
    assert.ok(c.node(1).transferLeadership(id(3)).ok);
    const p = c.node(1).propose(cmd('x'));
    assert.ok(!p.ok && p.error.code === 'HQL_LEADERSHIP_TRANSFER');
    c.tickAll(12);
    assert.equal(c.node(1).status().role, 'leader');
    assert.ok(c.node(1).propose(cmd('y')).ok);
  });
});

describe('thesis §4 membership changes', () => {
  test('a learner receives the log but does not vote or count for commitment', () => {
    const c = new Cluster({ voters: [id(1), id(2)], learners: [] }, 1, {}, [3]);
    c.elect(1);
    const add = c.node(1).proposeMembership({ type: 'add-learner', node: id(3) });
    assert.ok(add.ok);
    c.stabilize();
    c.node(1).propose(cmd('a'));
    c.stabilize();
    assert.deepEqual(c.appliedCommands(3), ['a']);
    c.isolate(2);
    const p = c.node(1).propose(cmd('b'));
    c.stabilize();
    assert.ok(p.ok && c.node(1).status().commitIndex < p.index, 'learner ack does not commit');
    c.heal();
    c.tickAll(30);
    assert.notEqual(c.node(3).status().role, 'leader');
  });

  test('a learner forgets a leader it has not heard from in an election timeout', () => {
    const c = new Cluster({ voters: [id(1), id(2)], learners: [] }, 1, {}, [3]);
    c.elect(1);
    assert.ok(c.node(1).proposeMembership({ type: 'add-learner', node: id(3) }).ok);
    c.stabilize();
    c.tickAll(25);
    assert.equal(c.node(3).status().leaderId, 1, 'a learner hearing heartbeats keeps its leader');
    c.isolate(3);
    c.tick(3, 9);
    assert.equal(c.node(3).status().leaderId, 1, 'within an election timeout it still names it');
    c.tick(3, 1);
    assert.equal(c.node(3).status().leaderId, null);
    assert.equal(c.node(3).status().role, 'follower');
    c.heal();
    c.tickAll(2);
    c.stabilize();
    assert.equal(c.node(3).status().leaderId, 1, 'the next heartbeat names it again');
  });

  test('one change at a time: a second change waits until the first commits', () => {
    const c = new Cluster({ voters: [id(1), id(2), id(3)], learners: [] }, 1, {}, [4, 5]);
    c.elect(1);
    c.isolate(2);
    c.isolate(3);
    assert.ok(c.node(1).proposeMembership({ type: 'add-learner', node: id(4) }).ok);
    const second = c.node(1).proposeMembership({ type: 'add-learner', node: id(5) });
    assert.ok(!second.ok && second.error.code === 'HQL_CONFIG_CHANGE_PENDING');
  });

  test('a promoted learner votes; removing the leader makes it step down and the rest go on', () => {
    const c = new Cluster({ voters: [id(1), id(2), id(3)], learners: [] }, 1, {}, [4]);
    c.elect(1);
    assert.ok(c.node(1).proposeMembership({ type: 'add-learner', node: id(4) }).ok);
    c.stabilize();
    assert.ok(c.node(1).proposeMembership({ type: 'promote', node: id(4) }).ok);
    c.stabilize();
    assert.deepEqual([...c.node(4).status().membership.voters].sort(), [1, 2, 3, 4]);
    assert.ok(c.node(1).proposeMembership({ type: 'remove', node: id(1) }).ok);
    c.stabilize();
    assert.notEqual(c.node(1).status().role, 'leader');
    c.tickAll(40);
    const leader = c.leaders()[0];
    assert.ok(leader !== undefined && leader !== 1);
    const p = c.node(leader).propose(cmd('after'));
    assert.ok(p.ok);
    c.stabilize();
    for (const n of [2, 3, 4]) assert.deepEqual(c.appliedCommands(n), ['after']);
  });

  test('§4.2.2 a node removed by an uncommitted configuration still campaigns, so the change can complete', () => {
    const c = new Cluster({ voters: [id(1), id(2)], learners: [] });
    c.elect(1);
    c.node(1).propose(cmd('a'));
    c.stabilize();
    // Node 1 removes itself, but the entry reaches only its own log.
    c.isolate(1);
    assert.ok(c.node(1).proposeMembership({ type: 'remove', node: id(1) }).ok);
    c.stabilize();
    c.tickAll(25); // check-quorum: node 1 steps down with the change uncommitted
    assert.notEqual(c.node(1).status().role, 'leader');
    // Node 2 (config {1,2}) cannot win without node 1, whose log is longer; node 1 must campaign.
    c.heal();
    c.tickAll(80);
    assert.equal(c.leaders().length, 1);
    assert.equal(c.leaders()[0], 2);
    assert.deepEqual(c.node(2).status().membership.voters, [2]);
    assert.ok(c.node(2).propose(cmd('b')).ok);
    c.stabilize();
    assert.deepEqual(c.appliedCommands(2), ['a', 'b']);
  });

  test('invalid changes are refused with a reason', () => {
    const c = three();
    c.elect(1);
    const r = c.node(1).proposeMembership({ type: 'promote', node: id(2) });
    assert.ok(!r.ok && r.error.code === 'HQL_INVALID_CONFIG_CHANGE');
  });
});

describe('snapshots and compaction', () => {
  test('a follower behind the compacted log is sent the snapshot and catches up after it', () => {
    const c = three();
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.node(1).propose(cmd(`x${i}`));
    c.stabilize();
    const applied = c.node(1).status().appliedIndex;
    c.node(1).compact(
      { index: applied, term: c.node(1).status().term, membership: c.node(1).membershipAt(applied) },
      applied,
    );
    assert.equal(c.node(1).status().firstIndex, applied + 1);
    c.heal();
    c.tickAll(2);
    const snaps = c.readyLog.filter((r) => r.node === 3 && r.ready.snapshot !== null);
    assert.equal(snaps.length, 1);
    assert.equal(snaps[0]?.ready.snapshot?.index, applied);
    c.node(1).reportSnapshot(id(3), true);
    c.node(1).propose(cmd('after'));
    c.stabilize();
    c.tickAll(2);
    assert.equal(c.node(3).status().appliedIndex, c.node(1).status().appliedIndex);
    assert.deepEqual(c.appliedCommands(3), ['after']); // the rest came in the snapshot
  });
});

describe('limits', () => {
  test('proposals beyond the uncommitted bound are rejected as overloaded', () => {
    const c = new Cluster({ voters: [id(1), id(2), id(3)], learners: [] }, 1, { uncommittedEntriesMax: 5 });
    c.elect(1);
    c.isolate(2);
    c.isolate(3);
    const results = Array.from({ length: 8 }, (_, i) => c.node(1).propose(cmd(`x${i}`)));
    const refused = results.filter((r) => !r.ok);
    assert.ok(refused.length > 0);
    assert.ok(refused.every((r) => !r.ok && r.error.code === 'HQL_OVERLOADED'));
  });

  test('a command over commandBytesMax is refused and never reaches the log', () => {
    const c = new Cluster({ voters: [id(1), id(2), id(3)], learners: [] }, 1, { commandBytesMax: 100 });
    c.elect(1);
    const last = c.node(1).status().lastIndex;
    const r = c.node(1).propose(new Uint8Array(101));
    assert.ok(!r.ok && r.error.code === 'HQL_ENTRY_TOO_LARGE' && r.error.bytes === 101);
    assert.equal(c.node(1).status().lastIndex, last);
    assert.ok(c.node(1).propose(new Uint8Array(100)).ok);
  });

  test('a follower refuses proposals and names the leader', () => {
    const c = three();
    c.elect(1);
    const r = c.node(2).propose(cmd('x'));
    assert.ok(!r.ok && r.error.code === 'HQL_NOT_LEADER' && r.error.leaderId === 1);
  });
});

describe('takeMessages', () => {
  test('a leader hands out heartbeats and new appends while a Ready is outstanding', () => {
    const c = three();
    c.elect(1);
    c.node(1).propose(cmd('a'));
    const rd = c.node(1).ready(); // the disk write of 'a' is "in flight"
    c.node(1).propose(cmd('b'));
    c.node(1).tick();
    const early = c.node(1).takeMessages();
    assert.ok(early.some((m) => m.type === 'heartbeat'));
    assert.ok(early.some((m) => m.type === 'append' && m.entries.some((e) => e.index === 3)));
    c.queue.push(...rd.messages, ...early);
    c.node(1).advance(rd);
    c.stabilize();
    assert.deepEqual(c.appliedCommands(2), ['a', 'b']);
  });

  test('votes are never handed out before persistence', () => {
    const c = three();
    c.node(2).step({
      type: 'vote',
      from: id(1),
      to: id(2),
      term: 1 as Term,
      lastIndex: 0 as LogIndex,
      lastTerm: 0 as Term,
      transfer: false,
    });
    assert.deepEqual(c.node(2).takeMessages(), []);
    assert.equal(c.node(2).ready().messagesAfterPersist[0]?.type, 'vote-response');
  });
});

describe('takeCommitted', () => {
  test('a committed, locally durable entry is handed out while a later Ready is in flight, once', () => {
    const c = three();
    c.elect(1);
    const leader = c.node(1);
    const start = leader.status().lastIndex;
    const a = leader.propose(cmd('a'));
    assert.ok(a.ok);
    const rd1 = leader.ready();
    leader.advance(rd1); // 'a' is durable on the leader
    const b = leader.propose(cmd('b'));
    assert.ok(b.ok);
    const rd2 = leader.ready(); // the disk write of 'b' is "in flight"
    assert.deepEqual(leader.takeCommitted(), [], 'not committed yet');
    // A follower acknowledges 'a' (and 'b'): 'a' commits; 'b' is not durable on the leader.
    leader.step(appendOk(leader, 2, leader.status().term, b.index));
    assert.equal(leader.status().commitIndex, a.index);
    const taken = leader.takeCommitted();
    assert.deepEqual(
      taken.map((e) => e.index),
      [a.index],
    );
    assert.ok(a.index > start);
    assert.deepEqual(leader.takeCommitted(), [], 'handed out once');
    leader.advance(rd2);
    // 'b' is durable now: it commits and comes out once, through either path.
    const rd3 = leader.ready();
    const rest = [...rd3.committed, ...leader.takeCommitted()].map((e) => e.index);
    assert.deepEqual(rest, [b.index]);
    leader.advance(rd3);
    assert.equal(leader.status().appliedIndex, b.index);
  });

  test('a follower does not hand out committed entries it has not persisted', () => {
    const c = three();
    c.elect(1);
    c.node(1).propose(cmd('a'));
    const rd = c.node(1).ready();
    c.queue.push(...rd.messages);
    c.node(1).advance(rd);
    // Deliver only to node 2, without letting it persist: the append carries the entry.
    const follower = c.node(2);
    for (const m of c.queue.splice(0)) if (m.to === id(2)) follower.step(m);
    const frd = follower.ready();
    assert.ok(frd.entries.length > 0);
    follower.step({
      type: 'heartbeat',
      from: id(1),
      to: id(2),
      term: c.node(1).status().term,
      commit: frd.entries[frd.entries.length - 1]!.index,
      commitTerm: frd.entries[frd.entries.length - 1]!.term,
      lastIndex: frd.entries[frd.entries.length - 1]!.index,
      readContext: 0,
    });
    assert.deepEqual(follower.takeCommitted(), [], 'the entry is not durable here yet');
    follower.advance(frd);
    const after = [...follower.ready().committed].map((e) => e.index);
    assert.ok(after.includes(frd.entries[frd.entries.length - 1]!.index));
  });
});

describe('releasing applied entries (RaftConfig.readEntries)', () => {
  test('a leader keeps no payload of applied entries and reads them back for a follower that lags', () => {
    const disk: Entry[] = [];
    let readBack = 0;
    const readEntries = (lo: LogIndex, hi: LogIndex, bytesMax: number): Entry[] => {
      const out: Entry[] = [];
      let bytes = 0;
      for (const e of disk) {
        if (e.index < lo || e.index >= hi) continue;
        bytes += e.kind === 'command' ? e.data.byteLength : 16;
        if (out.length > 0 && bytes > bytesMax) break;
        out.push(e);
      }
      readBack += out.length;
      return out;
    };
    const boot = threeVoterBoot(0, 0, []);
    const r = new RaftCore(testConfig(1, 1, { preVote: false, readEntries }), boot);
    const drain = readyDrainer(r, (entries) => disk.push(...entries));
    winElection(r, drain, 3);
    for (let i = 0; i < 5; i++) r.propose(cmd(`e${i}`));
    drain();
    r.step(appendOk(r, 3, 1, 6)); // node 3 keeps up; node 2 hears nothing
    const applied = drain().committed.map((e) => e.index);
    assert.deepEqual(applied, [1, 2, 3, 4, 5, 6]);
    drain();
    assert.equal(readBack, 0, 'nothing read back while nobody lags');
    // Node 2 wakes up (it never got the leader's first probe): the leader sends it everything
    // from index 1, whose payload, like all applied entries', is no longer in memory.
    r.step({
      type: 'heartbeat-response',
      from: id(2),
      to: id(1),
      term: 1 as Term,
      readContext: 0,
      matchHint: 0 as LogIndex,
    });
    const sent = r
      .takeMessages()
      .filter((m) => m.type === 'append' && m.to === id(2))
      .flatMap((m) => (m.type === 'append' ? m.entries : []));
    assert.ok(readBack > 0, 'the payload came from the log store');
    assert.deepEqual(
      sent.filter((e) => e.kind === 'command').map((e) => new TextDecoder().decode(e.data)),
      ['e0', 'e1', 'e2', 'e3', 'e4'],
    );
  });
});

describe('joining nodes', () => {
  test('a node that knows no membership (fresh or wiped) never grants a vote', () => {
    const c = new Cluster({ voters: [id(1), id(2)], learners: [] }, 1, {}, [3]);
    c.node(3).step({
      type: 'vote',
      from: id(1),
      to: id(3),
      term: 5 as Term,
      lastIndex: 9 as LogIndex,
      lastTerm: 4 as Term,
      transfer: false,
    });
    const rd = c.node(3).ready();
    const resp = rd.messagesAfterPersist.find((m) => m.type === 'vote-response');
    assert.ok(resp !== undefined && resp.type === 'vote-response' && !resp.granted);
    assert.equal(rd.hardState?.vote ?? null, null);
  });

  test('a node removed and added again is never credited with what its earlier self acknowledged (simulator seed 7495)', () => {
    const r = new RaftCore(testConfig(1, 1, { preVote: false }), threeVoterBoot(0, 0, []));
    const drain = readyDrainer(r);
    winElection(r, drain, 2);
    for (let i = 0; i < 5; i++) r.propose(cmd(`e${i}`));
    drain();
    r.takeMessages();
    // Node 3's earlier self acknowledges everything, but the answer is delayed in the network.
    const staleAck = appendOk(r, 3, 1, 6);
    r.step(appendOk(r, 2, 1, 6));
    drain();
    const commitConfig = () => {
      const last = r.status().lastIndex;
      drain();
      r.step(appendOk(r, 2, 1, last));
      drain();
      assert.equal(r.status().commitIndex, last);
    };
    // Node 3 is wiped, removed and added again as a learner.
    assert.ok(r.proposeMembership({ type: 'remove', node: id(3) }).ok);
    commitConfig();
    assert.ok(r.proposeMembership({ type: 'add-learner', node: id(3) }).ok);
    commitConfig();
    const fresh = r.status().progress?.get(id(3));
    assert.ok(fresh !== undefined && fresh.match === 0);
    assert.notEqual(staleAck.type === 'append-response' && staleAck.epoch, fresh.epoch);
    r.takeMessages();
    // The old acknowledgement arrives now: it says nothing about the new node 3.
    r.step(staleAck);
    assert.equal(r.status().progress?.get(id(3))?.match, 0, 'not credited with the earlier self');
    // The new node 3 (an empty log) rejects the probe; the leader backs off to the start.
    const probe = r.takeMessages().find((m) => m.type === 'append' && m.to === id(3));
    const lastProbe = probe ?? { type: 'append', prevIndex: r.status().lastIndex, epoch: fresh.epoch };
    assert.ok(lastProbe.type === 'append');
    r.step({
      type: 'append-response',
      from: id(3),
      to: id(1),
      term: r.status().term,
      matchIndex: 0 as LogIndex,
      reject: true,
      rejectedIndex: lastProbe.prevIndex,
      rejectHint: 0 as LogIndex,
      rejectHintTerm: 0 as Term,
      epoch: lastProbe.epoch,
    });
    const next = r
      .takeMessages()
      .filter((m) => m.to === id(3) && (m.type === 'append' || m.type === 'snapshot'));
    assert.ok(
      next.some((m) => m.type === 'append' && m.prevIndex === 0),
      `the leader sends node 3 the log from the start: ${JSON.stringify(next)}`,
    );
  });
});
