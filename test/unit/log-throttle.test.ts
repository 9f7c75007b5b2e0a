/** LogThrottle: one line per interval for each kind, the next one counting those left out. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogThrottle } from '../../src/lib/log-throttle.js';

test('one line per interval and kind; the next says how many were left out', () => {
  let now = 0;
  const t = new LogThrottle(10_000, () => now);
  assert.equal(t.admit('handshake'), 0);
  for (let i = 0; i < 500; i++) {
    now += 10;
    assert.equal(t.admit('handshake'), null);
  }
  assert.equal(t.admit('login'), 0, 'another kind has its own interval');
  now = 10_000;
  assert.equal(t.admit('handshake'), 500);
  assert.equal(t.admit('handshake'), null);
  now = 20_000;
  assert.equal(t.admit('handshake'), 1);
});
