import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { LogIndex, Term } from '../../src/raft/types.js';
import type { ApplyEntry } from '../../src/sm/sql/state-machine.js';
import { packEntries, unpackEntries } from '../../src/sm/sql/worker-protocol.js';

const entryArb: fc.Arbitrary<ApplyEntry> = fc
  .record({
    index: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    term: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    kind: fc.constantFrom('noop', 'command', 'config'),
    bytes: fc.uint8Array({ maxLength: 300 }),
  })
  .map(({ index, term, kind, bytes }) => {
    const base = { index: index as LogIndex, term: term as Term };
    if (kind === 'command') return { ...base, data: bytes };
    if (kind === 'config') return { ...base, data: null, membership: bytes };
    return { ...base, data: null };
  });

describe('worker protocol: packed apply batches', () => {
  test('entries survive packing: index, term, kind and bytes', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 50 }), (entries) => {
        const back = unpackEntries(packEntries(entries));
        assert.equal(back.length, entries.length);
        for (let i = 0; i < entries.length; i++) {
          const [a, b] = [entries[i]!, back[i]!];
          assert.equal(b.index, a.index);
          assert.equal(b.term, a.term);
          assert.deepEqual(b.data === null ? null : [...b.data], a.data === null ? null : [...a.data]);
          assert.deepEqual(
            b.membership === undefined ? undefined : [...b.membership],
            a.membership === undefined ? undefined : [...a.membership],
          );
        }
      }),
      { numRuns: 200 },
    );
  });
});
