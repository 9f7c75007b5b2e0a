/**
 * The ttl check of the fault suite (cache-checks.ts, checkTtls): it must find a TTL that ended
 * early or late in real time, allow what a read's span cannot tell, and pass a history in time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkTtls } from './cache-checks.js';
import type { TtlRound } from './cache-history.js';

const MARGIN_MS = 1000;

function round(reads: TtlRound['reads'], ackAt: number | null = 20): TtlRound {
  return { key: 'k', value: 7, ttlMs: 4000, putAt: 0, ackAt, reads };
}

describe('checkTtls', () => {
  test('a value there before its TTL and gone after it passes', () => {
    const r = checkTtls(
      [
        round([
          { start: 100, end: 150, value: 7 },
          { start: 2900, end: 2950, value: 7 },
          { start: 5100, end: 5120, value: null },
        ]),
      ],
      MARGIN_MS,
    );
    assert.equal(r.ok, true, r.detail);
    assert.match(r.detail, /1 TTLs, 3 reads/);
  });

  test('gone before the TTL less the margin is early', () => {
    const r = checkTtls([round([{ start: 1000, end: 1040, value: null }])], MARGIN_MS);
    assert.equal(r.ok, false);
    assert.match(r.detail, /ended early/);
  });

  test('still there after the TTL plus the margin is late', () => {
    const r = checkTtls([round([{ start: 5100, end: 5130, value: 7 }])], MARGIN_MS);
    assert.equal(r.ok, false);
    assert.match(r.detail, /ended late/);
  });

  test('a read whose span reaches into the margin proves nothing either way', () => {
    const r = checkTtls(
      [
        round([
          { start: 2500, end: 3100, value: null }, // answered after TTL - margin: may be in it
          { start: 4900, end: 6000, value: 7 }, // sent before TTL + margin from the acknowledgement
        ]),
      ],
      MARGIN_MS,
    );
    assert.equal(r.ok, true, r.detail);
  });

  test('a value never put is found; an unacknowledged put is not judged', () => {
    assert.match(checkTtls([round([{ start: 100, end: 120, value: 8 }])], MARGIN_MS).detail, /never put/);
    assert.equal(checkTtls([round([{ start: 100, end: 120, value: null }], null)], MARGIN_MS).ok, true);
  });
});
