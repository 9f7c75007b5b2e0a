/**
 * Local snapshot files of one Raft group: `<index>-<term>.snap` (the state machine's data) and
 * `<index>-<term>.meta.json` (index, term, membership, and the SHA-256 of the data file). The
 * metadata file is written last and atomically, so it is the commit point: a snapshot without
 * one is an interrupted write and is deleted at open. The newest snapshot and the one before it
 * are kept, so a snapshot being streamed to a follower is not deleted under the stream.
 *
 * The checksum is what stands between a damaged data file (a flipped bit on the disk, an
 * operator's edit) and the replicas: SQLite's own checks see the structure of a database, not
 * whether its rows are the ones the log wrote. `check` reads a snapshot through before it is
 * restored at start (group-setup.ts) or sent to a peer (RaftGroup.sendSnapshot); one that does
 * not match is dropped as if it were lost, and recovery takes the path it takes for a lost one.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../lib/file-modes.js';
import type { LogIndex, NodeId, SnapshotMeta, Term } from '../raft/types.js';
import { fsyncDir, writeFileAtomic } from '../storage/atomic-file.js';
import { chunkStoreOf } from './memory-snapshot-store.js';
import type { GroupSnapshotStore, SnapshotCheck, StoredSnapshot } from './seams.js';
import { SHA256_HEX_RE, sha256Hex } from './sha256.js';

export type { StoredSnapshot } from './seams.js';

const META_RE = /^(\d+)-(\d+)\.meta\.json$/;
const KEEP = 2;

/** Files of interrupted snapshot writes (tempPath, and SQLite's files beside its `.partial`). */
const TEMP_RE = /\.tmp(\.partial(-journal|-wal|-shm)?)?$/;

export class SnapshotStore implements GroupSnapshotStore {
  private snapshots: StoredSnapshot[] = [];
  private tempSeq = 0;

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<SnapshotStore> {
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const store = new SnapshotStore(dir);
    await store.load();
    return store;
  }

  latest(): StoredSnapshot | null {
    return this.snapshots[this.snapshots.length - 1] ?? null;
  }

  /** A fresh path for a snapshot being written (by the state machine or a receiving stream). */
  tempPath(): string {
    return join(this.dir, `incoming-${process.pid}-${++this.tempSeq}.tmp`);
  }

  /**
   * Makes the snapshot at `tempPath` durable as `meta`, with the SHA-256 of its data in the
   * metadata, and drops older ones beyond the last two. The checksum is computed here, from the
   * file as it is about to be renamed (one read of it, streamed), for every snapshot alike: one
   * the state machine wrote, or one received from the leader (whose bytes the transport already
   * checked against the leader's checksum as they arrived, src/transport/snapshot-receiver.ts).
   */
  async commit(tempPath: string, meta: SnapshotMeta): Promise<StoredSnapshot> {
    const base = `${meta.index}-${meta.term}`;
    const path = join(this.dir, `${base}.snap`);
    let sha256: string;
    try {
      const fh = await open(tempPath, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      sha256 = await sha256OfFile(tempPath);
      await rename(tempPath, path);
      const body = JSON.stringify({
        index: meta.index,
        term: meta.term,
        voters: meta.membership.voters,
        learners: meta.membership.learners,
        sha256,
      });
      await writeFileAtomic(this.dir, `${base}.meta.json`, new TextEncoder().encode(body));
    } catch (e) {
      // Not committed (a data file without its metadata is an interrupted write, ignored at the
      // next load): give its space back now, unless it replaced a committed one of the same name.
      await rm(tempPath, { force: true }).catch(() => {});
      if (!this.snapshots.some((s) => s.path === path)) await rm(path, { force: true }).catch(() => {});
      throw e;
    }
    const stored: StoredSnapshot = { meta, path, sha256 };
    this.snapshots = this.snapshots.filter((s) => s.meta.index !== meta.index);
    this.snapshots.push(stored);
    this.snapshots.sort((a, b) => a.meta.index - b.meta.index);
    while (this.snapshots.length > KEEP) {
      const old = this.snapshots.shift() as StoredSnapshot;
      await this.remove(old.meta);
    }
    return stored;
  }

  async discard(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  /**
   * Reads the data file through and compares its SHA-256 with the one in the metadata.
   *
   * Metadata written before snapshots had a checksum (an upgraded node) has none: such a
   * snapshot is accepted as it always was, and the checksum of its bytes as they are now is
   * kept in memory from this first check on, so it goes to a peer with one (the receiver
   * refuses data without a matching checksum) and a later check of it in this process compares.
   * It is not written back to the metadata file: a legacy snapshot lives only until the group
   * takes its next two snapshots (KEEP), and a rewrite racing a commit that prunes it would
   * leave a metadata file behind its deleted data. Checking every legacy snapshot at open
   * instead would read up to two database-sized files at the first start after the upgrade, to
   * bless bytes nothing can vouch for either way.
   */
  async check(stored: StoredSnapshot): Promise<SnapshotCheck> {
    let sha256: string;
    try {
      sha256 = await sha256OfFile(stored.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return { ok: false, reason: 'its data file is gone' };
    }
    if (stored.sha256 === null) {
      const known: StoredSnapshot = { ...stored, sha256 };
      this.snapshots = this.snapshots.map((s) => (s.path === stored.path ? known : s));
      return { ok: true, snapshot: known };
    }
    if (sha256 !== stored.sha256)
      return { ok: false, reason: `its data has SHA-256 ${sha256}, its metadata says ${stored.sha256}` };
    return { ok: true, snapshot: stored };
  }

  async drop(stored: StoredSnapshot): Promise<void> {
    // The same one, not a snapshot committed since under the same name (same index and term).
    const same = (s: StoredSnapshot) => s.path === stored.path && s.sha256 === stored.sha256;
    if (!this.snapshots.some(same)) return;
    this.snapshots = this.snapshots.filter((s) => !same(s));
    await this.remove(stored.meta);
  }

  private async remove(meta: SnapshotMeta): Promise<void> {
    const base = `${meta.index}-${meta.term}`;
    await rm(join(this.dir, `${base}.meta.json`), { force: true });
    await rm(join(this.dir, `${base}.snap`), { force: true });
    await fsyncDir(this.dir);
  }

  private async load(): Promise<void> {
    const names = await readdir(this.dir);
    const found: StoredSnapshot[] = [];
    for (const name of names) {
      // A temp file of an interrupted write, and what SQLite's backup into it leaves beside it
      // (`.tmp.partial`, `.tmp.partial-journal`: each crash while a snapshot was being made left
      // up to a database-sized file behind for good).
      if (TEMP_RE.test(name)) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const m = META_RE.exec(name);
      if (m === null) continue;
      const snapName = `${m[1]}-${m[2]}.snap`;
      if (!names.includes(snapName)) continue;
      const { meta, sha256 } = parseMeta(await readFile(join(this.dir, name), 'utf8'), name);
      found.push({ meta, path: join(this.dir, snapName), sha256 });
    }
    // Data files without metadata are interrupted writes.
    const committed = new Set(found.map((s) => `${s.meta.index}-${s.meta.term}.snap`));
    for (const name of names) {
      if (name.endsWith('.snap') && !committed.has(name)) await rm(join(this.dir, name), { force: true });
    }
    this.snapshots = found.sort((a, b) => a.meta.index - b.meta.index);
  }
}

/** The SHA-256 of the file at `path`, read in chunks (a snapshot may be as large as the database). */
function sha256OfFile(path: string): Promise<string> {
  return sha256Hex(createReadStream(path, { highWaterMark: 1 << 20 }));
}

/** A metadata file: its `sha256` is null when it was written before snapshots had one. */
function parseMeta(text: string, name: string): { meta: SnapshotMeta; sha256: string | null } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new HiqliteError('HQL_CORRUPTION', `snapshot metadata ${name} is not valid JSON`, {
      retryable: false,
      cause,
    });
  }
  const o = v as { index?: unknown; term?: unknown; voters?: unknown; learners?: unknown; sha256?: unknown };
  const ids = (x: unknown) => Array.isArray(x) && x.every((n) => Number.isSafeInteger(n) && n > 0);
  const sha256Ok = o.sha256 === undefined || (typeof o.sha256 === 'string' && SHA256_HEX_RE.test(o.sha256));
  if (
    !Number.isSafeInteger(o.index) ||
    !Number.isSafeInteger(o.term) ||
    !ids(o.voters) ||
    !ids(o.learners) ||
    !sha256Ok
  ) {
    throw new HiqliteError('HQL_CORRUPTION', `snapshot metadata ${name} is malformed`, { retryable: false });
  }
  assert((o.index as number) >= 0, 'snapshot index >= 0');
  return {
    meta: {
      index: o.index as LogIndex,
      term: o.term as Term,
      membership: { voters: o.voters as NodeId[], learners: o.learners as NodeId[] },
    },
    sha256: (o.sha256 as string | undefined) ?? null,
  };
}

/**
 * A snapshot streamed by the leader, into a temporary path of `store` (a file, or the chunks of
 * a ChunkSnapshotStore: memory, or the simulator's disk); returns the path. A stream that breaks off (the sender gone, the disk
 * full) leaves nothing: every retry of the sender would otherwise leave one more partial copy of
 * the state machine behind until the next start.
 */
export async function receiveSnapshot(
  store: GroupSnapshotStore,
  chunks: AsyncIterable<Uint8Array>,
): Promise<string> {
  const path = store.tempPath();
  const chunked = chunkStoreOf(store);
  try {
    if (chunked !== null) {
      for await (const chunk of chunks) chunked.append(path, new Uint8Array(chunk));
    } else {
      const fh = await open(path, 'w', PRIVATE_FILE_MODE);
      try {
        for await (const chunk of chunks) await fh.write(chunk);
      } finally {
        await fh.close();
      }
    }
  } catch (e) {
    await store.discard(path).catch(() => {});
    throw e;
  }
  return path;
}
