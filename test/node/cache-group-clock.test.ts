/**
 * Only the leader's stamps become log time in the cache group: a follower's command is stamped
 * again by the leader, so a follower reads its clock for it without carrying it. Carried, a guess
 * of a follower's clock (its peers not all known yet, one far ahead) stayed in its log clock and
 * became log time once it led, ending every lease early (the cache simulation, seed 574).
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
const HOUR_MS = 3_600_000;

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
});
