import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type PendingRead, ReadOnlyQueue } from '../../src/raft/read-only.js';
import type { LogIndex, NodeId } from '../../src/raft/types.js';

const SELF = 1 as NodeId;
const VOTERS = [1, 2, 3, 4, 5] as NodeId[];
/** Majority of the five voters, as raft.ts counts it. */
const quorumOf5 = (acks: ReadonlySet<NodeId>) => VOTERS.filter((v) => acks.has(v)).length >= 3;

/** A read queued by the leader itself: the leader's own ack is implicit. */
const read = (context: number, index = context * 10): PendingRead => ({
  context,
  index: index as LogIndex,
  from: SELF,
  requestId: context + 1000,
  acks: new Set([SELF]),
});
const contexts = (rs: readonly PendingRead[]) => rs.map((r) => r.context);

describe('ReadOnlyQueue.ack', () => {
  test('an ack confirms every read with context <= the acked context, and none later', () => {
    const q = new ReadOnlyQueue();
    const rs = [read(1), read(2), read(3)];
    for (const r of rs) q.add(r);
    q.ack(2 as NodeId, 2);
    assert.deepEqual(
      rs.map((r) => r.acks.has(2 as NodeId)),
      [true, true, false],
    );
  });

  test('an ack older than every pending read confirms nothing', () => {
    const q = new ReadOnlyQueue();
    const r = read(5);
    q.add(r);
    q.ack(2 as NodeId, 4);
    assert.deepEqual([...r.acks], [SELF]);
  });

  test('repeated acks from one node count once', () => {
    const q = new ReadOnlyQueue();
    q.add(read(1));
    q.ack(2 as NodeId, 1);
    q.ack(2 as NodeId, 1);
    q.ack(2 as NodeId, 7);
    assert.deepEqual(q.takeConfirmed(quorumOf5), []);
    assert.equal(q.size, 1);
  });
});

describe('ReadOnlyQueue.takeConfirmed', () => {
  test('returns nothing and keeps the queue while no read has a quorum', () => {
    const q = new ReadOnlyQueue();
    q.add(read(1));
    q.add(read(2));
    q.ack(2 as NodeId, 2);
    assert.deepEqual(q.takeConfirmed(quorumOf5), []);
    assert.equal(q.size, 2);
  });

  test('returns the longest confirmed prefix in order and keeps the rest', () => {
    const q = new ReadOnlyQueue();
    for (const c of [1, 2, 3, 4]) q.add(read(c));
    q.ack(2 as NodeId, 4);
    q.ack(3 as NodeId, 2);
    const taken = q.takeConfirmed(quorumOf5);
    assert.deepEqual(contexts(taken), [1, 2]);
    assert.deepEqual(
      taken.map((r) => r.index),
      [10, 20],
    );
    assert.equal(q.size, 2);
    q.ack(4 as NodeId, 3);
    assert.deepEqual(contexts(q.takeConfirmed(quorumOf5)), [3]);
    q.ack(5 as NodeId, 4);
    assert.deepEqual(contexts(q.takeConfirmed(quorumOf5)), [4]);
    assert.equal(q.size, 0);
  });

  test('a confirmed later read releases every earlier read with it', () => {
    const q = new ReadOnlyQueue();
    q.add(read(1));
    q.add(read(2));
    q.add(read(3));
    q.ack(2 as NodeId, 3);
    q.ack(3 as NodeId, 3);
    assert.deepEqual(contexts(q.takeConfirmed(quorumOf5)), [1, 2, 3]);
  });

  test('a confirmed read releases the reads queued before it even if they lack a quorum', () => {
    // Contexts only grow, so leadership confirmed at a later read covers every earlier one.
    const q = new ReadOnlyQueue();
    const early: PendingRead = { ...read(1), acks: new Set() };
    q.add(early);
    q.add(read(2));
    const later = q.takeConfirmed((acks) => acks.has(SELF));
    assert.deepEqual(contexts(later), [1, 2]);
  });

  test('takeAll empties the queue in order', () => {
    const q = new ReadOnlyQueue();
    q.add(read(1));
    q.add(read(2));
    assert.deepEqual(contexts(q.takeAll()), [1, 2]);
    assert.equal(q.size, 0);
    assert.deepEqual(q.takeAll(), []);
  });

  type Op = { type: 'add' } | { type: 'ack'; from: number; back: number } | { type: 'take' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ type: fc.constant('add') }),
    fc.record({ type: fc.constant('ack'), from: fc.integer({ min: 1, max: 7 }), back: fc.nat(4) }),
    fc.record({ type: fc.constant('take') }),
  );

  test('property: matches a model of per-read ack sets; what it returns is a confirmed, ordered prefix', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const q = new ReadOnlyQueue();
        let model: Array<{ context: number; acks: Set<number> }> = [];
        let nextContext = 1;
        const served: number[] = [];
        for (const op of ops) {
          switch (op.type) {
            case 'add':
              q.add(read(nextContext));
              model.push({ context: nextContext, acks: new Set([SELF]) });
              nextContext++;
              break;
            case 'ack': {
              // Acks may carry an older context (a delayed heartbeat response) or a non-voter id.
              const ctx = Math.max(0, nextContext - 1 - op.back);
              q.ack(op.from as NodeId, ctx);
              for (const r of model) if (r.context <= ctx) r.acks.add(op.from);
              break;
            }
            case 'take': {
              const confirmed = (acks: ReadonlySet<number>) => VOTERS.filter((v) => acks.has(v)).length >= 3;
              let last = -1;
              model.forEach((r, i) => {
                if (confirmed(r.acks)) last = i;
              });
              const expected = model.slice(0, last + 1);
              model = model.slice(last + 1);
              const got = q.takeConfirmed(quorumOf5);
              assert.deepEqual(contexts(got), contexts(expected as PendingRead[]));
              for (const r of got)
                assert.ok(quorumOf5(r.acks), `read ${r.context} released without a quorum`);
              if (model[0] !== undefined)
                assert.equal(confirmed(model[0].acks), false, 'prefix is the longest');
              served.push(...contexts(got));
              break;
            }
          }
          assert.equal(q.size, model.length);
        }
        // Reads are served in the order they arrived, each at most once.
        assert.deepEqual(
          served,
          [...served].sort((a, b) => a - b),
        );
        assert.equal(new Set(served).size, served.length);
      }),
      { numRuns: 300, seed: 41 },
    );
  });
});
