/**
 * The cache group starts as the SQL group does (group-setup.ts, start-decision.ts,
 * joining-marker.ts): a node with a hard state alone knows no membership, and a joining node
 * neither votes nor campaigns until it has applied the entry that added it, also across a
 * restart in the middle of the join. One CacheGroup on a real data directory; the peers are
 * messages written by the test.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { HiqliteError } from '../../src/lib/errors.js';
import { CacheGroup } from '../../src/node/cache-group.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { resolveConfig } from '../../src/node/config/config-resolve.js';
import { GENESIS_MEMBERSHIP } from '../../src/node/hiqlite-node.js';
import type { GroupTransport } from '../../src/node/seams.js';
import { systemClock } from '../../src/node/system-clock.js';
import type { Entry, LogIndex, Membership, Message, NodeId, Term } from '../../src/raft/types.js';
import { encodeCacheCommand } from '../../src/sm/cache/command.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { writeHardStateFile } from '../../src/storage/hard-state-file.js';

const EMPTY: Membership = { voters: [], learners: [] };
const ALL: Membership = { voters: [1, 2, 3] as NodeId[], learners: [] };

function config(dataDir: string, overrides: Partial<NodeConfig> = {}) {
  return resolveConfig({
    nodeId: 1,
    nodes: [
      { id: 1, addrRaft: '127.0.0.1:8100', addrApi: '127.0.0.1:8200' },
      { id: 2, addrRaft: '127.0.0.2:8100', addrApi: '127.0.0.2:8200' },
      { id: 3, addrRaft: '127.0.0.3:8100', addrApi: '127.0.0.3:8200' },
    ],
    dataDir,
    secretRaft: 'raft-secret-0123456789',
    secretApi: 'api-secret-0123456789',
    sqlite: false,
    ...overrides,
  });
}

/** A cache group of node 1 whose sent messages are recorded. */
async function openGroup(dataDir: string, overrides: Partial<NodeConfig> = {}) {
  const sent: Message[] = [];
  const transport: GroupTransport = { send: (_g, m) => sent.push(m), sendSnapshot: async () => false };
  const group = await CacheGroup.open(
    {
      cfg: config(dataDir, overrides),
      clock: systemClock,
      log: pino({ level: 'silent' }),
      forward: () => Promise.reject(new Error('no forwarding in this test')),
      noLeaderError: () => new HiqliteError('HQL_UNAVAILABLE', 'no leader', { retryable: true }),
      onFatal: (e) => {
        throw e;
      },
    },
    true,
  );
  return { group, sent, transport };
}

/** An append from leader 2 of `term`. */
function append(term: number, prevIndex: number, entries: Entry[], commit: number): Message {
  return {
    type: 'append',
    from: 2 as NodeId,
    to: 1 as NodeId,
    term: term as Term,
    prevIndex: prevIndex as LogIndex,
    prevTerm: (prevIndex === 0 ? 0 : 5) as Term,
    entries,
    commit: commit as LogIndex,
    epoch: 1,
  };
}

/** Leader 2 of term 5 sends node 1 the entry that makes it a voter (index 1), not yet committed. */
function appendAddingIt(): Message {
  return append(5, 0, [{ kind: 'config', index: 1 as LogIndex, term: 5 as Term, membership: ALL }], 0);
}

/** Node 3 asks for node 1's vote in `term` (a leadership transfer: no leader lease holds it off). */
function voteRequest(term: number): Message {
  return {
    type: 'vote',
    from: 3 as NodeId,
    to: 1 as NodeId,
    term: term as Term,
    lastIndex: 1 as LogIndex,
    lastTerm: 5 as Term,
    transfer: true,
  };
}

/** Node 1's answer to node 3's vote request of `term`, waited for. */
async function answerTo(sent: Message[], term: number): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = sent.find((m) => m.type === 'vote-response' && m.to === 3 && m.term >= term);
    if (r !== undefined && r.type === 'vote-response') return r.granted;
    assert.ok(Date.now() < deadline, `no answer to the vote request of term ${term}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('the cache group joins as the SQL group does', () => {
  test('a cache log holding a hard state alone is no membership: the node joins the group again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hql-cache-join-'));
    try {
      // A node that stopped after its first term or vote was durable, before any entry or snapshot
      // (or whose log files were lost, the hard state kept): starting from the genesis membership,
      // node 1 would be the only voter of a group of its own.
      const logs = join(dir, 'logs_cache');
      await mkdir(logs, { recursive: true });
      await writeHardStateFile(logs, { term: 7 as Term, vote: 1 as NodeId, commit: 0 as LogIndex });
      const { group } = await openGroup(dir);
      try {
        assert.equal(group.fresh, true, 'a hard state alone is no membership');
      } finally {
        await group.close(5000);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('before its Raft group runs (the node still joins), every use is HQL_UNAVAILABLE, retryable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hql-cache-join-'));
    try {
      const { group } = await openGroup(dir);
      try {
        // Seen in the fault suite: a cache write through the API port of a node that lost its
        // state and joined again failed with a TypeError (HQL_INTERNAL) before the group ran.
        const unavailable = (e: unknown) =>
          e instanceof HiqliteError && e.code === 'HQL_UNAVAILABLE' && e.retryable;
        await assert.rejects(
          group.write({ type: 'put', cache: 'c', key: 'k', value: new Uint8Array([1]) }),
          unavailable,
        );
        await assert.rejects(group.proposeBytes(new Uint8Array([1]), 1000), unavailable);
        assert.throws(() => group.group, unavailable);
        assert.throws(() => group.subscribe({ channel: null }), unavailable);
        assert.equal(group.running, false);
      } finally {
        await group.close(5000);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const disk of [true, false]) {
    test(`cache_storage_disk = ${disk}: a joining node does not vote before it has applied the entry that added it`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'hql-cache-join-'));
      const overrides = disk ? {} : { cacheStorageDisk: false };
      try {
        const { group, sent, transport } = await openGroup(dir, overrides);
        try {
          assert.equal(group.fresh, true);
          await group.start(EMPTY, transport, 'join');
          // The log it receives lists it as a voter before the leader has (re-)added it.
          group.receive(appendAddingIt());
          await waitFor('the entry to be stored', () => group.group.status().lastIndex === 1);
          assert.deepEqual([...group.group.status().membership.voters], [1, 2, 3]);
          group.receive(voteRequest(6));
          assert.equal(await answerTo(sent, 6), false, 'a joining node voted');
          if (disk) assert.ok(existsSync(join(dir, 'joining_cache')), 'the join is recorded on disk');
          // The leader answers the join with index 1 and commits it: once applied, it votes.
          await group.join.added(1 as LogIndex);
          // (from leader 2 of term 6: node 1 took term 6 from the vote request)
          group.receive(append(6, 1, [], 1));
          await waitFor('the entry to be applied', () => group.group.applied() >= 1);
          group.receive(voteRequest(7));
          assert.equal(await answerTo(sent, 7), true, 'a node that was added votes');
        } finally {
          await group.close(5000);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  test('a restart in the middle of the join keeps abstaining (the marker survives it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hql-cache-join-'));
    try {
      const first = await openGroup(dir);
      await first.group.start(EMPTY, first.transport, 'join');
      first.group.receive(appendAddingIt());
      // Acknowledged only once durable.
      await waitFor('the entry to be stored', () =>
        first.sent.some((m) => m.type === 'append-response' && !m.reject && m.matchIndex === 1),
      );
      await first.group.close(5000);

      // Restarted: it has a log now (it is not fresh), but the join never completed.
      const second = await openGroup(dir);
      try {
        assert.equal(second.group.fresh, false);
        await second.group.start(GENESIS_MEMBERSHIP, second.transport, 'keep');
        assert.deepEqual(second.group.join.state, { joinedAt: null });
        await waitFor('the log to be loaded', () => second.group.group.status().lastIndex === 1);
        second.group.receive(voteRequest(6));
        assert.equal(await answerTo(second.sent, 6), false, 'a node whose join a restart interrupted voted');
      } finally {
        await second.group.close(5000);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a cache group kept in memory founded anew', () => {
  test('a node that dropped its state and joins the group founded anew installs the snapshot its leader sends', async () => {
    // Found by the fault suite: the state machine wrote and read snapshots in the store of before
    // refound(), where the one the leader sent is not: the node stopped serving ("memory snapshot
    // memory-snapshot:1 is gone").
    const dir = await mkdtemp(join(tmpdir(), 'hql-cache-refound-snap-'));
    try {
      const { group, transport } = await openGroup(dir, { cacheStorageDisk: false });
      try {
        await group.start(GENESIS_MEMBERSHIP, transport, 'bootstrap');
        group.group.campaign();
        await waitFor('node 1 to lead', () => group.group.status().role === 'leader');
        await group.write({ type: 'put', cache: 'c', key: 'old', value: new Uint8Array([9]) });
        await group.refound(EMPTY, transport, 'join');
        // The leader (node 2) of the group founded anew has compacted its log behind a snapshot.
        const term = (group.group.status().term + 7) as Term;
        const leaderSm = new CacheStateMachine();
        leaderSm.applySync(
          [
            { kind: 'config', index: 1 as LogIndex, term, membership: ALL },
            {
              kind: 'command',
              index: 2 as LogIndex,
              term,
              data: encodeCacheCommand({
                nowMs: Date.now(),
                command: { type: 'put', cache: 'c', key: 'new', value: new Uint8Array([7]) },
              }),
            },
          ],
          [false, false],
        );
        const chunks: Uint8Array[] = [];
        await leaderSm.writeSnapshot((c) => {
          chunks.push(c.slice());
        });
        async function* stream(): AsyncIterable<Uint8Array> {
          for (const c of chunks) yield c;
        }
        await group.receiveSnapshot(
          {
            type: 'snapshot',
            from: 2 as NodeId,
            to: 1 as NodeId,
            term,
            snapshot: { index: 2 as LogIndex, term, membership: ALL },
            epoch: 1,
          },
          stream(),
        );
        await waitFor('the snapshot to be installed', () => group.sm.appliedIndex() === 2);
        assert.deepEqual(group.sm.get('c', 'new'), new Uint8Array([7]));
        assert.equal(group.sm.get('c', 'old'), null);
        assert.equal(group.running, true, 'the node serves');
      } finally {
        await group.close(5000);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('starts at a term of the clock: a node holding an earlier incarnation neither wins a vote nor leads it; refound() empties it and ends its waits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hql-cache-refound-'));
    try {
      const { group, sent, transport } = await openGroup(dir, { cacheStorageDisk: false });
      try {
        const before = Date.now();
        await group.start(GENESIS_MEMBERSHIP, transport, 'bootstrap');
        group.group.campaign();
        await waitFor('node 1 to lead', () => group.group.status().role === 'leader');
        const term = group.group.status().term;
        assert.ok(term > before, `term ${term} is of the clock (${before})`);
        await group.write({ type: 'put', cache: 'c', key: 'k', value: new Uint8Array([1]) });
        // Node 3 still holds an earlier incarnation (a long log of term 40): cut off while node 1
        // founded this one, it asks for votes and sends appends as a leader of its own.
        const stale = {
          from: 3 as NodeId,
          to: 1 as NodeId,
          lastIndex: 500 as LogIndex,
          lastTerm: 40 as Term,
        };
        group.receive({ type: 'pre-vote', ...stale, term: 41 as Term, transfer: false });
        group.receive({ type: 'vote', ...stale, term: 41 as Term, transfer: true });
        group.receive({ ...append(41, 0, [], 0), from: 3 as NodeId });
        // The pre-vote and the append are answered with its term (a lower term's vote is not).
        await waitFor('the answers to node 3', () => sent.filter((m) => m.to === 3).length >= 2);
        const answers = sent.filter((m) => m.to === 3);
        assert.deepEqual(answers.map((m) => m.type).sort(), ['append-response', 'pre-vote-response']);
        assert.ok(
          answers.every((m) => m.term === term && !('granted' in m && m.granted)),
          JSON.stringify(answers),
        );
        assert.equal(group.group.status().role, 'leader', 'still leads its group');
        assert.equal(group.group.status().term, term, 'its term was not moved');

        // Founded anew again: its state is gone, its lock waits end (retryable).
        await group.write({ type: 'lockAcquire', key: 'l', holderId: 'a', leaseMs: 60_000, waitMs: 0 });
        const waiting = group.lock({ key: 'l', holderId: 'b', leaseMs: 1000 });
        await waitFor('b to queue', () => group.sm.lock('l')?.waiters.length === 1);
        await group.refound(EMPTY, transport, 'join');
        await assert.rejects(
          waiting,
          (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_UNAVAILABLE' && e.retryable,
        );
        assert.equal(group.fresh, true);
        assert.equal(group.sm.appliedIndex(), 0);
        assert.equal(group.sm.get('c', 'k'), null);
        await group.refound(GENESIS_MEMBERSHIP, transport, 'bootstrap');
        group.group.campaign();
        await waitFor('node 1 to lead again', () => group.group.status().role === 'leader');
        assert.ok(group.group.status().term > before);
        assert.equal(group.sm.get('c', 'k'), null, 'founded empty');
        await group.write({ type: 'put', cache: 'c', key: 'k2', value: new Uint8Array([2]) });
        assert.deepEqual(group.sm.get('c', 'k2'), new Uint8Array([2]));
      } finally {
        await group.close(5000);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
