/**
 * `<data_dir>/joining` (src/node/joining-marker.ts): a node joining the cluster abstains from
 * votes and elections until it has applied the entry that added it, also across restarts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  abstains,
  clearJoining,
  JOINING_FILE,
  readJoining,
  writeJoining,
} from '../../src/node/joining-marker.js';
import type { LogIndex } from '../../src/raft/types.js';

describe('the joining marker', () => {
  test('survives a restart with the index of the entry that added the node, and is cleared', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hql-joining-'));
    try {
      assert.equal(await readJoining(dir), null);
      await writeJoining(dir, { joinedAt: null });
      assert.deepEqual(await readJoining(dir), { joinedAt: null });
      await writeJoining(dir, { joinedAt: 42 as LogIndex });
      assert.deepEqual(await readJoining(dir), { joinedAt: 42 });
      await clearJoining(dir);
      assert.equal(await readJoining(dir), null);
      // A damaged file is a join of unknown index: the node joins again.
      await writeFile(join(dir, JOINING_FILE), 'garbage');
      assert.deepEqual(await readJoining(dir), { joinedAt: null });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a joining node abstains until it has applied the entry that added it', () => {
    assert.equal(abstains(null, 0 as LogIndex), false);
    assert.equal(abstains({ joinedAt: null }, 100 as LogIndex), true);
    assert.equal(abstains({ joinedAt: 42 as LogIndex }, 41 as LogIndex), true);
    assert.equal(abstains({ joinedAt: 42 as LogIndex }, 42 as LogIndex), false);
  });
});
