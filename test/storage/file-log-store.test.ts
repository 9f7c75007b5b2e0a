import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import {
  copyFile,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import { HiqliteError } from '../../src/lib/errors.js';
import { Prng } from '../../src/lib/prng.js';
import { syncedRecordsLost } from '../../src/node/group-setup.js';
import type { Entry, LogIndex, Term } from '../../src/raft/types.js';
import { type FileLogStoreOptions, openFileLogStore } from '../../src/storage/file-log-store.js';
import { HARD_STATE_FILE } from '../../src/storage/hard-state-file.js';
import { LOG_META_FILE } from '../../src/storage/log-meta-file.js';
import {
  lastNonZeroByte,
  readRecordAt,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from '../../src/storage/segment-format.js';
import { LogCorruptionError } from '../../src/storage/storage-errors.js';
import { readSyncedMarkFile, SYNCED_MARK_FILE } from '../../src/storage/synced-mark-file.js';
import { crashCycle } from './crash-workload.js';
import { commands, logStoreConformance } from './log-store-conformance.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hiqlite-log-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function fileHarness(options: FileLogStoreOptions) {
  return async (limits: { entryBytesMax: number }) => {
    const dir = await tempDir();
    return {
      open: async () =>
        (await openFileLogStore(dir, { ...options, entryBytesMax: limits.entryBytesMax })).store,
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  };
}

// Tiny segments and no cache: every read goes to disk and most appends cross a segment.
logStoreConformance(
  'FileLogStore (4 KiB segments, no cache)',
  fileHarness({ segmentBytesMax: 4096, cacheBytesMax: 0 }),
);
// Roomy segments and cache: reads are served from memory.
logStoreConformance('FileLogStore (1 MiB segments, cached)', fileHarness({ segmentBytesMax: 1024 * 1024 }));

const idx = (n: number) => n as LogIndex;

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

/** Offsets of the records in a segment file, in order. */
async function recordOffsets(path: string): Promise<number[]> {
  const buf = await readFile(path);
  const offsets: number[] = [];
  let pos = SEGMENT_HEADER_BYTES;
  for (let r = readRecordAt(buf, pos); r.type === 'record'; r = readRecordAt(buf, pos)) {
    offsets.push(pos);
    pos = r.next;
  }
  offsets.push(pos); // the end of the records
  return offsets;
}

async function writeAt(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

async function flipByte(path: string, offset: number): Promise<void> {
  const buf = await readFile(path);
  await writeAt(path, offset, Uint8Array.of(buf[offset]! ^ 0x5a));
}

/** A directory holding entries [1, count] in one segment, closed. */
async function logWith(
  count: number,
  options: FileLogStoreOptions = {},
): Promise<{ dir: string; log: Entry[] }> {
  const dir = await tempDir();
  const log = commands(1, count + 1, 1, (i) => 40 + i);
  const { store } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024, ...options });
  await store.append(log);
  await store.close();
  return { dir, log };
}

/**
 * The descriptors of this process open for writing on a segment (`*.seg`) of `dir`, with their
 * open flags (Linux: /proc/self/fdinfo).
 */
async function segmentWriters(dir: string): Promise<{ file: string; flags: number }[]> {
  const out: { file: string; flags: number }[] = [];
  // The links name the real path (a temporary directory may sit behind a symlink).
  const real = await realpath(dir);
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (!target.startsWith(`${real}/`) || !target.endsWith('.seg')) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
    const flags = Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(info)?.[1] ?? '', 8);
    if ((flags & 3) !== constants.O_RDONLY) out.push({ file: target.slice(real.length + 1), flags });
  }
  return out;
}

describe('FileLogStore: durable writes', () => {
  test('appends go to the last segment through one descriptor opened with O_DSYNC: after open, roll-over, truncation and reopen', async () => {
    const dir = await tempDir();
    const expectOneSyncWriter = async (when: string) => {
      const writers = await segmentWriters(dir);
      assert.equal(
        writers.length,
        1,
        `${when}: one descriptor writes a segment (${JSON.stringify(writers)})`,
      );
      const w = writers[0]!;
      assert.equal(w.file, (await segments(dir)).at(-1), `${when}: it is the last segment`);
      assert.ok(
        (w.flags & constants.O_DSYNC) !== 0,
        `${when}: opened with O_DSYNC (flags ${w.flags.toString(8)})`,
      );
    };
    let { store } = await openFileLogStore(dir, { segmentBytesMax: 4096, cacheBytesMax: 0 });
    await store.append(commands(1, 4, 1, () => 100));
    await expectOneSyncWriter('first segment');
    await store.append(commands(4, 80, 1, () => 100));
    assert.ok((await segments(dir)).length >= 3, 'the appends rolled over to new segments');
    await expectOneSyncWriter('after roll-over');
    // A conflicting entry at 5 cuts the log in the first segment: the later ones go, and the
    // first becomes the active one again.
    await store.append(commands(5, 7, 2, () => 100));
    assert.equal((await segments(dir)).length, 1);
    await expectOneSyncWriter('after truncation');
    await store.close();
    assert.deepEqual(await segmentWriters(dir), [], 'close releases the descriptor');
    ({ store } = await openFileLogStore(dir, { segmentBytesMax: 4096, cacheBytesMax: 0 }));
    await expectOneSyncWriter('after reopen');
    assert.equal(store.lastIndex(), 6);
    assert.equal(store.termAt(idx(6)), 2);
    await store.close();
  });
});

describe('FileLogStore: limits', () => {
  test('invalid limits are rejected at open with HQL_INVALID_CONFIG naming the option', async () => {
    const dir = await tempDir();
    const cases: [FileLogStoreOptions, RegExp][] = [
      [{ segmentBytesMax: 100 }, /segmentBytesMax/],
      [{ segmentBytesMax: 1.5 * 4096 + 0.5 }, /segmentBytesMax/],
      [{ segmentBytesMax: 8192, entryBytesMax: 8192 }, /entryBytesMax 8192 does not fit/],
      [{ entryBytesMax: 0 }, /entryBytesMax/],
      [{ cacheBytesMax: -1 }, /cacheBytesMax/],
      [{ writeBatchBytesMax: 10 }, /writeBatchBytesMax/],
      [{ entryBytesMax: 1 << 20, queueBytesMax: 1000 }, /queueBytesMax/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(openFileLogStore(dir, options), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'HQL_INVALID_CONFIG');
        assert.match(err.message, message);
        return true;
      });
    }
  });

  test('a full write queue rejects with HQL_OVERLOADED and changes nothing', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir, {
      segmentBytesMax: 16 * 1024,
      entryBytesMax: 4000,
      queueBytesMax: 4100,
    });
    try {
      const first = store.append(commands(1, 2, 1, () => 3000));
      await assert.rejects(store.append(commands(2, 3, 1, () => 3000)), { code: 'HQL_OVERLOADED' });
      assert.equal(store.lastIndex(), 1);
      await first;
      await store.append(commands(2, 3, 1, () => 3000));
      assert.equal(store.lastIndex(), 2);
    } finally {
      await store.close();
    }
  });
});

describe('segment format', () => {
  test('lastNonZeroByte finds the last non-zero byte across long zero runs', () => {
    const buf = Buffer.alloc(200 * 1024);
    assert.equal(lastNonZeroByte(buf, 0), -1);
    for (const at of [0, 1000, 65535, 65536, 70000, buf.length - 1]) {
      buf.fill(0);
      buf[at] = 1;
      assert.equal(lastNonZeroByte(buf, 0), at);
      assert.equal(lastNonZeroByte(buf, at), at);
      assert.equal(lastNonZeroByte(buf, at + 1), -1);
    }
  });
});

describe('FileLogStore: files', () => {
  test('opening and closing a log without writing leaves the directory as it was', async () => {
    const { dir } = await logWith(3);
    const before = (await readdir(dir)).sort();
    const { store } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
    assert.equal(store.lastIndex(), 3);
    await store.close();
    assert.deepEqual((await readdir(dir)).sort(), before);
    assert.ok(before.every((name) => !name.endsWith('.tmp')));
  });
});

describe('FileLogStore: group commit', () => {
  test('64 appends issued together share one write and one fdatasync', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir);
    try {
      const calls: Promise<void>[] = [];
      for (let i = 1; i <= 64; i++) calls.push(store.append(commands(i, i + 1, 1, () => 200)));
      await Promise.all(calls);
      // The first append also rolls into the first segment: still a single data sync.
      assert.equal(store.stats().syncs, 1);
      assert.equal(store.stats().entriesWritten, 64);
    } finally {
      await store.close();
    }
  });
});

describe('FileLogStore: recovery', () => {
  test('a torn last record (file cut anywhere inside it) is dropped, and only that record', async () => {
    const prng = new Prng(0x5eed);
    const { dir: source, log } = await logWith(30);
    const [segment] = await segments(source);
    const offsets = await recordOffsets(join(source, segment!));
    const lastStart = offsets.at(-2)!;
    const lastEnd = offsets.at(-1)!;
    const cuts = [lastStart + 1, lastStart + 4, lastStart + 8, lastEnd - 1];
    for (let i = 0; i < 4; i++) cuts.push(prng.int(lastStart + 1, lastEnd));
    for (const cut of cuts) {
      const dir = await tempDir();
      await copyFile(join(source, segment!), join(dir, segment!));
      await truncate(join(dir, segment!), cut);
      const { store, report } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
      try {
        assert.equal(store.lastIndex(), 29, `cut at ${cut}`);
        assert.deepEqual(store.entries(idx(1), idx(30)), log.slice(0, 29));
        // Any non-zero byte of the partial record is reported as the cut-off tail.
        if (cut - lastStart >= 4) assert.equal(report.tornTail?.offset, lastStart);
        if (report.tornTail !== null) assert.ok(report.tornTail.bytes <= cut - lastStart);
        // The log continues where the torn record was.
        await store.append([log[29]!]);
      } finally {
        await store.close();
      }
      const reopened = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
      assert.equal(reopened.report.tornTail, null);
      assert.deepEqual(reopened.store.entries(idx(1), idx(31)), log);
      await reopened.store.close();
    }
  });

  test('a record half-overwritten by preallocated zeros (never fully written) is dropped', async () => {
    const { dir, log } = await logWith(10);
    const [segment] = await segments(dir);
    const offsets = await recordOffsets(join(dir, segment!));
    const lastStart = offsets.at(-2)!;
    await writeAt(join(dir, segment!), lastStart + 12, new Uint8Array(offsets.at(-1)! - lastStart - 12));
    const { store, report } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
    try {
      assert.equal(report.tornTail?.offset, lastStart);
      assert.deepEqual(store.entries(idx(1), idx(10)), log.slice(0, 9));
      assert.equal(store.lastIndex(), 9);
    } finally {
      await store.close();
    }
  });

  test('garbage after the last record is cut off and reported; every entry survives', async () => {
    const prng = new Prng(7);
    for (const where of ['right after the records', 'after the preallocated zeros'] as const) {
      const { dir, log } = await logWith(10);
      const [segment] = await segments(dir);
      const path = join(dir, segment!);
      const end = (await recordOffsets(path)).at(-1)!;
      const garbage = new Uint8Array(300);
      for (let i = 0; i < garbage.length; i++) garbage[i] = prng.int(1, 256);
      const at = where === 'right after the records' ? end : (await readFile(path)).length;
      await writeAt(path, at, garbage);
      const { store, report } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
      try {
        assert.deepEqual(
          report.tornTail,
          { file: segment, offset: end, bytes: at + garbage.length - end },
          where,
        );
        assert.deepEqual(store.entries(idx(1), idx(11)), log, where);
        await store.append(commands(11, 12, 1));
      } finally {
        await store.close();
      }
      const reopened = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
      assert.equal(reopened.report.tornTail, null);
      assert.equal(reopened.store.lastIndex(), 11);
      await reopened.store.close();
    }
  });

  test('a flipped byte in a middle record is HQL_CORRUPTION naming the segment and offset', async () => {
    for (const part of ['payload', 'length', 'checksum'] as const) {
      const { dir } = await logWith(20);
      const [segment] = await segments(dir);
      const offsets = await recordOffsets(join(dir, segment!));
      const target = offsets[9]!;
      const byte = part === 'payload' ? target + 20 : part === 'length' ? target + 1 : target + 5;
      await flipByte(join(dir, segment!), byte);
      await assert.rejects(openFileLogStore(dir, { segmentBytesMax: 64 * 1024 }), (err: unknown) => {
        assert.ok(err instanceof LogCorruptionError, String(err));
        assert.equal(err.code, 'HQL_CORRUPTION');
        assert.equal(err.file, segment);
        assert.equal(err.offset, target, part);
        assert.match(err.message, new RegExp(`${segment} at byte ${target}`));
        return true;
      });
    }
  });

  test('damage at the end of a segment that has a successor is corruption, not a torn tail', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir, { segmentBytesMax: 4096 });
    await store.append(commands(1, 60, 1, () => 200));
    await store.close();
    const all = await segments(dir);
    assert.ok(all.length >= 3);
    const offsets = await recordOffsets(join(dir, all[0]!));
    await truncate(join(dir, all[0]!), offsets.at(-2)! + 10);
    await assert.rejects(openFileLogStore(dir, { segmentBytesMax: 4096 }), { code: 'HQL_CORRUPTION' });
  });

  test('a missing middle segment is corruption (a gap), never silently skipped', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir, { segmentBytesMax: 4096 });
    await store.append(commands(1, 60, 1, () => 200));
    await store.close();
    const all = await segments(dir);
    await rm(join(dir, all[1]!));
    await assert.rejects(openFileLogStore(dir, { segmentBytesMax: 4096 }), (err: unknown) => {
      assert.ok(err instanceof LogCorruptionError);
      assert.equal(err.file, all[2]);
      assert.match(err.reason, /follows entry/);
      return true;
    });
  });

  test('a missing newest segment is corruption: its entries were acknowledged (the high-water mark in log-meta)', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir, { segmentBytesMax: 4096 });
    await store.append(commands(1, 60, 1, () => 200));
    await store.close();
    const all = await segments(dir);
    assert.ok(all.length >= 3, `${all.length} segments`);
    // The rest of the log is whole: without the mark this opened as a shorter log.
    await rm(join(dir, all.at(-1)!));
    await assert.rejects(openFileLogStore(dir, { segmentBytesMax: 4096 }), (err: unknown) => {
      assert.ok(err instanceof LogCorruptionError);
      assert.equal(err.code, 'HQL_CORRUPTION');
      assert.equal(err.file, all.at(-1));
      assert.match(
        err.reason,
        /newest segment of the log is missing .* entries this node acknowledged are gone/,
      );
      return true;
    });
  });

  test('the high-water mark follows truncation and purges: a log cut back across segments or purged whole reopens', async () => {
    const dir = await tempDir();
    const options = { segmentBytesMax: 4096 };
    let { store } = await openFileLogStore(dir, options);
    await store.append(commands(1, 80, 1, () => 200));
    const many = (await segments(dir)).length;
    await store.append(commands(5, 7, 2, () => 50)); // conflict: later segments deleted
    assert.ok((await segments(dir)).length < many);
    await store.close();
    ({ store } = await openFileLogStore(dir, options));
    assert.equal(store.lastIndex(), 6);
    await store.append(commands(7, 40, 2, () => 200));
    await store.purgeTo(idx(100), 5 as Term); // past the end: every segment goes (a snapshot install)
    await store.close();
    ({ store } = await openFileLogStore(dir, options));
    try {
      assert.equal(store.firstIndex(), 101);
      await store.append(commands(101, 141, 5, () => 200));
      assert.equal(store.lastIndex(), 140);
    } finally {
      await store.close();
    }
    ({ store } = await openFileLogStore(dir, options));
    assert.equal(store.lastIndex(), 140);
    await store.close();
  });

  test('a log-meta file of version 1 (no high-water mark) still opens, and is written as version 2 from then on', async () => {
    const dir = await tempDir();
    const options = { segmentBytesMax: 4096 };
    let { store } = await openFileLogStore(dir, options);
    await store.append(commands(1, 60, 1, () => 200));
    await store.close();
    const v2 = await readFile(join(dir, LOG_META_FILE));
    assert.equal(v2.length, 44);
    const v1 = Buffer.alloc(36);
    v2.copy(v1, 0, 0, 32);
    v1.writeUInt16LE(1, 4);
    v1.writeUInt32LE(crc32(v1.subarray(0, 32)), 32);
    await writeFile(join(dir, LOG_META_FILE), v1);
    ({ store } = await openFileLogStore(dir, options));
    assert.equal(store.lastIndex(), 59);
    await store.append(commands(60, 100, 1, () => 200));
    await store.close();
    assert.equal((await readFile(join(dir, LOG_META_FILE))).length, 44);
  });

  test('a record damaged on disk while open fails entries() with HQL_CORRUPTION', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024, cacheBytesMax: 0 });
    try {
      await store.append(commands(1, 11, 1));
      const [segment] = await segments(dir);
      const offsets = await recordOffsets(join(dir, segment!));
      await flipByte(join(dir, segment!), offsets[4]! + 12);
      assert.deepEqual(store.entries(idx(1), idx(5)), commands(1, 5, 1));
      assert.throws(() => store.entries(idx(1), idx(11)), { code: 'HQL_CORRUPTION' });
    } finally {
      await store.close();
    }
  });

  test('a damaged hard state file is HQL_CORRUPTION', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir);
    await store.saveHardState({ term: 4 as Term, vote: null, commit: idx(0) });
    await store.close();
    await flipByte(join(dir, HARD_STATE_FILE), 9);
    await assert.rejects(openFileLogStore(dir), { code: 'HQL_CORRUPTION' });
  });

  test('leftovers of an interrupted purge and temporary files are removed at open', async () => {
    const dir = await tempDir();
    const { store } = await openFileLogStore(dir, { segmentBytesMax: 4096 });
    const log = commands(1, 60, 1, () => 200);
    await store.append(log);
    const before = await segments(dir);
    const saved = join(dir, 'saved-first-segment');
    await copyFile(join(dir, before[0]!), saved);
    await store.purgeTo(idx(40), 1 as Term);
    await store.close();
    // As if the process died after committing the purge but before deleting this segment.
    await copyFile(saved, join(dir, before[0]!));
    await rm(saved);
    await writeFile(join(dir, 'hard-state.tmp'), 'half-written');
    const { store: reopened, report } = await openFileLogStore(dir, { segmentBytesMax: 4096 });
    try {
      assert.deepEqual([...report.removedFiles].sort(), [before[0], 'hard-state.tmp'].sort());
      assert.equal(reopened.firstIndex(), 41);
      assert.deepEqual(reopened.entries(idx(41), idx(60)), log.slice(40));
    } finally {
      await reopened.close();
    }
  });
});

describe('FileLogStore: segments', () => {
  test('segments roll over at segmentBytesMax and purgeTo deletes the fully purged ones', async () => {
    const dir = await tempDir();
    const options = { segmentBytesMax: 4096 };
    const { store } = await openFileLogStore(dir, options);
    const log = commands(1, 101, 1, () => 200);
    try {
      await store.append(log.slice(0, 50));
      await store.append(log.slice(50));
      const all = await segments(dir);
      // 100 records of 225 bytes, at most 18 per 4 KiB segment.
      assert.ok(all.length >= 6, `${all.length} segments`);
      for (const name of all) assert.equal((await readFile(join(dir, name))).length, 4096, 'preallocated');
      await store.purgeTo(idx(50), 1 as Term);
      const left = await segments(dir);
      const offsetsOfFirst = await recordOffsets(join(dir, left[0]!));
      const firstRecord = readRecordAt(await readFile(join(dir, left[0]!)), offsetsOfFirst[0]!);
      assert.equal(firstRecord.type, 'record');
      // The first segment left holds entry 51 (and maybe some purged ones before it).
      assert.ok(firstRecord.type === 'record' && firstRecord.entry.index <= 51);
      assert.ok(left.length < all.length);
      assert.deepEqual(store.entries(idx(51), idx(101)), log.slice(50));
    } finally {
      await store.close();
    }
    const { store: reopened } = await openFileLogStore(dir, options);
    try {
      assert.equal(reopened.firstIndex(), 51);
      assert.deepEqual(reopened.entries(idx(51), idx(101)), log.slice(50));
      await reopened.purgeTo(idx(500), 2 as Term);
      assert.deepEqual(await segments(dir), []);
      await reopened.append(commands(501, 502, 2));
    } finally {
      await reopened.close();
    }
    const { store: third } = await openFileLogStore(dir, options);
    assert.equal(third.firstIndex(), 501);
    assert.deepEqual(third.entries(idx(501), idx(502)), commands(501, 502, 2));
    await third.close();
  });

  test('a conflicting append deletes later segments and cuts the one it lands in', async () => {
    const dir = await tempDir();
    const options = { segmentBytesMax: 4096 };
    const { store } = await openFileLogStore(dir, options);
    const log = commands(1, 101, 1, () => 200);
    await store.append(log);
    const before = await segments(dir);
    await store.append(commands(30, 33, 2, () => 50));
    const afterConflict = await segments(dir);
    assert.ok(afterConflict.length < before.length);
    await store.append(commands(33, 80, 2, () => 300));
    await store.close();
    const { store: reopened } = await openFileLogStore(dir, options);
    try {
      assert.equal(reopened.lastIndex(), 79);
      assert.deepEqual(reopened.entries(idx(1), idx(80)), [
        ...log.slice(0, 29),
        ...commands(30, 33, 2, () => 50),
        ...commands(33, 80, 2, () => 300),
      ]);
    } finally {
      await reopened.close();
    }
  });
  test('a segment that cannot be created at roll-over fails the append with HQL_IO; acknowledged entries survive', async () => {
    const dir = await tempDir();
    const options = { segmentBytesMax: 4096 };
    const { store } = await openFileLogStore(dir, options);
    // A fresh log writes into segment 1 and prepares segment 2 behind it; a dangling link where
    // segment 2 is prepared makes its creation fail, as a full disk or a lost directory would.
    await symlink(join(dir, 'missing', 'nowhere'), join(dir, `${segmentFileName(2)}.tmp`));
    const log = commands(1, 41, 1, () => 200);
    await store.append(log.slice(0, 10)); // 10 records of 225 bytes: segment 1 only
    await assert.rejects(store.append(log.slice(10)), (err: unknown) => {
      assert.ok(err instanceof HiqliteError, String(err));
      assert.equal(err.code, 'HQL_IO');
      assert.match(err.message, /log store write failed: ENOENT/);
      return true;
    });
    // The store stays failed: nothing after the failure is taken as written.
    await assert.rejects(store.append(commands(41, 42, 1)), { code: 'HQL_IO' });
    await store.close();

    const { store: reopened } = await openFileLogStore(dir, options);
    try {
      assert.ok(reopened.lastIndex() >= 10, `last index ${reopened.lastIndex()}`);
      assert.deepEqual(
        reopened.entries(idx(1), idx(reopened.lastIndex() + 1)),
        log.slice(0, reopened.lastIndex()),
        'what is on disk is a prefix of what was appended',
      );
      const next = reopened.lastIndex() + 1;
      await reopened.append(commands(next, next + 40, 1, () => 200));
      assert.equal(reopened.lastIndex(), next + 39);
    } finally {
      await reopened.close();
    }
  });
});

describe('FileLogStore: crash', () => {
  test('kill -9 while appending: every acknowledged entry survives, with its content', async () => {
    const dir = await tempDir();
    const prng = new Prng(0xc0ffee);
    let acknowledged = 0;
    for (let cycle = 0; cycle < 5; cycle++) {
      const result = await crashCycle(dir, prng.int(100, 600));
      assert.ok(result.lastIndex >= result.printedMax);
      acknowledged += result.printedCount;
    }
    assert.ok(acknowledged > 0, 'the child acknowledged nothing');
  });
});

describe('FileLogStore: the synced mark', () => {
  /** A copy of `dir` as it is now, while its store may still be open (a crash's disk). */
  async function snapshotOf(dir: string): Promise<string> {
    const copy = await tempDir();
    for (const name of await readdir(dir)) await copyFile(join(dir, name), join(copy, name));
    return copy;
  }

  /** Waits (bounded) until the mark on disk reaches `index`. */
  async function markReaches(dir: string, index: number): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await readSyncedMarkFile(dir)).index >= index) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.fail(`the synced mark did not reach ${index} within 2 s`);
  }

  test('a log cut below what it had synced says so at open; a torn unsynced record does not', async () => {
    const { dir } = await logWith(30);
    assert.equal((await readSyncedMarkFile(dir)).index, 30, 'close marks the durable end');
    const [segment] = await segments(dir);
    const offsets = await recordOffsets(join(dir, segment!));
    // Records 28..30 zeroed: it opens as a clean log ending at 27, as a crash's torn tail would.
    const from = offsets[27]!;
    await writeAt(join(dir, segment!), from, new Uint8Array(offsets.at(-1)! - from));
    const { store, report } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
    try {
      assert.equal(store.lastIndex(), 27);
      assert.equal(report.syncedMark, 30);
      assert.match(
        syncedRecordsLost(store, report.syncedMark) ?? '',
        /ends at index 27, but entries through 30/,
      );
    } finally {
      await store.close();
    }

    // An open store: appends 1..20 synced and marked, then a record torn mid-write by a crash.
    const live = await tempDir();
    const { store: writing } = await openFileLogStore(live, {
      segmentBytesMax: 64 * 1024,
      syncedMarkIntervalMs: 1,
    });
    try {
      await writing.append(commands(1, 21, 1));
      await markReaches(live, 20);
      const crashed = await snapshotOf(live);
      const [seg] = await segments(crashed);
      const end = (await recordOffsets(join(crashed, seg!))).at(-1)!;
      await writeAt(join(crashed, seg!), end, Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9));
      const reopened = await openFileLogStore(crashed, { segmentBytesMax: 64 * 1024 });
      assert.notEqual(reopened.report.tornTail, null);
      assert.equal(reopened.store.lastIndex(), 20);
      assert.equal(syncedRecordsLost(reopened.store, reopened.report.syncedMark), null);
      await reopened.store.close();
    } finally {
      await writing.close();
    }
  });

  test('a Raft truncation and a snapshot replacing the whole log bring the mark down before they cut', async () => {
    for (const how of ['conflict', 'snapshot'] as const) {
      const { dir } = await logWith(30, { syncedMarkIntervalMs: 1 });
      const { store } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024, syncedMarkIntervalMs: 1 });
      try {
        // A new leader's entries from 20 on (term 2), or a snapshot at 20 whose term the log
        // does not hold there: entries 20..30 leave the disk.
        if (how === 'conflict') await store.append([commands(20, 21, 2)[0]!]);
        else await store.purgeTo(idx(20), 5 as Term);
        // The disk as a crash right after would leave it: the mark is not above the log.
        const crashed = await snapshotOf(dir);
        const reopened = await openFileLogStore(crashed, { segmentBytesMax: 64 * 1024 });
        assert.equal(reopened.store.lastIndex(), 20, how);
        assert.ok(reopened.report.syncedMark <= 20, `${how}: mark ${reopened.report.syncedMark}`);
        assert.equal(syncedRecordsLost(reopened.store, reopened.report.syncedMark), null, how);
        await reopened.store.close();
      } finally {
        await store.close();
      }
      const after = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024 });
      assert.equal(syncedRecordsLost(after.store, after.report.syncedMark), null, how);
      assert.equal(after.report.syncedMark, 20, `${how}: close marks the new end`);
      await after.store.close();
    }
  });

  test('a torn write of the mark leaves the previous one (two slots); no file is 0 (not known)', async () => {
    const dir = await tempDir();
    assert.deepEqual(await readSyncedMarkFile(dir), { sequence: 0, index: 0 });
    const { store } = await openFileLogStore(dir, { segmentBytesMax: 64 * 1024, syncedMarkIntervalMs: 1 });
    await store.append(commands(1, 11, 1));
    await markReaches(dir, 10);
    await store.append(commands(11, 16, 1));
    await store.close();
    const marked = await readSyncedMarkFile(dir);
    assert.equal(marked.index, 15);
    // The newest slot torn: the one before it still checks out, and is lower.
    const path = join(dir, SYNCED_MARK_FILE);
    await flipByte(path, (marked.sequence % 2) * 512 + 17);
    const torn = await readSyncedMarkFile(dir);
    assert.ok(
      torn.sequence === marked.sequence - 1 && torn.index <= 15 && torn.index >= 10,
      JSON.stringify(torn),
    );
  });
});
