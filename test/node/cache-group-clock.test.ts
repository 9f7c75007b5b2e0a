/**
 * Only the leader's stamps become log time in the cache group: a follower's command is stamped
 * again by the leader, so a follower reads its clock for it without carrying it. Carried, a guess
 * of a follower's clock (its peers not all known yet, one far ahead) stayed in its log clock and
 * became log time once it led, ending every lease early (the cache simulation, seed 574). Nor
 * does a leader's stamp taken while the group's first stamp still waits for the clocks, and a
 * node that joins a group founded anew forgets the log time it carried (both found from outside,
 * with one node's clock 4 s ahead).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { HiqliteError } from '../../src/lib/errors.js';
import { CacheGroup } from '../../src/node/cache-group.js';
import { resolveConfig } from '../../src/node/config/config-resolve.js';
import type { GroupTransport } from '../../src/node/seams.js';
import { systemClock } from '../../src/node/system-clock.js';
import type { LogIndex, Membership, Message, NodeId, Term } from '../../src/raft/types.js';
import type { CacheResult } from '../../src/sm/cache/result.js';

const ALL: Membership = { voters: [1, 2, 3] as NodeId[], learners: [] };
const EMPTY: Membership = { voters: [], learners: [] };
const HOUR_MS = 3_600_000;

/**
 * Node 1 of three, cache group in memory, founding it alone: the cluster's clock is `clock.aheadMs`
 * ahead of the real one for the tie-break `later` (a guess between two clocks that disagree) and
 * `clock.settledAheadMs` for `earlier`; a new group's first stamp waits while `clock.founding`
 * is pending (PeerClocks.foundingReady).
 */
async function founder() {
  const clock = {
    aheadMs: 0,
    settledAheadMs: 0,
    founding: null as { promise: Promise<void>; resolve: () => void } | null,
  };
  const group = await CacheGroup.open(
    {
      cfg: resolveConfig({
        nodeId: 1,
        nodes: [1, 2, 3].map((id) => ({ id, addrRaft: `127.0.0.${id}:8100`, addrApi: `127.0.0.${id}:8200` })),
        secretRaft: 'raft-secret-0123456789',
        secretApi: 'api-secret-0123456789',
        sqlite: false,
        cacheStorageDisk: false,
      }),
      clock: systemClock,
      clusterWallMs: (tieBreak) => Date.now() + (tieBreak === 'later' ? clock.aheadMs : clock.settledAheadMs),
      clusterClock: {
        ready: () => null,
        waitReady: async (t) => t,
        foundingReady: () => clock.founding?.promise ?? null,
        waitFounding: async (t) => {
          await clock.founding?.promise;
          return t;
        },
      },
      log: pino({ level: 'silent' }),
      forward: async () => ({
        ok: false,
        error: new HiqliteError('HQL_UNAVAILABLE', 'alone', { retryable: true }),
      }),
      noLeaderError: () => new HiqliteError('HQL_UNAVAILABLE', 'no leader', { retryable: true }),
      onFatal: (e) => {
        throw e;
      },
    },
    true,
  );
  const transport: GroupTransport = { send: () => {}, sendSnapshot: async () => false };
  const lead = async (membership: Membership, kind: 'bootstrap' | 'join') => {
    if (kind === 'bootstrap' && group.running) await group.refound(membership, transport, kind);
    else await group.start(membership, transport, kind);
    group.group.campaign();
    const deadline = Date.now() + 10_000;
    while (group.group.status().role !== 'leader') {
      assert.ok(Date.now() < deadline, 'node 1 did not lead');
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const put = (key: string) => group.write({ type: 'put', cache: 'c', key, value: new Uint8Array([1]) });
  return { group, clock, transport, lead, put };
}

function pending(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('the cache group log clock', () => {
  test("a follower's write does not carry its clock into its log clock (the leader stamps it)", async () => {
    const wall = { offsetMs: HOUR_MS };
    const forwarded: Uint8Array[] = [];
    const group = await CacheGroup.open(
      {
        cfg: resolveConfig({
          nodeId: 1,
          nodes: [1, 2, 3].map((id) => ({
            id,
            addrRaft: `127.0.0.${id}:8100`,
            addrApi: `127.0.0.${id}:8200`,
          })),
          secretRaft: 'raft-secret-0123456789',
          secretApi: 'api-secret-0123456789',
          sqlite: false,
          cacheStorageDisk: false,
          readTimeoutMs: 50,
        }),
        clock: systemClock,
        // This node's view of the cluster's clock: an hour ahead for now (a guess).
        clusterWallMs: () => Date.now() + wall.offsetMs,
        log: pino({ level: 'silent' }),
        forward: async (_leader, data) => {
          forwarded.push(data);
          return {
            ok: true,
            value: { index: 2, result: { ok: true, value: { type: 'put' } } as CacheResult },
          };
        },
        noLeaderError: () => new HiqliteError('HQL_UNAVAILABLE', 'no leader', { retryable: true }),
        onFatal: (e) => {
          throw e;
        },
      },
      true,
    );
    const transport: GroupTransport = { send: () => {}, sendSnapshot: async () => false };
    try {
      await group.start(ALL, transport, 'keep');
      // Leader 2 of term 5 commits the membership: node 1 is a follower that knows its leader.
      const append: Message = {
        type: 'append',
        from: 2 as NodeId,
        to: 1 as NodeId,
        term: 5 as Term,
        prevIndex: 0 as LogIndex,
        prevTerm: 0 as Term,
        entries: [{ kind: 'config', index: 1 as LogIndex, term: 5 as Term, membership: ALL }],
        commit: 1 as LogIndex,
        epoch: 1,
      };
      group.receive(append);
      const deadline = Date.now() + 10_000;
      while (group.group.status().leaderId !== 2) {
        assert.ok(Date.now() < deadline, 'no leader known');
        await new Promise((r) => setTimeout(r, 10));
      }
      await group.write({ type: 'put', cache: 'c', key: 'k', value: new Uint8Array([1]) });
      assert.equal(forwarded.length, 1, 'forwarded to the leader');
      // The cluster's clock is known now: this node's time is the real one.
      wall.offsetMs = 0;
      const aheadMs = group.logClock.stampMs() - Date.now();
      assert.ok(aheadMs < 1_000, `this node would stamp ${aheadMs} ms ahead once it leads`);
    } finally {
      await group.close(5000);
    }
  });

  test('a leader whose first stamp waits for the clocks carries no guess: stamped before the wait, the group started from a clock 4 s ahead', async () => {
    const f = await founder();
    try {
      f.clock.founding = pending();
      f.clock.aheadMs = 4_000; // node 2's clock, the later of the two known
      await f.lead({ voters: [1] as NodeId[], learners: [] }, 'bootstrap');
      // A remote client's command gets a placeholder stamp before proposeHere waits (HiqliteNode).
      assert.ok(f.group.stampNowMs() - Date.now() >= 3_000, 'the reading is the guess');
      assert.equal(f.group.logClock.hasTime(), false, 'but it is not carried');
      const written = f.put('k');
      // The third clock answers: the cluster's clock is the real one.
      f.clock.aheadMs = 0;
      const wait = f.clock.founding;
      f.clock.founding = null;
      wait.resolve();
      await written;
      const aheadMs = f.group.sm.clockMs() - Date.now();
      assert.ok(aheadMs < 1_000, `the group's log time started ${aheadMs} ms ahead`);
    } finally {
      await f.group.close(5000);
    }
  });

  test('a node that joins a group founded anew forgets the log time it carried; a founder keeps it', async () => {
    const f = await founder();
    try {
      f.clock.aheadMs = 4_000;
      f.clock.settledAheadMs = 4_000; // a majority of the clocks ran 4 s ahead then
      await f.lead({ voters: [1] as NodeId[], learners: [] }, 'bootstrap');
      await f.put('k');
      const oldMs = f.group.sm.clockMs();
      assert.ok(oldMs - Date.now() >= 3_000);
      f.clock.aheadMs = 0;
      f.clock.settledAheadMs = 0; // corrected
      // Founded anew as a founder: its first stamp is no lower than the time it saw.
      await f.lead({ voters: [1] as NodeId[], learners: [] }, 'bootstrap');
      await f.put('k2');
      assert.ok(f.group.sm.clockMs() >= oldMs, 'the founder carried the old time');
      // Dropped to join a group founded anew by another node: that group's time is its time.
      await f.group.refound(EMPTY, f.transport, 'join');
      const readAheadMs = f.group.logClock.nowMs() - Date.now();
      assert.ok(
        readAheadMs < 1_000,
        `reads ${readAheadMs} ms ahead: a lease of the new group would end before it was handed out`,
      );
    } finally {
      await f.group.close(5000);
    }
  });
});
