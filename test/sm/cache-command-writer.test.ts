/**
 * The fast writer of common cache commands (src/sm/cache/command-writer.ts) gives, for every
 * envelope it takes, the very bytes of the generic encoder (msgpackr of the validated envelope)
 * and the very envelope the generic path validates; everything else it leaves to the generic
 * path, whose errors stay the same. And it takes what the cluster actually proposes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SESSION_PROTECT_MS_MAX, SESSION_PROTECT_MS_MIN } from '../../src/lib/client-session.js';
import {
  CACHE_COMMAND_FORMAT_VERSION,
  type CacheCommandEnvelope,
  DURATION_MS_MAX,
  decodeCacheCommandGeneric,
  encodeCacheCommand,
  encodeCacheCommandGeneric,
  encodeCacheCommandValidated,
  NOW_MS_MAX,
} from '../../src/sm/cache/command.js';
import { writeCommonEnvelope } from '../../src/sm/cache/command-writer.js';
import { commandTypeNearCommon as type } from './cache-helpers.js';

const SEED = 0x5eed_3417;
const BOUNDS = {
  formatVersion: CACHE_COMMAND_FORMAT_VERSION,
  nowMsMax: NOW_MS_MAX,
  durationMsMax: DURATION_MS_MAX,
};

/** A function's value, or its error's code and message. */
function outcome<T>(f: () => T): T | { code: unknown; message: string } {
  try {
    return f();
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
}

/** Counts the envelopes the fast writer took, so a run that never reaches it fails. */
let taken = 0;

function agrees(e: unknown): boolean {
  const envelope = e as CacheCommandEnvelope;
  const generic = outcome(() => encodeCacheCommandGeneric(envelope));
  assert.deepStrictEqual(
    outcome(() => encodeCacheCommand(envelope)),
    generic,
  );
  const validated = outcome(() => encodeCacheCommandValidated(envelope));
  if (generic instanceof Uint8Array) {
    const v = validated as { bytes: Uint8Array; envelope: CacheCommandEnvelope };
    assert.deepStrictEqual(v.bytes, generic);
    assert.deepStrictEqual(v.envelope, decodeCacheCommandGeneric(generic));
  } else {
    assert.deepStrictEqual(validated, generic);
  }
  const fast = writeCommonEnvelope(envelope, BOUNDS);
  if (fast === null) return true;
  taken++;
  assert.ok(generic instanceof Uint8Array, 'the fast writer took what the generic path refuses');
  assert.deepStrictEqual(fast.bytes, generic);
  assert.deepStrictEqual(fast.envelope, decodeCacheCommandGeneric(generic));
  const value = (fast.envelope.command as { value?: Uint8Array }).value;
  const input = (envelope.command as { value?: Uint8Array }).value;
  if (value !== undefined) {
    assert.equal(value.constructor, Uint8Array, 'a plain Uint8Array');
    assert.notEqual(value.buffer, input?.buffer, "a copy, not the caller's array");
    assert.deepStrictEqual(value, input);
  }
  return true;
}

const ascii = fc.string({ maxLength: 40 });
const longAscii = fc.constantFrom(
  'k'.repeat(31),
  'k'.repeat(32),
  'k'.repeat(255),
  'k'.repeat(256),
  'k'.repeat(65_535),
  'k'.repeat(65_536),
);
const anyText = fc.oneof(ascii, fc.string({ unit: 'binary', maxLength: 8 }), longAscii);
const uintEdge = fc.constantFrom(
  0,
  0x7f,
  0x80,
  0xff,
  0x100,
  0xffff,
  0x10000,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
);
const int = fc.oneof(
  fc.integer({ min: -200, max: 70_000 }),
  uintEdge,
  fc.constantFrom(
    NOW_MS_MAX,
    NOW_MS_MAX + 1,
    DURATION_MS_MAX,
    DURATION_MS_MAX + 1,
    2 ** 53,
    -0,
    1.5,
    Number.NaN,
    -1,
  ),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.constantFrom(0, 255, 256, 65_535, 65_536).map((n) => new Uint8Array(n).fill(7)),
  fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 8 }).map((b) => new Uint8Array(b.buffer, 0, Math.max(0, b.length - 1))),
);
const anyValue = fc.oneof(
  int,
  anyText,
  bytes,
  fc.constantFrom(null, undefined, true, false),
  fc.constant([1, 2]),
);

/** Envelopes near the common shapes: optional, missing, extra, undefined and wrongly typed fields. */
const nearEnvelope = fc.record(
  {
    nowMs: fc.oneof(int, fc.integer({ min: 0, max: NOW_MS_MAX }), anyValue),
    session: fc.oneof(
      fc.record(
        {
          clientId: fc.oneof(ascii, anyText, anyValue),
          seq: fc.oneof(fc.nat(), int),
          protectMs: fc.oneof(fc.integer({ min: SESSION_PROTECT_MS_MIN, max: SESSION_PROTECT_MS_MAX }), int),
          x: anyValue,
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    command: fc.record(
      {
        type,
        cache: fc.oneof(ascii, anyText, anyValue),
        key: fc.oneof(ascii, anyText, anyValue),
        value: fc.oneof(bytes, anyValue),
        ttlMs: fc.oneof(fc.integer({ min: 1, max: DURATION_MS_MAX }), int),
        extra: anyValue,
      },
      { requiredKeys: ['type'] },
    ),
    other: anyValue,
  },
  { requiredKeys: [] },
);

/** Valid envelopes of the shapes the cluster proposes. */
const commonEnvelope = fc
  .record({
    nowMs: fc.oneof(fc.integer({ min: 0, max: NOW_MS_MAX }), uintEdge),
    session: fc.option(
      fc.record(
        {
          clientId: fc.oneof(ascii, anyText),
          seq: fc.oneof(fc.nat(), uintEdge),
          protectMs: fc.integer({ min: SESSION_PROTECT_MS_MIN, max: SESSION_PROTECT_MS_MAX }),
        },
        { requiredKeys: ['clientId', 'seq'] },
      ),
      { nil: undefined },
    ),
    type,
    cache: fc.oneof(ascii, longAscii),
    key: fc.oneof(ascii, anyText),
    value: bytes,
    ttlMs: fc.option(fc.oneof(fc.integer({ min: 1, max: DURATION_MS_MAX }), uintEdge), { nil: undefined }),
  })
  .map((v) => {
    const keyed = { type: v.type, cache: v.cache, key: v.key };
    const command = ['put', 'replace', 'putIfAbsent'].includes(v.type)
      ? v.ttlMs === undefined
        ? { ...keyed, value: v.value }
        : { ...keyed, value: v.value, ttlMs: v.ttlMs }
      : keyed;
    return v.session === undefined
      ? { nowMs: v.nowMs, command }
      : { nowMs: v.nowMs, session: v.session, command };
  });

describe('the fast command writer', () => {
  test('writes the generic bytes and envelope for every envelope it takes; the rest fails as before', () => {
    taken = 0;
    fc.assert(fc.property(nearEnvelope, agrees), { seed: SEED, numRuns: 3000 });
    fc.assert(fc.property(commonEnvelope, agrees), { seed: SEED, numRuns: 3000 });
    assert.ok(taken > 400, `the fast writer took ${taken} envelopes`);
  });

  test('takes what the cluster proposes: puts with and without a TTL or session, deletes, takes', () => {
    const value = new Uint8Array([1, 2, 3]);
    const session = { clientId: 'client-7f3a', seq: 12 };
    const proposed: CacheCommandEnvelope[] = [
      {
        nowMs: Date.now(),
        session,
        command: { type: 'put', cache: 'sessions', key: 'user:1', value, ttlMs: 60_000 },
      },
      { nowMs: Date.now(), command: { type: 'put', cache: 'sessions', key: 'user:1', value } },
      { nowMs: Date.now(), session, command: { type: 'putIfAbsent', cache: 'idem', key: 'k', value } },
      { nowMs: Date.now(), session, command: { type: 'delete', cache: 'sessions', key: 'user:1' } },
      { nowMs: Date.now(), session, command: { type: 'getRemove', cache: 'tokens', key: 't' } },
      {
        nowMs: Date.now(),
        session: { ...session, protectMs: 300_000 },
        command: { type: 'put', cache: 'sessions', key: 'user:1', value },
      },
    ];
    for (const e of proposed) {
      assert.notEqual(writeCommonEnvelope(e, BOUNDS), null, JSON.stringify(e.command.type));
      agrees(e);
    }
  });

  test('leaves the rest to the generic path: other commands, non-ASCII text, buffers, odd objects', () => {
    const value = new Uint8Array([1]);
    const others: unknown[] = [
      { nowMs: 1, command: { type: 'clear', cache: 'c' } },
      { nowMs: 1, command: { type: 'put', cache: 'c', key: 'schlüssel', value } },
      { nowMs: 1, command: { type: 'put', cache: 'c', key: 'k', value: Buffer.from([1]) } },
      { nowMs: 1, command: { type: 'put', cache: 'c', key: 'k', value, ttlMs: undefined } },
      { nowMs: 1, session: undefined, command: { type: 'get', cache: 'c', key: 'k' } },
      Object.assign(Object.create(null), { nowMs: 1, command: { type: 'get', cache: 'c', key: 'k' } }),
      { nowMs: 2 ** 32 + 0.5, command: { type: 'get', cache: 'c', key: 'k' } },
    ];
    for (const e of others) {
      assert.equal(writeCommonEnvelope(e as CacheCommandEnvelope, BOUNDS), null);
      agrees(e);
    }
  });
});
