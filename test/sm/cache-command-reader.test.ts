/**
 * The fast reader of common cache commands (src/sm/cache/command-reader.ts) agrees with the
 * generic decoder (msgpackr, then validation) on every input it accepts, and it accepts what the
 * cluster actually replicates (so the fast path is the one taken).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { SESSION_PROTECT_MS_MAX, SESSION_PROTECT_MS_MIN } from '../../src/lib/client-session.js';
import {
  CACHE_COMMAND_FORMAT_VERSION,
  type CacheCommandEnvelope,
  DURATION_MS_MAX,
  decodeCacheCommand,
  decodeCacheCommandGeneric,
  encodeCacheCommand,
  NOW_MS_MAX,
} from '../../src/sm/cache/command.js';
import { readCommonEnvelope } from '../../src/sm/cache/command-reader.js';
import { commandTypeNearCommon as type } from './cache-helpers.js';

const SEED = 0x5eed_12ad;

/** The fast reader as decodeCacheCommand calls it (after the version byte, when it is 1). */
function fast(bytes: Uint8Array): CacheCommandEnvelope | undefined {
  if (bytes.length < 2 || bytes[0] !== CACHE_COMMAND_FORMAT_VERSION) return undefined;
  return readCommonEnvelope(bytes, 1, NOW_MS_MAX, DURATION_MS_MAX);
}

/** decodeCacheCommand's value, or its error's code and message. */
function decoded(decode: (b: Uint8Array) => CacheCommandEnvelope, bytes: Uint8Array): unknown {
  try {
    return decode(bytes);
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
}

function generic(bytes: Uint8Array): CacheCommandEnvelope | 'error' {
  try {
    return decodeCacheCommandGeneric(bytes);
  } catch {
    return 'error';
  }
}

function raw(value: unknown, variableMapSize: boolean): Uint8Array {
  const packed = new Packr({ useRecords: false, variableMapSize }).pack(value);
  return new Uint8Array([CACHE_COMMAND_FORMAT_VERSION, ...packed]);
}

/** Whatever the fast reader returns is what the generic decoder returns, value copies included. */
function agrees(bytes: Uint8Array): boolean {
  assert.deepStrictEqual(decoded(decodeCacheCommand, bytes), decoded(decodeCacheCommandGeneric, bytes));
  const f = fast(bytes);
  if (f === undefined) return true;
  const g = generic(bytes);
  assert.notEqual(g, 'error', 'the fast reader accepted what the generic decoder refuses');
  assert.deepStrictEqual(f, g);
  const c = f.command as { value?: Uint8Array };
  if (c.value !== undefined) {
    assert.equal(c.value.constructor, Uint8Array, 'a plain Uint8Array');
    assert.notEqual(c.value.buffer, bytes.buffer, 'a copy, not a view of the entry');
  }
  return true;
}

const ascii = fc.string({ maxLength: 40 });
const anyText = fc.oneof(ascii, fc.string({ unit: 'binary', maxLength: 8 }), fc.constant('x'.repeat(5000)));
const int = fc.oneof(
  fc.integer({ min: -200, max: 70_000 }),
  fc.constantFrom(0, 2 ** 32, 2 ** 53, NOW_MS_MAX, NOW_MS_MAX + 1, DURATION_MS_MAX + 1, -0, 1.5, Number.NaN),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);
const anyValue = fc.oneof(
  int,
  anyText,
  fc.uint8Array({ maxLength: 300 }),
  fc.constantFrom(null, true, false),
  fc.constant([1, 2]),
);

/** Envelopes near the common shapes: optional, missing, extra and wrongly typed fields. */
const nearEnvelope = fc.record(
  {
    nowMs: fc.oneof(int, fc.integer({ min: 0, max: NOW_MS_MAX }), anyValue),
    session: fc.oneof(
      fc.record(
        {
          clientId: fc.oneof(ascii, anyValue),
          seq: fc.oneof(fc.nat(), int),
          protectMs: fc.oneof(fc.integer({ min: SESSION_PROTECT_MS_MIN, max: SESSION_PROTECT_MS_MAX }), int),
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    command: fc.record(
      {
        type,
        cache: fc.oneof(ascii, anyValue),
        key: fc.oneof(ascii, anyText, anyValue),
        value: fc.oneof(fc.uint8Array({ maxLength: 300 }), anyValue),
        ttlMs: fc.oneof(fc.integer({ min: 1, max: DURATION_MS_MAX }), int),
        extra: anyValue,
      },
      { requiredKeys: ['type'] },
    ),
    other: anyValue,
  },
  { requiredKeys: [] },
);

describe('the fast command reader', () => {
  test('agrees with the generic decoder on envelopes near the common shapes', () => {
    fc.assert(
      fc.property(nearEnvelope, fc.boolean(), (e, variable) => agrees(raw(e, variable))),
      { seed: SEED, numRuns: 3000 },
    );
  });

  test('agrees with the generic decoder on damaged bytes of valid commands', () => {
    const valid = fc.record({
      nowMs: fc.integer({ min: 0, max: NOW_MS_MAX }),
      clientId: fc.string({ minLength: 1, maxLength: 30 }),
      seq: fc.nat(),
      key: ascii,
      value: fc.uint8Array({ maxLength: 70_000 }),
      ttlMs: fc.option(fc.integer({ min: 1, max: DURATION_MS_MAX }), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        valid,
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }),
        fc.nat(),
        (v, flips, cut) => {
          const bytes = encodeCacheCommand({
            nowMs: v.nowMs,
            session: { clientId: v.clientId, seq: v.seq },
            command:
              v.ttlMs === undefined
                ? { type: 'put', cache: 'c', key: v.key, value: v.value }
                : { type: 'put', cache: 'c', key: v.key, value: v.value, ttlMs: v.ttlMs },
          });
          agrees(bytes);
          const damaged = bytes.slice(0, bytes.length - (cut % 3));
          for (const [at, b] of flips) damaged[at % damaged.length] = b;
          return agrees(damaged);
        },
      ),
      { seed: SEED, numRuns: 1500 },
    );
  });

  test("strings read again are the same values, whatever shares a slot of the reader's string table", () => {
    const keys = Array.from({ length: 20_000 }, (_, i) =>
      i % 3 === 0 ? `k${i}` : `key-of-some-length-${i}-${'x'.repeat(i % 50)}`,
    );
    for (let round = 0; round < 2; round++) {
      for (const key of keys) {
        const e = fast(
          encodeCacheCommand({ nowMs: 1, command: { type: 'get', cache: key.slice(0, 9), key } }),
        );
        assert.deepStrictEqual(e?.command, { type: 'get', cache: key.slice(0, 9), key });
      }
    }
  });

  test('reads what the node replicates: every common command with ASCII names, with and without a session', () => {
    const value = new Uint8Array([1, 2, 3]);
    for (const command of [
      { type: 'put', cache: 'sessions', key: 'user:1', value },
      { type: 'put', cache: 'sessions', key: 'k', value: new Uint8Array(70_000), ttlMs: 60_000 },
      { type: 'replace', cache: 'c', key: 'k', value, ttlMs: 1 },
      { type: 'putIfAbsent', cache: 'c', key: '', value },
      { type: 'delete', cache: 'c', key: 'k' },
      { type: 'get', cache: 'c', key: 'k' },
      { type: 'getRemove', cache: 'c', key: 'x'.repeat(300) },
    ] as const) {
      for (const session of [
        undefined,
        { clientId: 'c1-0123456789abcdef-7', seq: 2 ** 40 },
        { clientId: 'c1-0123456789abcdef-7', seq: 3, protectMs: 300_000 },
      ]) {
        for (const nowMs of [0, 1_700_000_000_000, NOW_MS_MAX]) {
          const e: CacheCommandEnvelope =
            session === undefined ? { nowMs, command } : { nowMs, session, command };
          const bytes = encodeCacheCommand(e);
          assert.deepStrictEqual(fast(bytes), e);
          assert.deepStrictEqual(decodeCacheCommand(bytes), e);
          // A Buffer (as read from a socket or file): still a plain copy of the value.
          assert.ok(agrees(Buffer.from(bytes)));
        }
      }
    }
  });
});
