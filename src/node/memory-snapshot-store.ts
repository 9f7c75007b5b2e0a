/**
 * Snapshots of a group that keeps nothing on disk (`cache_storage_disk = false`). A "path" is a
 * key into this store's memory: the state machine writes a snapshot into it chunk by chunk
 * (`append`), the transport streams one out of it (`chunks`) and a receiving stream writes one
 * into it. Only the newest committed snapshot and the one before it are kept (as the file store
 * does), so at most two snapshots plus the ones being written or received are held.
 *
 * A snapshot gets a SHA-256 at commit as in the file store, for the same reason on the wire: a
 * peer refuses a stream whose bytes do not match the sender's checksum. `check` compares it
 * again before a snapshot is sent (there is no restore at start: memory starts empty). That is
 * cheap (hashing memory runs at about 1 GB/s) and not empty of meaning: a chunk is kept as a
 * view of the writer's buffer when it fills most of it (cache-group.ts, chunkSnapshotting), and
 * a writer that reused such a buffer would change a committed snapshot under its checksum.
 */
import { assert } from '../lib/assert.js';
import type { SnapshotMeta } from '../raft/types.js';
import type { GroupSnapshotStore, SnapshotCheck, StoredSnapshot } from './seams.js';
import { sha256Hex } from './sha256.js';

const KEEP = 2;
const PREFIX = 'memory-snapshot:';

/**
 * A snapshot store whose snapshots are written and read chunk by chunk, not as files:
 * `MemorySnapshotStore`, and the simulator's disk (test/sim/cache). The cache group writes its
 * state machine's snapshots into such a store and streams them to peers out of it.
 */
export interface ChunkSnapshotStore extends GroupSnapshotStore {
  /** Adds a chunk to the snapshot being written at `path` (a `tempPath()`). */
  append(path: string, chunk: Uint8Array): void;
  /** The bytes of the snapshot at `path`, chunk by chunk. */
  chunks(path: string): AsyncIterable<Uint8Array>;
}

/** `store` as a ChunkSnapshotStore, or null when it keeps files. */
export function chunkStoreOf(store: GroupSnapshotStore): ChunkSnapshotStore | null {
  const s = store as Partial<ChunkSnapshotStore>;
  return typeof s.append === 'function' && typeof s.chunks === 'function'
    ? (store as ChunkSnapshotStore)
    : null;
}

export class MemorySnapshotStore implements ChunkSnapshotStore {
  private readonly blobs = new Map<string, Uint8Array[]>();
  private snapshots: StoredSnapshot[] = [];
  private seq = 0;

  latest(): StoredSnapshot | null {
    return this.snapshots[this.snapshots.length - 1] ?? null;
  }

  tempPath(): string {
    const path = `${PREFIX}${++this.seq}`;
    this.blobs.set(path, []);
    return path;
  }

  /** Adds a chunk to the snapshot being written at `path`. */
  append(path: string, chunk: Uint8Array): void {
    const blob = this.blobs.get(path);
    assert(blob !== undefined, `memory snapshot ${path} was never opened`);
    blob.push(chunk);
  }

  /** The bytes of the snapshot at `path`, chunk by chunk. */
  async *chunks(path: string): AsyncIterable<Uint8Array> {
    const blob = this.blobs.get(path);
    assert(blob !== undefined, `memory snapshot ${path} is gone`);
    for (const chunk of blob) yield chunk;
  }

  /** Bytes held, committed and in progress. */
  bytes(): number {
    let n = 0;
    for (const blob of this.blobs.values()) for (const c of blob) n += c.byteLength;
    return n;
  }

  async commit(tempPath: string, meta: SnapshotMeta): Promise<StoredSnapshot> {
    assert(this.blobs.has(tempPath), `memory snapshot ${tempPath} to commit is gone`);
    const stored: StoredSnapshot = { meta, path: tempPath, sha256: await sha256Hex(this.chunks(tempPath)) };
    for (const s of this.snapshots.filter((s) => s.meta.index === meta.index)) this.blobs.delete(s.path);
    this.snapshots = this.snapshots.filter((s) => s.meta.index !== meta.index);
    this.snapshots.push(stored);
    this.snapshots.sort((a, b) => a.meta.index - b.meta.index);
    while (this.snapshots.length > KEEP) {
      const old = this.snapshots.shift() as StoredSnapshot;
      this.blobs.delete(old.path);
    }
    return stored;
  }

  async discard(path: string): Promise<void> {
    if (this.snapshots.some((s) => s.path === path)) return;
    this.blobs.delete(path);
  }

  async check(stored: StoredSnapshot): Promise<SnapshotCheck> {
    if (!this.blobs.has(stored.path)) return { ok: false, reason: 'it is gone' };
    const sha256 = await sha256Hex(this.chunks(stored.path));
    if (sha256 !== stored.sha256)
      return { ok: false, reason: `its data has SHA-256 ${sha256}, its metadata says ${stored.sha256}` };
    return { ok: true, snapshot: stored };
  }

  async drop(stored: StoredSnapshot): Promise<void> {
    if (!this.snapshots.some((s) => s.path === stored.path)) return;
    this.snapshots = this.snapshots.filter((s) => s.path !== stored.path);
    this.blobs.delete(stored.path);
  }
}
