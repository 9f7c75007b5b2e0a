/**
 * The protection a node stamps into a write's session (lib/client-session.ts): the write's retry
 * horizon plus a margin, within the node's session_protect_ms.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  SESSION_PROTECT_MARGIN_MS,
  SESSION_PROTECT_MS_MIN,
  sessionProtectMs,
} from '../../src/lib/client-session.js';

describe('sessionProtectMs', () => {
  test("a write's deadline plus the margin, at most the node's cap", () => {
    assert.equal(sessionProtectMs(10_000, 300_000), 10_000 + SESSION_PROTECT_MARGIN_MS);
    assert.equal(sessionProtectMs(10_000.4, 300_000), 10_001 + SESSION_PROTECT_MARGIN_MS, 'rounded up');
    assert.equal(sessionProtectMs(600_000, 300_000), 300_000, 'a client that retries longer is capped');
  });

  test('a write without a deadline (a client that did not say) is protected for the whole cap', () => {
    assert.equal(sessionProtectMs(Number.POSITIVE_INFINITY, 120_000), 120_000);
    assert.equal(sessionProtectMs(Number.NaN, 120_000), 120_000);
  });

  test('never below the smallest protection a command may carry', () => {
    assert.equal(sessionProtectMs(0, SESSION_PROTECT_MS_MIN), SESSION_PROTECT_MS_MIN);
    assert.equal(sessionProtectMs(-5, 1000), 1000);
  });
});
