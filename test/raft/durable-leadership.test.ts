/**
 * Rules the simulator's checkers found broken (issue 11):
 * - A lone voter leads only once its own vote is durable (Raft Figure 2: persist before
 *   responding; here before acting on the vote). It used to lead at once and send its learners
 *   appends of the new term while the vote was still being written: after a crash that lost it,
 *   it could lead the same term again with other entries at the same (index, term).
 * - A burst of heartbeat answers (a leader that stalled, then reads them all at once) lets at
 *   most one more append out per heartbeat round, not one per answer beyond the window.
 * - A node that joins again after losing its state abstains from votes and elections until its
 *   join completes: the log it receives may list it as a voter before the leader re-added it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RaftCore } from '../../src/raft/raft.js';
import type { LogIndex, Message, NodeId, RaftBootState, Term } from '../../src/raft/types.js';
import { cmd, id, testConfig } from './harness.js';

function boot(voters: NodeId[], learners: NodeId[]): RaftBootState {
  return {
    hardState: { term: 0 as Term, vote: null, commit: 0 as LogIndex },
    snapshot: { index: 0 as LogIndex, term: 0 as Term, membership: { voters, learners } },
    entries: [],
    appliedIndex: 0 as LogIndex,
  };
}

const appendsTo = (to: number, ms: readonly Message[]) =>
  ms.filter((m) => m.type === 'append' && m.to === to && m.entries.length > 0);

describe('leadership and flow control wait for what they rely on', () => {
  test('a lone voter leads, and sends its learners appends, only once its own vote is durable', () => {
    const r = new RaftCore(testConfig(1, 1, { preVote: true }), boot([id(1)], [id(2)]));
    r.campaign();
    assert.equal(r.status().role, 'candidate', 'not leader before its vote is on disk');
    assert.deepEqual(appendsTo(2, r.takeMessages()), []);
    const rd = r.ready();
    assert.equal(rd.hardState?.term, 1);
    assert.equal(rd.hardState?.vote, 1);
    assert.deepEqual(appendsTo(2, [...rd.messages, ...rd.messagesAfterPersist]), []);
    r.advance(rd); // the vote is durable
    assert.equal(r.status().role, 'leader');
    assert.equal(r.status().term, 1);
    assert.equal(appendsTo(2, r.takeMessages()).length, 1, 'the new leader replicates its noop');
  });

  test('a node that abstains (it joins again after losing its state) neither votes nor campaigns', () => {
    let abstaining = true;
    const r = new RaftCore(
      testConfig(2, 1, { preVote: false, abstain: () => abstaining }),
      boot([id(1), id(2), id(3)], []),
    );
    const vote = (term: number): Message => ({
      type: 'vote',
      from: id(3),
      to: id(2),
      term: term as Term,
      lastIndex: 0 as LogIndex,
      lastTerm: 0 as Term,
      transfer: false,
    });
    r.step(vote(1));
    const rd = r.ready();
    const answer = rd.messagesAfterPersist.find((m) => m.type === 'vote-response');
    assert.equal(answer?.type === 'vote-response' && answer.granted, false, 'no vote while abstaining');
    r.advance(rd);
    for (let i = 0; i < 100; i++) r.tick();
    assert.equal(r.status().role, 'follower', 'no election while abstaining');
    r.step({ type: 'timeout-now', from: id(1), to: id(2), term: 1 as Term });
    assert.equal(r.status().role, 'follower', 'not even when the leader hands over');
    abstaining = false;
    r.step(vote(2));
    const granted = r.ready().messagesAfterPersist.find((m) => m.type === 'vote-response');
    assert.equal(granted?.type === 'vote-response' && granted.granted, true);
  });

  test('many heartbeat answers at once open a full window by one append, not one per answer', () => {
    const r = new RaftCore(
      testConfig(1, 1, { preVote: false, inflightMessagesMax: 1, appendBytesMax: 1 }),
      boot([id(1), id(2)], []),
    );
    const sent: Message[] = [];
    const drain = () => {
      const rd = r.ready();
      sent.push(...rd.messages, ...rd.messagesAfterPersist);
      r.advance(rd);
    };
    const take = () => [...sent.splice(0), ...r.takeMessages()];
    r.campaign();
    drain();
    r.step({ type: 'vote-response', from: id(2), to: id(1), term: 1 as Term, granted: true });
    assert.equal(r.status().role, 'leader');
    drain();
    take();
    // Node 2 matches the noop: its progress replicates, with a window of one append.
    r.step({
      type: 'append-response',
      from: id(2),
      to: id(1),
      term: 1 as Term,
      matchIndex: 1 as LogIndex,
      reject: false,
      rejectedIndex: 0 as LogIndex,
      rejectHint: 0 as LogIndex,
      rejectHintTerm: 0 as Term,
      epoch: r.status().progress?.get(id(2))?.epoch ?? 0,
    });
    for (const s of ['a', 'b', 'c', 'd', 'e']) r.propose(cmd(s));
    drain();
    assert.equal(appendsTo(2, take()).length, 1, 'the window holds one append');
    for (let i = 0; i < 4; i++) {
      r.step({
        type: 'heartbeat-response',
        from: id(2),
        to: id(1),
        term: 1 as Term,
        readContext: 0,
        matchHint: 1 as LogIndex,
      });
    }
    assert.equal(appendsTo(2, take()).length, 1, 'one more append for the whole burst');
  });
});

describe('a leader under load sends no message without news', () => {
  const ack = (r: RaftCore, from: number, matchIndex: number): Message => ({
    type: 'append-response',
    from: id(from),
    to: id(1),
    term: 1 as Term,
    matchIndex: matchIndex as LogIndex,
    reject: false,
    rejectedIndex: 0 as LogIndex,
    rejectHint: 0 as LogIndex,
    rejectHintTerm: 0 as Term,
    epoch: r.status().progress?.get(id(from))?.epoch ?? 0,
  });
  const heartbeatAnswer = (from: number, matchHint: number): Message => ({
    type: 'heartbeat-response',
    from: id(from),
    to: id(1),
    term: 1 as Term,
    readContext: 0,
    matchHint: matchHint as LogIndex,
  });

  /** A leader of term 1 over voters 1–3 whose followers both matched its noop (index 1). */
  function leader(): { r: RaftCore; take: () => Message[] } {
    const r = new RaftCore(testConfig(1, 1, { preVote: false }), boot([id(1), id(2), id(3)], []));
    const sent: Message[] = [];
    const drain = () => {
      const rd = r.ready();
      sent.push(...rd.messages, ...rd.messagesAfterPersist);
      r.advance(rd);
    };
    const take = () => {
      drain();
      return [...sent.splice(0), ...r.takeMessages()];
    };
    r.campaign();
    drain();
    r.step({ type: 'vote-response', from: id(2), to: id(1), term: 1 as Term, granted: true });
    assert.equal(r.status().role, 'leader');
    take();
    r.step(ack(r, 2, 1));
    r.step(ack(r, 3, 1));
    take();
    return { r, take };
  }

  test('a commit tells only the followers that can learn something from it', () => {
    const { r, take } = leader();
    r.propose(cmd('a'));
    assert.equal(appendsTo(3, take()).length, 1);
    // Node 2's acknowledgement commits entry 2; node 3 is known to match only entry 1, so the
    // commit index it may be told is still 1, which it has: nothing goes to it.
    r.step(ack(r, 2, 2));
    const out = take();
    assert.equal(r.status().commitIndex, 2);
    assert.deepEqual(
      out.filter((m) => m.to === id(3)),
      [],
      'no heartbeat without news for node 3',
    );
    assert.ok(
      out.some((m) => m.to === id(2) && (m.type === 'heartbeat' || m.type === 'append') && m.commit === 2),
      'node 2 learns the commit',
    );
    // Node 3's acknowledgement arrives: now it is told.
    r.step(ack(r, 3, 2));
    assert.ok(take().some((m) => m.to === id(3) && m.type === 'heartbeat' && m.commit === 2));
  });

  test('answers to heartbeats within one heartbeat round send one empty probe append, not one each', () => {
    const { r, take } = leader();
    r.propose(cmd('a'));
    take(); // entry 2 is in flight to both followers
    for (let i = 0; i < 5; i++) r.step(heartbeatAnswer(3, 1));
    const empty = take().filter((m) => m.type === 'append' && m.to === id(3) && m.entries.length === 0);
    assert.equal(empty.length, 1, 'one probe for the round');
  });
});

describe('a stale leader always learns a higher term', () => {
  test('a learner with a higher term answers a stale heartbeat even without pre-vote or check-quorum', () => {
    // Node 3 is a learner now, but kept term 5 from an earlier life as a voter; it never
    // campaigns, so unless it answers, the leader of term 1 never learns of term 5 and never
    // reaches it again (simulator seed 21594).
    const r = new RaftCore(testConfig(3, 1, { preVote: false, checkQuorum: false }), {
      ...boot([id(1), id(2)], [id(3)]),
      hardState: { term: 5 as Term, vote: null, commit: 0 as LogIndex },
    });
    r.step({
      type: 'heartbeat',
      from: id(1),
      to: id(3),
      term: 1 as Term,
      commit: 0 as LogIndex,
      commitTerm: 0 as Term,
      lastIndex: 0 as LogIndex,
      readContext: 0,
    });
    const rd = r.ready();
    const answers = [...rd.messages, ...rd.messagesAfterPersist].filter((m) => m.to === id(1));
    assert.equal(answers.length, 1, 'the stale leader gets an answer');
    assert.equal(answers[0]?.term, 5, 'carrying the higher term');
  });
});
