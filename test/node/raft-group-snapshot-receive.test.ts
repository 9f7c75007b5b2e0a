/**
 * A follower that receives two snapshot streams while the first waits for its Ready installs the
 * one its core took, whatever order the streams complete in (found by the simulator: seed 53 of
 * the snapshotKeepsConflictingTail scenario, with the bug off, failed with "snapshot 217 to
 * install was never received" when an older stream completed after a newer one was taken).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Prng } from '../../src/lib/prng.js';
import { RaftGroup } from '../../src/node/raft-group.js';
import type { GroupTransport } from '../../src/node/seams.js';
import { SnapshotStore } from '../../src/node/snapshot-store.js';
import { systemClock } from '../../src/node/system-clock.js';
import type { LogIndex, Membership, Message, NodeId, Term } from '../../src/raft/types.js';
import { MemoryLogStore } from '../../src/storage/memory-log-store.js';
import { KvStateMachine } from './group-harness.js';

const membership: Membership = { voters: [1 as NodeId, 2 as NodeId], learners: [] };

function snapshotMessage(index: number): Extract<Message, { type: 'snapshot' }> {
  return {
    type: 'snapshot',
    from: 1 as NodeId,
    to: 2 as NodeId,
    term: 1 as Term,
    snapshot: { index: index as LogIndex, term: 1 as Term, membership },
    epoch: 1,
  };
}

describe('RaftGroup: receiving snapshots', () => {
  test('an older snapshot stream completing after a newer one was taken neither replaces it nor stays on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hql-snap-recv-'));
    const fatal: Error[] = [];
    const sent: Message[] = [];
    const transport: GroupTransport = {
      send: (_g, m) => void sent.push(m),
      sendSnapshot: async () => false,
    };
    const snapshots = await SnapshotStore.open(join(dir, 'snapshots'));
    const sm = new KvStateMachine();
    const group = await RaftGroup.open({
      group: 'sql',
      raft: {
        id: 2 as NodeId,
        electionTimeoutTicks: 1000,
        heartbeatIntervalTicks: 2,
        preVote: true,
        checkQuorum: true,
        inflightMessagesMax: 4,
        inflightBytesMax: 1 << 20,
        appendBytesMax: 1 << 20,
        uncommittedEntriesMax: 100,
        uncommittedBytesMax: 1 << 20,
        commandBytesMax: 1 << 20,
        pendingReadsMax: 100,
        random: new Prng(2),
      },
      initialMembership: membership,
      tickIntervalMs: 10,
      logStore: new MemoryLogStore(),
      snapshots,
      stateMachine: sm,
      transport,
      clock: systemClock,
      snapshotEntriesThreshold: 1000,
      snapshotCostRatioMax: 8,
      snapshotBytesThreshold: 1 << 30,
      snapshotTrailingEntries: 5,
      applyQueueEntriesMax: 1000,
      onFatal: (e) => void fatal.push(e),
    });
    try {
      const newer = snapshots.tempPath();
      await writeFile(newer, JSON.stringify({ i: 10, t: 1, d: [['k', 'newer']] }));
      const older = snapshots.tempPath();
      await writeFile(older, JSON.stringify({ i: 5, t: 1, d: [['k', 'older']] }));
      // Both streams complete in one turn of the event loop: the core takes the first, and its
      // Ready has not run when the second arrives.
      group.receiveSnapshot(snapshotMessage(10), newer);
      group.receiveSnapshot(snapshotMessage(5), older);
      const deadline = Date.now() + 5000;
      while (sm.appliedIndex() < 10 && fatal.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.deepEqual(fatal, []);
      assert.equal(sm.appliedIndex(), 10);
      assert.equal(sm.data.get('k'), 'newer');
      assert.equal(snapshots.latest()?.meta.index, 10);
      assert.equal(existsSync(older), false, 'the file of the snapshot not taken is deleted');
      const acks = sent.filter((m) => m.type === 'append-response' && !m.reject);
      assert.ok(
        acks.some((m) => m.type === 'append-response' && m.matchIndex === 10),
        'the follower acknowledges the snapshot it installed',
      );
    } finally {
      await group.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
