/**
 * The cache command codec: every command round-trips; untrusted bytes are a typed
 * HQL_MALFORMED_COMMAND (never another exception), both from the decoder and when applied.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import {
  CACHE_COMMAND_FORMAT_VERSION,
  type CacheCommand,
  type CacheCommandEnvelope,
  decodeCacheCommand,
  encodeCacheCommand,
} from '../../src/sm/cache/command.js';
import { CacheError } from '../../src/sm/cache/errors.js';
import { bytes, Harness, T0 } from './cache-helpers.js';

const SEED = 0x5eed_cac4;

function rawCommand(value: unknown): Uint8Array {
  const packed = new Packr({ useRecords: false }).pack(value);
  return new Uint8Array([CACHE_COMMAND_FORMAT_VERSION, ...packed]);
}

function isMalformed(e: unknown): boolean {
  return e instanceof CacheError && e.code === 'HQL_MALFORMED_COMMAND' && !e.retryable;
}

const ALL: CacheCommand[] = [
  { type: 'put', cache: 'c', key: 'k', value: bytes('v') },
  { type: 'put', cache: 'c', key: 'k', value: new Uint8Array(0), ttlMs: 1 },
  { type: 'delete', cache: 'c', key: 'k' },
  { type: 'clear', cache: 'c' },
  { type: 'clearAll', counters: true },
  { type: 'get', cache: 'c', key: '' },
  { type: 'getRemove', cache: 'c', key: 'k' },
  { type: 'replace', cache: 'c', key: 'k', value: bytes('v'), ttlMs: 60_000 },
  { type: 'putIfAbsent', cache: 'c', key: 'k', value: bytes('v') },
  { type: 'expire' },
  { type: 'counterAdd', counter: 'n', key: 'k', delta: -(2n ** 63n) },
  { type: 'counterSet', counter: 'n', key: 'k', value: 2n ** 63n - 1n },
  { type: 'counterGet', counter: 'n', key: 'k' },
  { type: 'counterDelete', counter: 'n', key: 'k' },
  { type: 'counterClear', counter: 'n' },
  { type: 'notify', channel: 'ch', payload: bytes('p') },
  { type: 'lockAcquire', key: 'l', holderId: 'h', leaseMs: 10_000 },
  { type: 'lockAcquire', key: 'l', holderId: 'h', leaseMs: 1, waitMs: 0 },
  { type: 'lockRenew', key: 'l', token: 7 },
  { type: 'lockRenew', key: 'l', token: 7, leaseMs: 5 },
  { type: 'lockRelease', key: 'l', token: 7 },
  { type: 'lockCancel', key: 'l', holderId: 'h' },
  { type: 'lockAcquire', key: 'l', holderId: 'h', leaseMs: 10_000, waitMs: 5, waitLeaseMs: 6000 },
  { type: 'lockWaitRenew', waitLeaseMs: 6000, keys: ['l', 'm'], holderIds: ['h', 'i'] },
  {
    type: 'lockWaitRenew',
    waitLeaseMs: 1,
    keys: Array.from({ length: 1024 }, (_, i) => `k${i}`),
    holderIds: Array.from({ length: 1024 }, () => 'h'),
  },
];

describe('cache command codec', () => {
  test('every command type round-trips, with and without a session', () => {
    for (const command of ALL) {
      const plain: CacheCommandEnvelope = { nowMs: T0, command };
      assert.deepEqual(decodeCacheCommand(encodeCacheCommand(plain)), plain);
      const withSession: CacheCommandEnvelope = { nowMs: T0, session: { clientId: 'c1', seq: 3 }, command };
      assert.deepEqual(decodeCacheCommand(encodeCacheCommand(withSession)), withSession);
    }
  });

  test('small counter values sent as msgpack integers by a foreign client decode as bigint', () => {
    const d = decodeCacheCommand(
      rawCommand({ nowMs: T0, command: { type: 'counterAdd', counter: 'n', key: 'k', delta: 5 } }),
    );
    assert.deepEqual(d.command, { type: 'counterAdd', counter: 'n', key: 'k', delta: 5n });
  });

  test('invalid commands are refused with HQL_MALFORMED_COMMAND, when encoding and decoding', () => {
    const bad: unknown[] = [
      { nowMs: -1, command: { type: 'expire' } },
      { nowMs: 1.5, command: { type: 'expire' } },
      { nowMs: T0 },
      { nowMs: T0, command: { type: 'nope' } },
      { nowMs: T0, command: { type: 'expire', extra: 1 } },
      { nowMs: T0, command: { type: 'put', cache: 'c', key: 'k', value: 'not bytes' } },
      { nowMs: T0, command: { type: 'put', cache: 'c', key: 'k', value: bytes('v'), ttlMs: 0 } },
      { nowMs: T0, command: { type: 'put', cache: 1, key: 'k', value: bytes('v') } },
      { nowMs: T0, command: { type: 'counterAdd', counter: 'n', key: 'k', delta: 2n ** 63n } },
      { nowMs: T0, command: { type: 'counterAdd', counter: 'n', key: 'k', delta: 0.5 } },
      { nowMs: T0, command: { type: 'lockAcquire', key: 'l', holderId: '', leaseMs: 1 } },
      { nowMs: T0, command: { type: 'lockAcquire', key: 'l', holderId: 'h', leaseMs: 0 } },
      { nowMs: T0, command: { type: 'lockRelease', key: 'l', token: 0 } },
      { nowMs: T0, command: { type: 'lockAcquire', key: 'l', holderId: 'h', leaseMs: 1, waitLeaseMs: 0 } },
      { nowMs: T0, command: { type: 'lockWaitRenew', waitLeaseMs: 1, keys: [], holderIds: [] } },
      { nowMs: T0, command: { type: 'lockWaitRenew', waitLeaseMs: 1, keys: ['l'], holderIds: [] } },
      { nowMs: T0, command: { type: 'lockWaitRenew', waitLeaseMs: 1, keys: ['l'], holderIds: [7] } },
      { nowMs: T0, command: { type: 'lockWaitRenew', waitLeaseMs: 1, keys: 'l', holderIds: 'h' } },
      { nowMs: T0, command: { type: 'lockWaitRenew', waitLeaseMs: 0, keys: ['l'], holderIds: ['h'] } },
      { nowMs: T0, command: { type: 'lockWaitRenew', keys: ['l'], holderIds: ['h'] } },
      {
        nowMs: T0,
        command: {
          type: 'lockWaitRenew',
          waitLeaseMs: 1,
          keys: Array.from({ length: 1025 }, () => 'l'),
          holderIds: Array.from({ length: 1025 }, () => 'h'),
        },
      },
      { nowMs: T0, command: { type: 'clearAll', counters: 1 } },
      { nowMs: T0, session: { clientId: '', seq: 1 }, command: { type: 'expire' } },
      { nowMs: T0, session: { clientId: 'c', seq: -1 }, command: { type: 'expire' } },
      [1, 2, 3],
      null,
    ];
    for (const b of bad) {
      assert.throws(
        () => decodeCacheCommand(rawCommand(b)),
        isMalformed,
        JSON.stringify(b, (_, v) => String(v)),
      );
      assert.throws(() => encodeCacheCommand(b as CacheCommandEnvelope), isMalformed);
    }
    assert.throws(() => decodeCacheCommand(new Uint8Array([2, 0x80])), isMalformed, 'unknown version');
    assert.throws(() => decodeCacheCommand(new Uint8Array([1])), isMalformed, 'too short');
    assert.throws(() => decodeCacheCommand(new Uint8Array([1, 0xc1])), isMalformed, 'invalid msgpack');
  });

  test('a string field past the codec bound is HQL_CACHE_TOO_LARGE, as a key past cache_key_bytes_max is', () => {
    const huge = 'k'.repeat(2_000_000);
    const tooLarge = (e: unknown) =>
      e instanceof CacheError && e.code === 'HQL_CACHE_TOO_LARGE' && !e.retryable;
    for (const command of [
      { type: 'put', cache: 'c', key: huge, value: bytes('v') },
      { type: 'put', cache: huge, key: 'k', value: bytes('v') },
      { type: 'notify', channel: huge, payload: bytes('p') },
      { type: 'lockAcquire', key: huge, holderId: 'h', leaseMs: 1000 },
    ]) {
      const envelope = { nowMs: T0, command } as unknown as CacheCommandEnvelope;
      assert.throws(() => encodeCacheCommand(envelope), tooLarge, command.type);
      assert.throws(() => decodeCacheCommand(rawCommand(envelope)), tooLarge, command.type);
    }
  });

  test('fuzz: any bytes decode or fail with HQL_MALFORMED_COMMAND, and applying them never throws', () => {
    const h = new Harness();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (raw, versioned) => {
        const data = versioned ? new Uint8Array([CACHE_COMMAND_FORMAT_VERSION, ...raw]) : raw;
        try {
          decodeCacheCommand(data);
        } catch (e) {
          assert.ok(isMalformed(e), String(e));
        }
        const r = h.raw(data);
        assert.ok(r.ok || typeof r.error.code === 'string');
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  test('fuzz: mutated valid commands decode to valid commands or fail with HQL_MALFORMED_COMMAND', () => {
    const h = new Harness();
    const encoded = ALL.map((command) =>
      encodeCacheCommand({ nowMs: T0, session: { clientId: 'c', seq: 1 }, command }),
    );
    fc.assert(
      fc.property(
        fc.nat(encoded.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (which, flips) => {
          const data = new Uint8Array(encoded[which]!);
          for (const [at, value] of flips) data[at % data.length] = value;
          try {
            const d = decodeCacheCommand(data);
            // What decodes is a valid command: it encodes again.
            encodeCacheCommand(d);
          } catch (e) {
            assert.ok(isMalformed(e), String(e));
          }
          h.raw(data);
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });

  test('fuzz: arbitrary msgpack maps in the command position fail with HQL_MALFORMED_COMMAND or are valid', () => {
    const value = fc.oneof(
      fc.string({ maxLength: 4 }),
      fc.integer(),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 4 }),
    );
    const types = fc.constantFrom(...new Set(ALL.map((c) => c.type)), 'x');
    const fields = fc.dictionary(
      fc.constantFrom(
        'cache',
        'key',
        'value',
        'ttlMs',
        'counter',
        'delta',
        'channel',
        'payload',
        'holderId',
        'leaseMs',
        'waitMs',
        'token',
        'counters',
        '__proto__',
      ),
      value,
    );
    fc.assert(
      fc.property(types, fields, fc.option(value), (type, f, nowMs) => {
        try {
          decodeCacheCommand(rawCommand({ nowMs: nowMs ?? T0, command: { ...f, type } }));
        } catch (e) {
          assert.ok(isMalformed(e), String(e));
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
