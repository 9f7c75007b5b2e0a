/**
 * Batch entries of the cache group (command.ts, CACHE_BATCH_FORMAT_VERSION): the leader puts the
 * writes of one turn into one log entry. The codec round-trips and refuses hostile bytes with a
 * CacheError only; applying a batch is applying its commands one by one (the same results, each
 * to its own caller, the same caches, counters and sessions); replicas that decode the batch and
 * the leader that applies its validated envelopes hold the same state, byte for byte.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Entry, logIndex, term } from '../../src/raft/types.js';
import {
  CACHE_BATCH_COMMANDS_MAX,
  CACHE_BATCH_FORMAT_VERSION,
  type CacheCommand,
  type CacheCommandEnvelope,
  decodeCacheBatch,
  decodeCacheCommand,
  encodeCacheBatch,
  encodeCacheCommand,
  isBatchable,
} from '../../src/sm/cache/command.js';
import { CacheError } from '../../src/sm/cache/errors.js';
import type { CacheResult } from '../../src/sm/cache/result.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { snapshotBytes, T0 } from './cache-helpers.js';

const SEED = 0xba7c_4e5;

const key = fc.constantFrom('a', 'b', 'c', 'é');
const val = fc.uint8Array({ maxLength: 24 });
/** Batchable commands on few keys, so puts, takes and counters meet on the same key. */
const batchable: fc.Arbitrary<CacheCommand> = fc.oneof(
  fc
    .record({
      type: fc.constantFrom('put', 'replace', 'putIfAbsent'),
      key,
      value: val,
      ttlMs: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
    })
    .map(
      ({ ttlMs, ...c }) => ({ cache: 'c', ...c, ...(ttlMs === undefined ? {} : { ttlMs }) }) as CacheCommand,
    ),
  fc
    .record({ type: fc.constantFrom('delete', 'getRemove', 'get'), key })
    .map((c) => ({ cache: 'c', ...c }) as CacheCommand),
  fc
    .record({ key, delta: fc.bigInt({ min: -5n, max: 5n }) })
    .map(({ key: k, delta }) => ({ type: 'counterAdd', counter: 'n', key: k, delta }) as CacheCommand),
  fc.record({ key }).map(({ key: k }) => ({ type: 'counterDelete', counter: 'n', key: k }) as CacheCommand),
);
const step = fc.record({
  command: batchable,
  dtMs: fc.integer({ min: 0, max: 10 }),
  // A few clients with repeated seqs: duplicates and stale seqs inside one batch too.
  session: fc.option(
    fc.record({ clientId: fc.constantFrom('x', 'y'), seq: fc.integer({ min: 0, max: 4 }) }),
    {
      nil: undefined,
    },
  ),
  /** This command ends its batch. */
  cut: fc.boolean(),
});
type Step = {
  command: CacheCommand;
  dtMs: number;
  session: { clientId: string; seq: number } | undefined;
  cut: boolean;
};

function entry(index: number, data: Uint8Array): Entry {
  return { kind: 'command', index: logIndex(index), term: term(1), data };
}

function envelopes(steps: readonly Step[]): CacheCommandEnvelope[] {
  let now = T0;
  return steps.map(({ command, dtMs, session }) => {
    now += dtMs;
    return session === undefined ? { nowMs: now, command } : { nowMs: now, session, command };
  });
}

/** The steps cut into batches where a step says so (the last batch ends at the end). */
function groups<T>(items: readonly T[], steps: readonly Step[]): T[][] {
  const out: T[][] = [[]];
  items.forEach((it, i) => {
    (out[out.length - 1] as T[]).push(it);
    if ((steps[i] as Step).cut && i < items.length - 1) out.push([]);
  });
  return out;
}

const limits = { bytesMax: 900, entriesPerCacheMax: 3, sessionsMax: 2 };

describe('cache batch codec', () => {
  test('round-trips: each command decodes as it would alone', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
        const items = envelopes(steps).map((e) => encodeCacheCommand(e));
        const batch = encodeCacheBatch(items);
        assert.equal(batch[0], CACHE_BATCH_FORMAT_VERSION);
        assert.deepStrictEqual(
          decodeCacheBatch(batch),
          items.map((b) => decodeCacheCommand(b)),
        );
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('hostile bytes: a CacheError and nothing else, never a partial batch', () => {
    const valid = encodeCacheBatch(
      envelopes([
        {
          command: { type: 'put', cache: 'c', key: 'a', value: new Uint8Array([1]) },
          dtMs: 0,
          session: undefined,
          cut: false,
        },
        { command: { type: 'getRemove', cache: 'c', key: 'a' }, dtMs: 1, session: undefined, cut: false },
      ]).map((e) => encodeCacheCommand(e)),
    );
    const mutated = fc
      .record({
        at: fc.nat({ max: valid.length - 1 }),
        byte: fc.integer({ min: 0, max: 255 }),
        cutTo: fc.nat({ max: valid.length + 3 }),
      })
      .map(({ at, byte, cutTo }) => {
        const b = new Uint8Array(Math.max(cutTo, 0));
        b.set(valid.subarray(0, Math.min(cutTo, valid.length)));
        if (at < b.length) b[at] = byte;
        return b;
      });
    const random = fc.uint8Array({ maxLength: 64 }).map((b) => {
      const out = new Uint8Array(b.length + 1);
      out[0] = CACHE_BATCH_FORMAT_VERSION;
      out.set(b, 1);
      return out;
    });
    fc.assert(
      fc.property(fc.oneof(mutated, random), (bytes) => {
        try {
          const out = decodeCacheBatch(bytes);
          // Whatever decodes is a complete, valid batch.
          assert.ok(out.length >= 1 && out.every((e) => isBatchable(e.command)));
        } catch (e) {
          assert.ok(e instanceof CacheError, `not a CacheError: ${String(e)}`);
        }
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  test('refuses a count beyond the limit or the bytes, trailing bytes, and unbatchable commands', () => {
    const one = encodeCacheCommand({ nowMs: T0, command: { type: 'delete', cache: 'c', key: 'a' } });
    const good = encodeCacheBatch([one, one]);
    const malformed = (b: Uint8Array) =>
      assert.throws(
        () => decodeCacheBatch(b),
        (e: unknown) => e instanceof CacheError && e.code === 'HQL_MALFORMED_COMMAND',
      );
    const withCount = (n: number) => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(1, n);
      return b;
    };
    malformed(withCount(0));
    malformed(withCount(3));
    malformed(withCount(CACHE_BATCH_COMMANDS_MAX + 1));
    malformed(withCount(0xffff_ffff));
    const trailing = new Uint8Array(good.length + 1);
    trailing.set(good);
    malformed(trailing);
    for (const command of [
      { type: 'notify', channel: 'x', payload: new Uint8Array() },
      { type: 'lockAcquire', key: 'k', holderId: 'h', leaseMs: 10 },
      { type: 'lockRelease', key: 'k', token: 1 },
      { type: 'expire' },
      { type: 'clear', cache: 'c' },
    ] as CacheCommand[]) {
      assert.equal(isBatchable(command), false);
      malformed(encodeCacheBatch([one, encodeCacheCommand({ nowMs: T0, command })]));
    }
    // A batch inside a batch is no command.
    malformed(encodeCacheBatch([one, good]));
  });
});

describe('cache batch apply', () => {
  test('a malformed batch changes nothing and answers one error', () => {
    const sm = new CacheStateMachine();
    const one = encodeCacheCommand({
      nowMs: T0,
      command: { type: 'put', cache: 'c', key: 'a', value: new Uint8Array([1]) },
    });
    const bad = encodeCacheBatch([one, one]).subarray(0, 20);
    const [r] = sm.applySync([entry(1, bad)], [true]);
    assert.ok(r !== undefined && !Array.isArray(r) && !(r as CacheResult).ok);
    assert.equal(sm.appliedIndex(), 1);
    assert.equal(sm.get('c', 'a'), null);
  });

  test('a batch is its commands one by one: same results, same caches, counters and sessions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 50 }), async (steps) => {
        const envs = envelopes(steps);
        // One by one, an entry each.
        const single = new CacheStateMachine({ limits });
        const singleResults = envs.map((e, i) => {
          const [r] = single.applySync([entry(i + 1, encodeCacheCommand(e))], [true]);
          return r;
        });
        // Batched: the leader applies its validated envelopes, a follower decodes the bytes.
        const leader = new CacheStateMachine({ limits });
        const follower = new CacheStateMachine({ limits });
        const leaderResults: unknown[] = [];
        const followerResults: unknown[] = [];
        groups(envs, steps).forEach((g, i) => {
          const data = leader.encodeBatchForProposal(g.map((e) => leader.encodeForProposal(e)));
          const [a] = leader.applySync([entry(i + 1, data)], [true]);
          const [b] = follower.applySync([entry(i + 1, new Uint8Array(data))], [true]);
          assert.ok(Array.isArray(a) && Array.isArray(b));
          assert.equal(a.length, g.length);
          leaderResults.push(...a);
          followerResults.push(...b);
        });
        // Each command's result, in its own place.
        assert.deepStrictEqual(leaderResults, singleResults);
        assert.deepStrictEqual(followerResults, singleResults);
        // The same log gives the same state on every replica (the header's index included).
        assert.deepStrictEqual(await snapshotBytes(leader), await snapshotBytes(follower));
        // Batched or not: the same caches, counters, clock and sessions.
        for (const sm of [leader, follower]) {
          assert.deepStrictEqual(sm.entries('c'), single.entries('c'));
          assert.deepStrictEqual(sm.countersPage('n', 0, 100), single.countersPage('n', 0, 100));
          assert.deepStrictEqual(
            { ...sm.stats(), notificationNextSeq: 0 },
            { ...single.stats(), notificationNextSeq: 0 },
          );
        }
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
