/**
 * A snapshot received from the leader is written chunk by chunk into the snapshot folder; a
 * stream that breaks off (the sender gone, the disk full) must leave no partial file, or every
 * retry of the sender leaves one more partial copy of the database until the next start.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { writeChunks } from '../../src/node/hiqlite-node.js';
import { withTempDir } from '../support/temp-dir.js';

async function* chunks(n: number, failAfter?: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < n; i++) {
    if (i === failAfter) throw new Error('connection lost');
    yield new Uint8Array(1024).fill(i);
  }
}

describe('writeChunks (a received snapshot)', () => {
  let dir = '';
  withTempDir('hql-chunks-', (d) => {
    dir = d;
  });

  test('a whole stream is written', async () => {
    const path = join(dir, 'whole.tmp');
    await writeChunks(path, chunks(4));
    const bytes = readFileSync(path);
    assert.equal(bytes.length, 4096);
    assert.equal(bytes[3 * 1024], 3);
  });

  test('a stream that breaks off leaves no file and rejects with its error', async () => {
    const path = join(dir, 'broken.tmp');
    await assert.rejects(writeChunks(path, chunks(4, 2)), /connection lost/);
    assert.equal(existsSync(path), false);
  });
});
