/**
 * The seams a RaftGroup drives: its log store (src/storage), its state machine (src/sm) and the
 * transport (src/transport). Each is minimal, so that an in-memory implementation serves unit
 * tests and adapters serve the real parts.
 */
import type { Entry, LogIndex, Membership, Message, SnapshotMeta, Term } from '../raft/types.js';

export type GroupId = 'sql' | 'cache';

/** A snapshot made durable: its metadata and where its data lives. */
export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly path: string;
  /**
   * The SHA-256 of the data (lowercase hex), recorded when it was committed; null when it is not
   * known: metadata written before snapshots had a checksum, or a store that holds no bytes
   * (the simulator's). `check` compares the data with it.
   */
  readonly sha256: string | null;
}

/** What `GroupSnapshotStore.check` found. */
export type SnapshotCheck =
  /** The data matches its checksum; `snapshot` carries it (computed now when it was unknown). */
  | { readonly ok: true; readonly snapshot: StoredSnapshot }
  /** The data is gone or does not match: it must never be restored or sent (`drop` it). */
  | { readonly ok: false; readonly reason: string };

/**
 * Where a group keeps its snapshots: `SnapshotStore` (files, src/node/snapshot-store.ts) and
 * the simulator's (test/sim). A snapshot is written to a `tempPath()` (by the state machine or a
 * receiving stream) and becomes durable only through `commit`.
 */
export interface GroupSnapshotStore {
  /** The newest committed snapshot, or null when there is none. */
  latest(): StoredSnapshot | null;
  /** A fresh path for a snapshot being written. */
  tempPath(): string;
  /** Makes the data at `tempPath` durable as `meta` (older snapshots may be dropped). */
  commit(tempPath: string, meta: SnapshotMeta): Promise<StoredSnapshot>;
  /** Deletes an uncommitted snapshot at `path` (one never installed); no error when it is gone. */
  discard(path: string): Promise<void>;
  /** Reads the data of a committed snapshot through and compares it with its checksum. */
  check(stored: StoredSnapshot): Promise<SnapshotCheck>;
  /**
   * Forgets a committed snapshot whose data failed `check` and deletes it, as if it were lost:
   * `latest()` is then the one before it, or null. No error when it is gone already.
   */
  drop(stored: StoredSnapshot): Promise<void>;
}

/** A deterministic state machine fed with committed entries. */
export interface GroupStateMachine {
  /** The last index whose effects are durable in the state machine (the resume point). */
  appliedIndex(): LogIndex;
  /**
   * Applies committed entries in order and records the last applied index with them. Returns one
   * result per entry where `wanted` is true (someone waits for it), undefined elsewhere (and for
   * no-op and configuration entries). A rejection is an environmental failure (disk full,
   * corruption): the group stops.
   */
  apply(entries: readonly Entry[], wanted: readonly boolean[]): Promise<readonly unknown[]>;
  /** About what a snapshot copies, in bytes (the snapshot policy weighs its cost with it). */
  sizeBytes?(): number;
  /**
   * Writes a consistent snapshot of the applied state to `path`; returns what it covers, with
   * the membership of the last configuration entry it applied (null: none yet, the genesis one).
   */
  snapshot(path: string): Promise<{ index: LogIndex; term: Term; membership: Membership | null }>;
  /** Replaces the whole state by the snapshot at `path`, atomically. */
  restore(path: string, meta: SnapshotMeta): Promise<void>;
  /** Forgets everything (a state machine ahead of a lost log with no snapshot to roll back to). */
  reset(): Promise<void>;
  /**
   * Holds its state in memory only (the cache group's): it starts empty at every start, so
   * restoring the latest snapshot then is the normal start, not the sign of lost files.
   */
  readonly volatile?: boolean;
  /**
   * Stops the batch being applied now, from outside the thread applying it: the batch is rolled
   * back as a whole and apply() rejects (the group then stops; the entries are applied again at
   * the next start). Used at shutdown only: stopping an entry on a timer on one replica while
   * another finishes it would make them diverge if it were recorded as the entry's outcome.
   */
  interrupt?(): void;
  close(): Promise<void>;
}

export interface GroupTransport {
  /** Non-blocking; a message that cannot be delivered is dropped (Raft tolerates loss). */
  send(group: GroupId, message: Message): void;
  /**
   * Streams the snapshot's data to `message.to` with its checksum (`snapshot.sha256`: the peer
   * refuses bytes that do not match it), then delivers `message` (its metadata) so the peer
   * hands it to its core with the received file (`RaftGroup.receiveSnapshot`). Resolves true once
   * the peer has it all. `snapshot` has passed `GroupSnapshotStore.check` just before.
   */
  sendSnapshot(
    group: GroupId,
    message: Extract<Message, { type: 'snapshot' }>,
    snapshot: StoredSnapshot,
  ): Promise<boolean>;
}
