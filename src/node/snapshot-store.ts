/**
 * Local snapshot files of one Raft group: `<index>-<term>.snap` (the state machine's data) and
 * `<index>-<term>.meta.json` (index, term, membership). The metadata file is written last and
 * atomically, so it is the commit point: a snapshot without one is an interrupted write and is
 * deleted at open. The newest snapshot and the one before it are kept, so a snapshot being
 * streamed to a follower is not deleted under the stream.
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../lib/file-modes.js';
import type { LogIndex, NodeId, SnapshotMeta, Term } from '../raft/types.js';
import { fsyncDir, writeFileAtomic } from '../storage/atomic-file.js';
import { chunkStoreOf } from './memory-snapshot-store.js';
import type { GroupSnapshotStore, StoredSnapshot } from './seams.js';

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

  /** Makes the snapshot at `tempPath` durable as `meta`, and drops older ones beyond the last two. */
  async commit(tempPath: string, meta: SnapshotMeta): Promise<StoredSnapshot> {
    const base = `${meta.index}-${meta.term}`;
    const path = join(this.dir, `${base}.snap`);
    try {
      const fh = await open(tempPath, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tempPath, path);
      const body = JSON.stringify({
        index: meta.index,
        term: meta.term,
        voters: meta.membership.voters,
        learners: meta.membership.learners,
      });
      await writeFileAtomic(this.dir, `${base}.meta.json`, new TextEncoder().encode(body));
    } catch (e) {
      // Not committed (a data file without its metadata is an interrupted write, ignored at the
      // next load): give its space back now, unless it replaced a committed one of the same name.
      await rm(tempPath, { force: true }).catch(() => {});
      if (!this.snapshots.some((s) => s.path === path)) await rm(path, { force: true }).catch(() => {});
      throw e;
    }
    const stored: StoredSnapshot = { meta, path };
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
      found.push({
        meta: parseMeta(await readFile(join(this.dir, name), 'utf8'), name),
        path: join(this.dir, snapName),
      });
    }
    // Data files without metadata are interrupted writes.
    const committed = new Set(found.map((s) => `${s.meta.index}-${s.meta.term}.snap`));
    for (const name of names) {
      if (name.endsWith('.snap') && !committed.has(name)) await rm(join(this.dir, name), { force: true });
    }
    this.snapshots = found.sort((a, b) => a.meta.index - b.meta.index);
  }
}

function parseMeta(text: string, name: string): SnapshotMeta {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new HiqliteError('HQL_CORRUPTION', `snapshot metadata ${name} is not valid JSON`, {
      retryable: false,
      cause,
    });
  }
  const o = v as { index?: unknown; term?: unknown; voters?: unknown; learners?: unknown };
  const ids = (x: unknown) => Array.isArray(x) && x.every((n) => Number.isSafeInteger(n) && n > 0);
  if (!Number.isSafeInteger(o.index) || !Number.isSafeInteger(o.term) || !ids(o.voters) || !ids(o.learners)) {
    throw new HiqliteError('HQL_CORRUPTION', `snapshot metadata ${name} is malformed`, { retryable: false });
  }
  assert((o.index as number) >= 0, 'snapshot index >= 0');
  return {
    index: o.index as LogIndex,
    term: o.term as Term,
    membership: { voters: o.voters as NodeId[], learners: o.learners as NodeId[] },
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
