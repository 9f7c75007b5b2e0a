import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  decodeEntry,
  EntryDecodeError,
  encodedEntryBytes,
  encodeEntry,
  encodeEntryInto,
} from '../../src/protocol/entry-codec.js';
import type { Entry, LogIndex, NodeId, Term } from '../../src/raft/types.js';

const u53 = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat());
const nodeIdArb = fc.nat({ max: 0xffffffff }).map((n) => n as NodeId);

// fc.record builds null-prototype objects; spread them into plain ones to compare with deepEqual.
const plain = <T extends object>(o: T): T => ({ ...o });

const entryArb: fc.Arbitrary<Entry> = fc
  .oneof(
    fc.record({
      kind: fc.constant('command' as const),
      index: u53.map((n) => n as LogIndex),
      term: u53.map((n) => n as Term),
      data: fc.uint8Array({ maxLength: 300 }),
    }),
    fc.record({
      kind: fc.constant('noop' as const),
      index: u53.map((n) => n as LogIndex),
      term: u53.map((n) => n as Term),
    }),
    fc.record({
      kind: fc.constant('config' as const),
      index: u53.map((n) => n as LogIndex),
      term: u53.map((n) => n as Term),
      membership: fc
        .record({
          voters: fc.array(nodeIdArb, { maxLength: 9 }),
          learners: fc.array(nodeIdArb, { maxLength: 5 }),
        })
        .map(plain),
    }),
  )
  .map(plain);

function decodeOrTypedError(bytes: Uint8Array): Entry | EntryDecodeError {
  try {
    return decodeEntry(bytes);
  } catch (err) {
    assert.ok(err instanceof EntryDecodeError, `expected EntryDecodeError, got ${String(err)}`);
    assert.equal(err.code, 'HQL_CORRUPTION');
    return err;
  }
}

describe('entry codec', () => {
  test('every entry round-trips, and its size is known before encoding', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        const bytes = encodeEntry(e);
        assert.equal(bytes.byteLength, encodedEntryBytes(e));
        assert.deepEqual(decodeEntry(bytes), e);
      }),
      { numRuns: 500 },
    );
  });

  test('encodeEntryInto writes at an offset inside a larger buffer', () => {
    const e: Entry = {
      kind: 'command',
      index: 7 as LogIndex,
      term: 3 as Term,
      data: new Uint8Array([1, 2, 3]),
    };
    const target = new Uint8Array(encodedEntryBytes(e) + 10);
    assert.equal(encodeEntryInto(e, target, 5), encodedEntryBytes(e));
    assert.deepEqual(decodeEntry(target.subarray(5, 5 + encodedEntryBytes(e))), e);
  });

  test('the layout is stable (a noop at index 2^32 + 1, term 5)', () => {
    const bytes = encodeEntry({ kind: 'noop', index: (2 ** 32 + 1) as LogIndex, term: 5 as Term });
    assert.deepEqual([...bytes], [2, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
  });

  test('decoded command data is a copy that does not alias the input', () => {
    const e: Entry = { kind: 'command', index: 1 as LogIndex, term: 1 as Term, data: new Uint8Array([9, 9]) };
    const bytes = encodeEntry(e);
    const decoded = decodeEntry(bytes);
    bytes.fill(0);
    assert.deepEqual(decoded, e);
  });

  test('every truncation of a valid encoding is rejected with a typed error', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        const bytes = encodeEntry(e);
        for (let len = 0; len < bytes.byteLength; len++) {
          assert.ok(decodeOrTypedError(bytes.subarray(0, len)) instanceof EntryDecodeError);
        }
      }),
      { numRuns: 100 },
    );
  });

  test('trailing bytes are rejected', () => {
    const bytes = encodeEntry({ kind: 'noop', index: 1 as LogIndex, term: 1 as Term });
    const longer = new Uint8Array(bytes.byteLength + 1);
    longer.set(bytes);
    assert.ok(decodeOrTypedError(longer) instanceof EntryDecodeError);
  });

  test('unknown kinds, terms and indices beyond 2^53, hostile counts are rejected', () => {
    const noop = encodeEntry({ kind: 'noop', index: 1 as LogIndex, term: 1 as Term });
    const badKind = noop.slice();
    badKind[0] = 9;
    assert.match(String(decodeOrTypedError(badKind)), /unknown entry kind 9/);
    const bigTerm = noop.slice();
    bigTerm[8] = 0x00;
    bigTerm[7] = 0x20; // term high word = 0x00200000: 2^53
    assert.match(String(decodeOrTypedError(bigTerm)), /term is not below 2\^53/);
    const config = encodeEntry({
      kind: 'config',
      index: 1 as LogIndex,
      term: 1 as Term,
      membership: { voters: [1 as NodeId], learners: [] },
    });
    const hostile = config.slice();
    new DataView(hostile.buffer).setUint32(17, 0xffffffff, true);
    assert.match(String(decodeOrTypedError(hostile)), /voters count 4294967295 overruns/);
  });

  test('arbitrary bytes either decode to an entry that re-encodes identically or fail typed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const r = decodeOrTypedError(bytes);
        if (!(r instanceof EntryDecodeError)) assert.deepEqual(encodeEntry(r), Uint8Array.from(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  test('mutated valid encodings never crash the decoder', () => {
    fc.assert(
      fc.property(entryArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (e, at, value) => {
        const bytes = encodeEntry(e).slice();
        bytes[at % bytes.byteLength] = value;
        decodeOrTypedError(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
