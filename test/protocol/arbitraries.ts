/** fast-check generators of valid Raft messages, shared by the codec and transport tests. */
import fc from 'fast-check';
import type { RaftGroupId } from '../../src/protocol/raft-group.js';
import type { Entry, LogIndex, Membership, Message, NodeId, Term } from '../../src/raft/types.js';

// fc.record builds null-prototype objects; spread them into plain ones to compare with deepEqual.
const plain = <T extends object>(o: T): T => ({ ...o });

export const u53 = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat());
export const nodeIdArb = fc.nat({ max: 0xffffffff }).map((n) => n as NodeId);
export const groupIdArb: fc.Arbitrary<RaftGroupId> = fc.constantFrom('sql', 'cache');

export const membershipArb: fc.Arbitrary<Membership> = fc
  .uniqueArray(nodeIdArb, { maxLength: 12 })
  .chain((ids) =>
    fc.nat({ max: ids.length }).map((split) => ({ voters: ids.slice(0, split), learners: ids.slice(split) })),
  );

/** A valid append: contiguous entries after prevIndex, terms non-decreasing from prevTerm up to term. */
const appendArb = fc
  .record({
    from: nodeIdArb,
    to: nodeIdArb,
    prevIndex: fc.nat({ max: 2 ** 40 }),
    prevTerm: fc.nat({ max: 1000 }),
    termBumps: fc.array(fc.nat({ max: 3 }), { maxLength: 8 }),
    extraTerm: fc.nat({ max: 5 }),
    commit: u53,
    epoch: u53,
    kinds: fc.array(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((data) => ({ kind: 'command' as const, data })),
        fc.constant({ kind: 'noop' as const }),
        membershipArb.map((membership) => ({ kind: 'config' as const, membership })),
      ),
      { maxLength: 8 },
    ),
  })
  .map((r): Message => {
    let t = r.prevTerm;
    const entries: Entry[] = r.kinds.map((k, i) => {
      t += r.termBumps[i] ?? 0;
      const index = (r.prevIndex + 1 + i) as LogIndex;
      const term = t as Term;
      if (k.kind === 'command') return { kind: 'command', index, term, data: k.data };
      if (k.kind === 'noop') return { kind: 'noop', index, term };
      return { kind: 'config', index, term, membership: k.membership };
    });
    return {
      type: 'append',
      from: r.from,
      to: r.to,
      term: (t + r.extraTerm) as Term,
      prevIndex: r.prevIndex as LogIndex,
      prevTerm: r.prevTerm as Term,
      entries,
      commit: r.commit as LogIndex,
      epoch: r.epoch,
    };
  });

const base = { from: nodeIdArb, to: nodeIdArb, term: u53.map((n) => n as Term) };
const idx = u53.map((n) => n as LogIndex);
const trm = u53.map((n) => n as Term);

export const messageArb: fc.Arbitrary<Message> = fc
  .oneof(
    appendArb,
    fc.record({
      type: fc.constant('append-response' as const),
      ...base,
      matchIndex: idx,
      reject: fc.boolean(),
      rejectedIndex: idx,
      rejectHint: idx,
      rejectHintTerm: trm,
      epoch: u53,
    }),
    fc.record({
      type: fc.constant('heartbeat' as const),
      ...base,
      commit: idx,
      commitTerm: trm,
      lastIndex: idx,
      readContext: u53,
    }),
    fc.record({
      type: fc.constant('heartbeat-response' as const),
      ...base,
      readContext: u53,
      matchHint: idx,
    }),
    fc.record({
      type: fc.constantFrom('vote' as const, 'pre-vote' as const),
      ...base,
      lastIndex: idx,
      lastTerm: trm,
      transfer: fc.boolean(),
    }),
    fc.record({
      type: fc.constantFrom('vote-response' as const, 'pre-vote-response' as const),
      ...base,
      granted: fc.boolean(),
    }),
    fc.record({ ...base, index: idx, snapTermBelow: u53, membership: membershipArb, epoch: u53 }).map(
      (r): Message => ({
        type: 'snapshot',
        from: r.from,
        to: r.to,
        term: r.term,
        snapshot: {
          index: r.index,
          term: (r.snapTermBelow % (r.term + 1)) as Term,
          membership: plain(r.membership),
        },
        epoch: r.epoch,
      }),
    ),
    fc.record({ type: fc.constant('timeout-now' as const), ...base }),
    fc.record({ type: fc.constant('read-index' as const), ...base, requestId: u53 }),
    fc.record({
      type: fc.constant('read-index-response' as const),
      ...base,
      requestId: u53,
      index: idx,
      ok: fc.boolean(),
    }),
  )
  .map(plain);

/** One message of every type, for transport tests. */
export function oneOfEachType(from: NodeId, to: NodeId): Message[] {
  const t = 3 as Term;
  const i = (n: number) => n as LogIndex;
  return [
    {
      type: 'append',
      from,
      to,
      term: t,
      prevIndex: i(4),
      prevTerm: 2 as Term,
      commit: i(4),
      entries: [
        { kind: 'command', index: i(5), term: t, data: new Uint8Array([1, 2, 3]) },
        { kind: 'noop', index: i(6), term: t },
        { kind: 'config', index: i(7), term: t, membership: { voters: [from, to], learners: [] } },
      ],
      epoch: 5,
    },
    {
      type: 'append-response',
      from,
      to,
      term: t,
      matchIndex: i(7),
      reject: false,
      rejectedIndex: i(0),
      rejectHint: i(0),
      rejectHintTerm: 0 as Term,
      epoch: 5,
    },
    { type: 'heartbeat', from, to, term: t, commit: i(7), commitTerm: t, lastIndex: i(9), readContext: 9 },
    { type: 'heartbeat-response', from, to, term: t, readContext: 9, matchHint: i(7) },
    { type: 'vote', from, to, term: t, lastIndex: i(7), lastTerm: t, transfer: true },
    { type: 'pre-vote', from, to, term: t, lastIndex: i(7), lastTerm: t, transfer: false },
    { type: 'vote-response', from, to, term: t, granted: true },
    { type: 'pre-vote-response', from, to, term: t, granted: false },
    {
      type: 'snapshot',
      from,
      to,
      term: t,
      snapshot: { index: i(100), term: 2 as Term, membership: { voters: [from, to], learners: [] } },
      epoch: 5,
    },
    { type: 'timeout-now', from, to, term: t },
    { type: 'read-index', from, to, term: t, requestId: 42 },
    { type: 'read-index-response', from, to, term: t, requestId: 42, index: i(7), ok: true },
  ];
}
