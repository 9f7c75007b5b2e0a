/**
 * A snapshot the leader streams is received into a temporary path of the group's snapshot store:
 * a file (SnapshotStore) or a blob (MemorySnapshotStore, `cache_storage_disk = false`). A stream
 * that breaks off (the sender gone, the disk full) must leave nothing behind, or every retry of
 * the sender leaves one more partial copy of the state machine until the next start.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemorySnapshotStore } from '../../src/node/memory-snapshot-store.js';
import { receiveSnapshot, SnapshotStore } from '../../src/node/snapshot-store.js';
import { withTempDir } from '../support/temp-dir.js';

async function* chunks(n: number, failAfter?: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < n; i++) {
    if (i === failAfter) throw new Error('connection lost');
    yield new Uint8Array(1024).fill(i);
  }
}

describe('receiveSnapshot', () => {
  let dir = '';
  withTempDir('hql-receive-snapshot-', (d) => {
    dir = d;
  });

  test('on disk: a whole stream is one file; a broken one leaves none and rejects with its error', async () => {
    const store = await SnapshotStore.open(join(dir, 'disk'));
    const path = await receiveSnapshot(store, chunks(4));
    const bytes = readFileSync(path);
    assert.equal(bytes.length, 4096);
    assert.equal(bytes[3 * 1024], 3);
    await store.discard(path);
    await assert.rejects(receiveSnapshot(store, chunks(4, 2)), /connection lost/);
    assert.deepEqual(readdirSync(join(dir, 'disk')), []);
  });

  test('in memory: a broken stream leaves no bytes held', async () => {
    const store = new MemorySnapshotStore();
    const path = await receiveSnapshot(store, chunks(4));
    assert.equal(store.bytes(), 4096);
    await store.discard(path);
    await assert.rejects(receiveSnapshot(store, chunks(4, 2)), /connection lost/);
    assert.equal(store.bytes(), 0);
  });
});
