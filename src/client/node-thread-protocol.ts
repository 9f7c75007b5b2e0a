/**
 * Messages between an embedded application's thread (worker-node.ts) and the worker thread that
 * runs its node (node-worker.ts). Both directions send batches: what one side produced in one
 * turn of its event loop travels in one message (the small cache values of a turn's writes in one
 * transferred buffer, as views of it: worker-node.ts, packCacheValues).
 *
 * Shared memory (`SharedArrayBuffer`, SHARED_BYTES): the worker writes, the application's
 * thread reads without a message — the applied index (read-your-writes waits on it with
 * Atomics.waitAsync), whether the node is the leader (`isLeader()` stays synchronous) and how far
 * this node's clock is from the cluster's (the cache mirror's expiry).
 */

import type { CacheConsistency, CacheRead } from '../node/cache-group.js';
import type { ListenItem } from '../node/cache-listeners.js';
import type { LockRequest } from '../node/cache-locks.js';
import type { NodeConfig } from '../node/config/config.js';
import type { TransferredError } from '../node/error-transfer.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import type { CommandInput } from '../sm/sql/command.js';
import type { QueryParams } from '../sm/sql/reader.js';
import type { MirrorEvent } from './cache-mirror-wire.js';

export const SHARED_BYTES = 24;
/** BigInt64Array index: the state machine's applied index. */
export const APPLIED_SLOT = 0;
/** Int32Array index (bytes 8–11): 1 while the node is the leader. */
export const LEADER_SLOT = 2;
/**
 * Int32Array index (bytes 12–15): how many times the node's cache group was founded anew
 * (CacheGroup.refound): a lock granted before is gone (DistributedLock compares).
 */
export const CACHE_REFOUNDS_SLOT = 3;
/**
 * BigInt64Array index (bytes 16–23): this node's clock minus the cluster's in ms
 * (peer-clocks.ts), refreshed every CLOCK_OFFSET_PUBLISH_MS once the mirror is fed: the mirror
 * judges expiry by the cluster's clock, as the node's thread does.
 */
export const CLOCK_OFFSET_SLOT = 2;
export const CLOCK_OFFSET_PUBLISH_MS = 100;

/**
 * The synchronous read channel: `getLocal` before the cache mirror is live (it starts with the
 * application's first local read) posts a `sync-read` and waits (`Atomics.wait`) until the node's
 * thread has written the answer here and stored its `seq` in SYNC_DONE_SEQ. Int32 slots, then
 * the value's bytes from SYNC_HEADER_BYTES. A value that does not fit is answered SYNC_TOO_LARGE
 * with its size; the application's thread sends a larger buffer (`sync-buffer`) and asks again.
 */
export const SYNC_DONE_SEQ = 0;
export const SYNC_STATUS = 1;
/** The value's length (SYNC_FOUND), or the size needed (SYNC_TOO_LARGE). */
export const SYNC_LENGTH = 2;
export const SYNC_HEADER_BYTES = 16;
export const SYNC_BUFFER_BYTES_INITIAL = 64 * 1024;
export const SYNC_ABSENT = 0;
export const SYNC_FOUND = 1;
export const SYNC_TOO_LARGE = 2;
/** The node could not read (not started, closing, failed). */
export const SYNC_FAILED = 3;

export interface NodeWorkerData {
  readonly config: NodeConfig;
  readonly joinTimeoutMs?: number;
  /** The level of the application's logger: records below it are not even sent. */
  readonly logLevel: string;
  readonly shared: SharedArrayBuffer;
  /**
   * The application thread's cache mirror (cache-mirror.ts), or null when it is off. Its feed
   * starts with the first `mirror-start`, not with the node.
   */
  readonly cacheMirror: { readonly inflightBytesMax: number } | null;
  /** The synchronous read channel's first buffer (SYNC_*). */
  readonly syncBuffer: SharedArrayBuffer;
}

export type CallBody =
  | { readonly op: 'write'; readonly command: CommandInput }
  | {
      readonly op: 'query';
      readonly sql: string;
      readonly params: QueryParams;
      readonly consistency?: 'local' | 'linearizable';
      readonly minIndex?: number;
      readonly timeoutMs: number;
    }
  | { readonly op: 'barrier'; readonly timeoutMs: number }
  | { readonly op: 'metrics' }
  | { readonly op: 'backup' }
  | { readonly op: 'removeNode'; readonly nodeId: number; readonly timeoutMs?: number }
  | { readonly op: 'health'; readonly timeoutMs: number }
  | { readonly op: 'shutdown' }
  // The cache group (cache-client.ts, CacheOps).
  /** Answers the outcome, with the cache group's applied index then (Replies). */
  | { readonly op: 'cacheWrite'; readonly command: CacheCommand; readonly timeoutMs?: number }
  /** A ReadIndex round on the cache group; answers the cache group's applied index after it. */
  | { readonly op: 'cacheBarrier'; readonly timeoutMs: number }
  /** `{ index, sha256 }` of the node's cache state (tests compare it with the mirror's). */
  | { readonly op: 'cacheDigest' }
  | { readonly op: 'cacheRead'; readonly read: CacheRead; readonly consistency: CacheConsistency }
  /** Abortable (`abort`): the node withdraws the waiter. */
  | { readonly op: 'cacheLock'; readonly request: LockRequest }
  /**
   * Starts listener `listenId`; its notifications come as `listen` events, at most
   * `cache_listener_buffer_max` not yet acknowledged (`listen-ack`).
   */
  | { readonly op: 'listen'; readonly listenId: number; readonly channel: string | null }
  /**
   * A listener closed: answered once the node dropped it (its slot of `cache_listeners_max` is
   * free). A call, so it keeps its place among the calls: a listen() after it comes after it.
   */
  | { readonly op: 'unlisten'; readonly listenId: number };

export type Call = CallBody & { readonly id: number };

/**
 * A turn's calls with their small cache writes and keyed cache commands flat (PACKED_*): the
 * structured clone of a flat array of strings and numbers costs the two threads less than half
 * of one object (and a command object inside it) per write, and leaves the node's thread less
 * garbage. `items` holds, in the order of the calls, a Call, or PACKED_WRITE and
 * PACKED_WRITE_FIELDS fields, or PACKED_KEYED and PACKED_KEYED_FIELDS fields, or PACKED_EXECUTE,
 * PACKED_EXECUTE_FIELDS fields and the statement's parameters; the cache values are
 * views of `values`, which moves with the message.
 */
export interface PackedCalls {
  readonly type: 'packed-calls';
  readonly items: readonly unknown[];
  readonly values: ArrayBuffer;
}
/** The tag of a packed write in PackedCalls.items (a Call is an object, never a number). */
export const PACKED_WRITE = 0;
/** After the tag: id, command type, cache, key, value offset, value length, ttlMs, timeoutMs (-1: none). */
export const PACKED_WRITE_FIELDS = 8;
/** The command types a packed write carries, by their index here. */
export const PACKED_WRITE_TYPES = ['put', 'replace', 'putIfAbsent'] as const;
/**
 * The tag of a packed keyed command (no value): after it id, command type (PACKED_KEYED_TYPES),
 * cache or counter name, key, the counter's bigint (or null), timeoutMs (-1: none).
 */
export const PACKED_KEYED = 1;
export const PACKED_KEYED_FIELDS = 6;
export const PACKED_KEYED_TYPES = [
  'delete',
  'getRemove',
  'counterAdd',
  'counterSet',
  'counterDelete',
] as const;

/**
 * The tag of a packed SQL `execute` (PackedCalls.items): after it id, sql, returning (1 or 0),
 * the number of positional parameters n, then the n parameters themselves (the most frequent
 * write: a flat array of strings and numbers costs the structured clone far less than a call
 * object holding a command object holding a parameter array). Named parameters travel as a Call.
 */
export const PACKED_EXECUTE = 2;
export const PACKED_EXECUTE_FIELDS = 4;

/**
 * The outcome of a cache write, as its answer carries it: for the frequent commands only what
 * varies (put: null; delete: deleted; …), rebuilt by the application's thread from the type it
 * asked for (`outcomeFromReply`); the others as they are. One object less to clone per answer.
 */
export function outcomeToReply(o: CacheOutcome): unknown {
  switch (o.type) {
    case 'put':
    case 'counterSet':
      return null;
    case 'delete':
    case 'counterDelete':
      return o.deleted;
    case 'replace':
      return o.previous;
    case 'putIfAbsent':
      return o.stored;
    case 'getRemove':
    case 'counterAdd':
      return o.value;
    default:
      return o;
  }
}

/** The outcome of a `type` command from its answer (outcomeToReply). */
export function outcomeFromReply(type: CacheCommand['type'], v: unknown): CacheOutcome {
  switch (type) {
    case 'put':
    case 'counterSet':
      return { type };
    case 'delete':
    case 'counterDelete':
      return { type, deleted: v as boolean };
    case 'replace':
      return { type, previous: v as Uint8Array | null };
    case 'putIfAbsent':
      return { type, stored: v as boolean };
    case 'getRemove':
      return { type, value: v as Uint8Array | null };
    case 'counterAdd':
      return { type, value: v as bigint };
    default:
      return v as CacheOutcome;
  }
}

export type ToWorker =
  | { readonly type: 'calls'; readonly calls: readonly Call[] }
  | PackedCalls
  /** The caller's AbortSignal fired for these calls (reads with timeoutMs). */
  | { readonly type: 'abort'; readonly ids: readonly number[] }
  /** StartOptions.signal fired while start() was still running. */
  | { readonly type: 'cancel-start' }
  /** The application took this many notifications of each listener: the node may send more. */
  | { readonly type: 'listen-ack'; readonly acks: ReadonlyArray<readonly [listenId: number, count: number]> }
  /** These listeners stopped. */
  /** The cache mirror applied or dropped this many bytes of entries and chunks (its window). */
  | { readonly type: 'mirror-ack'; readonly bytes: number }
  /** The cache mirror found a gap in `epoch` (or could not read its snapshot): a new epoch, please. */
  | { readonly type: 'mirror-resync'; readonly epoch: number }
  /** The application read a cache locally for the first time: start feeding its mirror. */
  | { readonly type: 'mirror-start' }
  /** A `getLocal` waits for this answer in the synchronous read channel (SYNC_*). */
  | { readonly type: 'sync-read'; readonly seq: number; readonly cache: string; readonly key: string }
  /** The synchronous read channel's buffer from now on (a value did not fit the last one). */
  | { readonly type: 'sync-buffer'; readonly buffer: SharedArrayBuffer };

/**
 * The answers of a turn, flat: REPLY_FIELDS slots per answer (no object per answer to copy):
 * the call's id, its status, and three slots the status gives a meaning:
 * - REPLY_OK: the value, the cache group's applied index after a `cacheWrite` (0 for other
 *   calls), 0;
 * - REPLY_ERROR: the TransferredError, 0, 0;
 * - REPLY_EXECUTED: an SQL write's outcome without rows, as numbers: its log index, rows
 *   affected, last insert rowid (the application's thread rebuilds `{ index, result }`; three
 *   objects less to clone per write).
 */
export type Replies = unknown[];
export const REPLY_FIELDS = 5;
export const REPLY_OK = 0;
export const REPLY_ERROR = 1;
export const REPLY_EXECUTED = 2;

export type NodeEvent =
  /** `dbFile`: the database the application thread reads locally; null on a cache-only node. */
  | { readonly type: 'started'; readonly dbFile: string | null }
  | { readonly type: 'start-failed'; readonly error: TransferredError }
  | { readonly type: 'fatal'; readonly error: TransferredError }
  /** Notifications for one listener, in log order (a `lagged` item ends it). */
  | { readonly type: 'listen'; readonly listenId: number; readonly items: readonly ListenItem[] }
  /** The listener ended on the node (shutdown). */
  | { readonly type: 'listen-end'; readonly listenId: number; readonly error: TransferredError }
  /** The node's cache group was founded anew: the locks held through it are gone. */
  | { readonly type: 'cache-refounded' }
  /** For the cache mirror (cache-mirror-wire.ts), in the order the node applied. */
  | MirrorEvent;

export interface FromWorker {
  /** pino records (JSON lines) to write through the application's logger, in order. */
  readonly logs: readonly string[];
  readonly events: readonly NodeEvent[];
  /** Flat (Replies). */
  readonly replies: Replies;
}
