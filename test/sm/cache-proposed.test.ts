/**
 * The leader applies the commands it encoded itself from their validated envelopes
 * (`CacheStateMachine.encodeForProposal`), every other replica decodes the entry's bytes: both
 * must end in the same state, byte for byte in the snapshot, with the same results — including
 * strings that UTF-8 cannot carry as they are (lone surrogates), -0, int64 counters, sessions,
 * and writes that hit the byte and entry limits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Entry, logIndex, term } from '../../src/raft/types.js';
import {
  type CacheCommand,
  type CacheCommandEnvelope,
  decodeCacheCommand,
  encodeCacheCommandValidated,
} from '../../src/sm/cache/command.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { snapshotBytes, T0 } from './cache-helpers.js';

const SEED = 0x5eed_c0de;

const str = fc.constantFrom('a', 'b', 'é', '\uD83D\uDE00', '\uD800', 'x\uDC00y');
const val = fc.uint8Array({ maxLength: 24 });
const command: fc.Arbitrary<CacheCommand> = fc.oneof(
  fc
    .record({
      type: fc.constantFrom('put', 'replace', 'putIfAbsent'),
      cache: str,
      key: str,
      value: val,
      ttlMs: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
    })
    .map(({ ttlMs, ...c }) => (ttlMs === undefined ? c : { ...c, ttlMs }) as CacheCommand),
  fc
    .record({ type: fc.constantFrom('delete', 'getRemove', 'get'), cache: str, key: str })
    .map((c) => c as CacheCommand),
  fc
    .record({ key: str, delta: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) })
    .map(({ key, delta }) => ({ type: 'counterAdd', counter: 'n', key, delta }) as CacheCommand),
  fc.record({ channel: str, payload: val }).map((c) => ({ type: 'notify', ...c }) as CacheCommand),
  fc.constant({ type: 'expire' } as CacheCommand),
);
const step = fc.record({
  command,
  dtMs: fc.integer({ min: 0, max: 10 }),
  session: fc.option(fc.record({ clientId: str, seq: fc.constantFrom(-0, 0, 1, 2, 3) }), { nil: undefined }),
});

function entry(index: number, data: Uint8Array): Entry {
  return { kind: 'command', index: logIndex(index), term: term(1), data };
}

describe('commands applied from their validated envelope (the proposing leader)', () => {
  test('the validated envelope is what decoding the bytes gives', () => {
    fc.assert(
      fc.property(step, ({ command: c, session }) => {
        const env: CacheCommandEnvelope =
          session === undefined ? { nowMs: T0, command: c } : { nowMs: T0, session, command: c };
        const out = encodeCacheCommandValidated(env);
        assert.deepStrictEqual(out.envelope, decodeCacheCommand(out.bytes));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('a leader applying its own proposals and a follower decoding them hold the same state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
        const limits = { bytesMax: 700, entriesPerCacheMax: 4, sessionsMax: 3 };
        const leader = new CacheStateMachine({ limits });
        const follower = new CacheStateMachine({ limits });
        let now = T0;
        for (let i = 0; i < steps.length; i++) {
          const { command: c, dtMs, session } = steps[i] as (typeof steps)[number];
          now += dtMs;
          const env: CacheCommandEnvelope =
            session === undefined ? { nowMs: now, command: c } : { nowMs: now, session, command: c };
          const data = leader.encodeForProposal(env);
          const [a] = leader.applySync([entry(i + 1, data)], [true]);
          // The follower's copy came over the wire: other bytes, the same content.
          const [b] = follower.applySync([entry(i + 1, new Uint8Array(data))], [true]);
          assert.deepStrictEqual(a, b);
        }
        assert.deepStrictEqual(await snapshotBytes(leader), await snapshotBytes(follower));
        assert.deepStrictEqual(leader.stats(), follower.stats());
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
