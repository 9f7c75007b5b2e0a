/**
 * A log that lost records it had synced (the newest segment cut short or zeroed while the node
 * was stopped, beyond what its database applied): the cut looks exactly like a crash's torn
 * tail, but the node may have acknowledged those entries. Found through the synced mark
 * (src/storage/synced-mark-file.ts): a member of a cluster discards its state and rejoins (it
 * must not vote from the shorter log); a node configured alone goes on with what it holds.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { type Logger, pino } from 'pino';
import { openGroupStorage } from '../../src/node/group-setup.js';
import type { LogIndex } from '../../src/raft/types.js';
import { openFileLogStore } from '../../src/storage/file-log-store.js';
import { readRecordAt, SEGMENT_HEADER_BYTES } from '../../src/storage/segment-format.js';
import { commands } from '../storage/log-store-conformance.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A group's directories whose log held 1..30 (synced, closed), then lost records 28..30. */
async function logThatLostSyncedRecords(): Promise<{ logsDir: string; snapshotsDir: string }> {
  const root = mkdtempSync(join(tmpdir(), 'hq-synced-lost-'));
  roots.push(root);
  const logsDir = join(root, 'logs');
  const snapshotsDir = join(root, 'snapshots');
  const { store } = await openFileLogStore(logsDir);
  await store.saveHardState({ term: 1 as never, vote: 1 as never, commit: 0 as LogIndex });
  await store.append(commands(1, 31, 1));
  await store.close();
  const segment = join(logsDir, readdirSync(logsDir).find((n) => n.endsWith('.seg'))!);
  const buf = readFileSync(segment);
  const offsets: number[] = [];
  for (
    let pos = SEGMENT_HEADER_BYTES, r = readRecordAt(buf, pos);
    r.type === 'record';
    r = readRecordAt(buf, pos)
  ) {
    offsets.push(pos);
    pos = r.next;
  }
  const fh = await open(segment, 'r+');
  await fh.write(Buffer.alloc(buf.length - offsets[27]!), 0, buf.length - offsets[27]!, offsets[27]!);
  await fh.close();
  return { logsDir, snapshotsDir };
}

/** openGroupStorage of the SQL group on `dirs`, its database applied to 25 (behind the cut). */
async function openSqlGroup(dirs: { logsDir: string; snapshotsDir: string }, othersConfigured: boolean) {
  const { logger, lines } = capturingLogger();
  const opened = await openGroupStorage({
    group: 'sql',
    ...dirs,
    entryBytesMax: 1 << 20,
    log: logger,
    appliedIndex: 25 as LogIndex, // the database behind the cut: lostLocalState alone sees nothing
    hasClusterId: true,
    othersConfigured,
  });
  return { ...opened, lines };
}

function capturingLogger(): { logger: Logger; lines: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream) as Logger, lines: () => text };
}

describe('a log that lost records it had synced', () => {
  test('a member of a cluster discards its state and rejoins: it does not vote from the shorter log', async () => {
    const { store, start, lines } = await openSqlGroup(await logThatLostSyncedRecords(), true);
    try {
      assert.match(start.discard ?? '', /ends at index 27, but entries through 30 were durable in it/);
      assert.equal(start.fresh, true);
      assert.equal(store.lastIndex(), 0, 'the log was discarded');
      assert.match(lines(), /discarding the local state of the group and rejoining it/);
    } finally {
      await store.close();
    }
  });

  test('a node configured alone goes on with what its log holds, warning', async () => {
    const dirs = await logThatLostSyncedRecords();
    const { store, start, lines } = await openSqlGroup(dirs, false);
    try {
      assert.equal(start.discard, null);
      assert.equal(start.fresh, false);
      assert.equal(store.lastIndex(), 27);
      assert.match(lines(), /synced entries of the Raft log were lost/);
      // Goes on: its next appends are marked from what it holds, not from the lost end.
      await store.append(commands(28, 29, 2));
    } finally {
      await store.close();
    }
    const reopened = await openFileLogStore(dirs.logsDir);
    assert.equal(reopened.report.syncedMark, 28);
    await reopened.store.close();
  });
});
