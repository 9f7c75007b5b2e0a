/**
 * A follower that comes back holding less of the log than it acknowledged: an operator restored
 * an older copy of its data directory (or of its log), or its log lost a tail. The leader's record
 * of its match is then wrong; the follower must still be brought up to date, with writes and
 * without (an idle cluster), and a node whose log is empty (an in-memory group that restarted:
 * it rejoins as a new learner) must not be re-synced as the voter it was.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RaftCore } from '../../src/raft/raft.js';
import type { Entry, LogIndex, Message, Term } from '../../src/raft/types.js';
import { Cluster, cmd, type Disk, id, testConfig } from './harness.js';

function copyDisk(d: Disk): Disk {
  return {
    hardState: { ...d.hardState },
    snapshot: { ...d.snapshot },
    entries: [...d.entries],
    applied: [...d.applied],
    appliedIndex: d.appliedIndex,
  };
}

/** Three voters, node 1 leads; `before` entries written and everywhere, then node 3's disk copied. */
function clusterWithCopy(before: number): { c: Cluster; copy: Disk } {
  const c = new Cluster({ voters: [id(1), id(2), id(3)], learners: [] });
  c.elect(1);
  for (let i = 0; i < before; i++) c.node(1).propose(cmd(`a${i}`));
  c.stabilize();
  c.tickAll(2);
  return { c, copy: copyDisk(c.disks.get(id(3))!) };
}

function lastIndex(c: Cluster, n: number): LogIndex {
  return c.node(n).status().lastIndex;
}

describe('a follower that lost a tail of its log', () => {
  test('restored from an older copy, it is brought up to date by the next writes', () => {
    const { c, copy } = clusterWithCopy(3);
    for (let i = 0; i < 5; i++) c.node(1).propose(cmd(`b${i}`));
    c.stabilize();
    c.tickAll(2);
    const matchBefore = c.node(1).status().progress!.get(id(3))!.match;
    assert.ok(matchBefore > copy.entries.length, 'the leader recorded the newer entries as held');
    c.crash(id(3));
    c.disks.set(id(3), copy);
    c.start(id(3));
    assert.ok(lastIndex(c, 3) < matchBefore, 'node 3 holds less than it acknowledged');

    for (let i = 0; i < 3; i++) c.node(1).propose(cmd(`c${i}`));
    c.stabilize();
    c.tickAll(3);

    assert.equal(lastIndex(c, 3), lastIndex(c, 1));
    assert.deepEqual(c.appliedCommands(3).slice(-11), c.appliedCommands(1).slice(-11));
    const pr = c.node(1).status().progress!.get(id(3))!;
    assert.equal(pr.match, lastIndex(c, 1));
    assert.equal(pr.regressions, 1, 'the leader saw the regression once');
  });

  test('in an idle cluster (nothing left to send), heartbeats find it and bring it up to date', () => {
    const { c, copy } = clusterWithCopy(2);
    for (let i = 0; i < 4; i++) c.node(1).propose(cmd(`b${i}`));
    c.stabilize();
    c.tickAll(2);
    c.crash(id(3));
    c.disks.set(id(3), copy);
    c.start(id(3));
    assert.ok(lastIndex(c, 3) < lastIndex(c, 1));

    c.tickAll(4);

    assert.equal(lastIndex(c, 3), lastIndex(c, 1));
    assert.equal(c.node(3).status().commitIndex, c.node(1).status().commitIndex);
    assert.deepEqual(c.appliedCommands(3).slice(-4), ['b0', 'b1', 'b2', 'b3']);
  });

  test('a follower whose log is empty (its state is gone) is not re-synced: it waits to be added again', () => {
    const { c } = clusterWithCopy(3);
    c.crash(id(3));
    const d = c.disks.get(id(3))!;
    c.disks.set(id(3), {
      hardState: { term: 0 as never, vote: null, commit: 0 as LogIndex },
      snapshot: { ...d.snapshot },
      entries: [],
      applied: [],
      appliedIndex: 0 as LogIndex,
    });
    c.start(id(3));
    const before = c.node(1).status().progress!.get(id(3))!.match;
    c.node(1).propose(cmd('x'));
    c.stabilize();
    c.tickAll(4);
    const pr = c.node(1).status().progress!.get(id(3))!;
    assert.equal(pr.match, before, 'its record stays as it was');
    assert.equal(pr.regressions, 0);
    assert.equal(lastIndex(c, 3), 0, 'nothing sent below what the leader recorded');
  });

  test('a heartbeat does not commit an entry of another term at the index the leader believes matched', () => {
    // Node 3 came back with an older copy: an entry of term 1 at index 5 that the leader
    // replaced (term 2) and believes node 3 holds. The heartbeat's commit index must not make
    // node 3 apply its own entry there.
    const c = new Cluster({ voters: [id(1), id(2), id(3)], learners: [] });
    c.elect(1);
    c.node(1).propose(cmd('a'));
    c.stabilize();
    c.tickAll(2);
    const f = c.node(3);
    const last = f.status().lastIndex;
    const term = c.node(1).status().term;
    const step = (commit: number, commitTerm: number) =>
      f.step({
        type: 'heartbeat',
        from: id(1),
        to: id(3),
        term,
        commit: commit as LogIndex,
        commitTerm: commitTerm as Term,
        lastIndex: Math.max(commit, last + 1) as LogIndex,
        readContext: 0,
      });
    // Node 3 is handed the messages directly (nothing is delivered through the harness).
    const before = f.status().commitIndex;
    assert.equal(before, last, 'everything it holds is committed');
    // An uncommitted entry appended, then heartbeats about it.
    f.step({
      type: 'append',
      from: id(1),
      to: id(3),
      term,
      prevIndex: last,
      prevTerm: term,
      entries: [{ kind: 'noop', index: (last + 1) as LogIndex, term }],
      commit: last,
      epoch: 1,
    });
    assert.equal(f.status().lastIndex, last + 1);
    step(last + 1, term + 1);
    assert.equal(f.status().commitIndex, last, 'another term at the commit index: not committed');
    step(last + 2, term);
    assert.equal(f.status().commitIndex, last, 'a commit index past its log: not committed');
    step(last + 1, 0);
    assert.equal(f.status().commitIndex, last, 'an unknown term: not committed');
    step(last + 1, term);
    assert.equal(f.status().commitIndex, last + 1, 'its own entry of that term: committed');
  });

  test('a heartbeat answer that is only late (the follower holds everything) costs one probe, and replication resumes', () => {
    const { c } = clusterWithCopy(3);
    const leader = c.node(1);
    const last = lastIndex(c, 1);
    assert.equal(leader.status().progress!.get(id(2))!.state, 'replicate');
    // An answer to a heartbeat sent before node 2 took the last entries, arriving after its
    // acknowledgement of them (heartbeats and appends travel on different connections), as the
    // first answer of a heartbeat round.
    leader.tick();
    leader.step({
      type: 'heartbeat-response',
      from: id(2),
      to: id(1),
      term: leader.status().term,
      readContext: 0,
      matchHint: (last - 2) as LogIndex,
    });
    const probes = leader.takeMessages().filter((m) => m.type === 'append' && m.to === id(2));
    assert.equal(probes.length, 1, 'one probe');
    assert.equal(leader.status().progress!.get(id(2))!.state, 'probe');
    c.queue.push(...probes);
    c.stabilize();
    const pr = leader.status().progress!.get(id(2))!;
    assert.equal(pr.state, 'replicate', 'back to replicating once node 2 answered the probe at match');
    assert.equal(pr.match, last);
    assert.equal(pr.regressions, 0);
  });
});

describe("a follower whose committed log conflicts with its leader's (the cluster lost committed entries)", () => {
  /** Node 3 holds entries 1..4 of term 1, committed through 4. */
  function follower(): RaftCore {
    const entries: Entry[] = [1, 2, 3, 4].map((i) => ({
      kind: 'noop',
      index: i as LogIndex,
      term: 1 as Term,
    }));
    return new RaftCore(testConfig(3, 1), {
      hardState: { term: 1 as Term, vote: null, commit: 4 as LogIndex },
      snapshot: {
        index: 0 as LogIndex,
        term: 0 as Term,
        membership: { voters: [id(1), id(2), id(3)], learners: [] },
      },
      entries,
      appliedIndex: 4 as LogIndex,
    });
  }
  const append = (prevIndex: number, prevTerm: number, entries: Entry[] = []): Message => ({
    type: 'append',
    from: id(1),
    to: id(3),
    term: 2 as Term,
    prevIndex: prevIndex as LogIndex,
    prevTerm: prevTerm as Term,
    entries,
    commit: 0 as LogIndex,
    epoch: 1,
  });
  const answers = (r: RaftCore) => {
    const rd = r.ready();
    r.advance(rd);
    return [...rd.messages, ...rd.messagesAfterPersist].filter((m) => m.type === 'append-response');
  };

  for (const [what, m, index] of [
    ['a probe below its commit index', append(2, 2), 2],
    ['a probe at its commit index', append(4, 2), 4],
    [
      'entries below its commit index',
      append(1, 1, [{ kind: 'noop', index: 2 as LogIndex, term: 2 as Term }]),
      2,
    ],
  ] as const) {
    test(`${what} of another term: it records the divergence and answers nothing`, () => {
      const r = follower();
      r.step(m);
      assert.deepEqual(r.divergence(), { index, ours: 1, leaders: 2, leader: id(1), leaderLastIndex: 0 });
      assert.deepEqual(answers(r), [], 'no answer: it would claim to match the leader');
      // Nothing afterwards is answered either.
      r.step(append(4, 1));
      assert.deepEqual(answers(r), []);
    });
  }

  test('a heartbeat of a leader whose log ends before its commit index: it records the divergence and answers nothing', () => {
    const heartbeat = (lastIndex: number, term = 2): Message => ({
      type: 'heartbeat',
      from: id(1),
      to: id(3),
      term: term as Term,
      commit: 0 as LogIndex,
      commitTerm: 0 as Term,
      lastIndex: lastIndex as LogIndex,
      readContext: 0,
    });
    const fine = follower();
    fine.step(heartbeat(4));
    assert.equal(fine.divergence(), null);
    // In the term its commit index was learnt in, a heartbeat sent before that may arrive after
    // it (another connection): no proof of anything.
    const late = follower();
    late.step(heartbeat(3, 1));
    assert.equal(late.divergence(), null);
    const r = follower();
    r.step(heartbeat(3));
    assert.deepEqual(r.divergence(), { index: 4, ours: 1, leaders: 0, leader: id(1), leaderLastIndex: 3 });
    const rd = r.ready();
    assert.deepEqual(
      [...rd.messages, ...rd.messagesAfterPersist].filter((m) => m.type === 'heartbeat-response'),
      [],
    );
  });

  test('the same terms, or a mismatch above its commit index, is ordinary replication', () => {
    const r = follower();
    r.step(append(2, 1));
    r.step(append(6, 2));
    assert.equal(r.divergence(), null);
    const got = answers(r);
    assert.equal(got.length, 2);
    assert.ok(got[0]!.type === 'append-response' && !got[0]!.reject && got[0]!.matchIndex === 4);
    assert.ok(got[1]!.type === 'append-response' && got[1]!.reject);
  });
});
