/**
 * kill -9 at random moments during heavy writes, then restart: nothing acknowledged is lost,
 * nothing unwritten appears, SQLite passes its integrity check. The long run (200+ cycles) is
 * `node --import tsx test/cluster/crash-loop.ts --cycles 200`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crashLoop } from './crash-loop.js';

describe('crash loop on real processes', () => {
  test('a single node killed during 16 concurrent writers keeps every acknowledged write (4 cycles)', async () => {
    const r = await crashLoop({ cycles: 4, nodes: 1, seed: 7 });
    assert.ok(r.acknowledged > 0, 'writes were acknowledged');
    assert.equal(r.lost, 0);
    assert.equal(r.unexpected, 0);
  });

  test('the leader of three killed during writes: every node keeps every acknowledged write (2 cycles)', async () => {
    const r = await crashLoop({ cycles: 2, nodes: 3, seed: 11 });
    assert.ok(r.acknowledged > 0, 'writes were acknowledged');
    assert.equal(r.lost, 0);
    assert.equal(r.unexpected, 0);
  });
});
