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
