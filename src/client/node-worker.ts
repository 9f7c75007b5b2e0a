/**
 * The worker thread of an embedded node (`start()` with `thread: 'worker'`): runs the node
 * runtime — Raft group, transport, log store, API port — off the application's event loop, and
 * serves the calls of the application's thread (worker-node.ts). See node-thread-protocol.ts.
 */

import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { backupFeatures } from '../backup/node-features.js';
import type { ListenItem, Subscription } from '../node/cache-listeners.js';
import { transferError } from '../node/error-transfer.js';
import { HiqliteNode as NodeRuntime } from '../node/hiqlite-node.js';
import { dataPaths } from '../node/sqlite-setting.js';
import type { CacheCommand } from '../sm/cache/command.js';
import { cacheErrorFromInfo } from '../sm/cache/errors.js';
import { notificationBytes } from '../sm/cache/notifications.js';
import type { CommandInput, ParamInput } from '../sm/sql/command.js';
import { digestOf } from './cache-mirror.js';
import { MirrorFeed } from './cache-mirror-feed.js';
import {
  APPLIED_SLOT,
  CACHE_REFOUNDS_SLOT,
  type Call,
  CLOCK_OFFSET_PUBLISH_MS,
  CLOCK_OFFSET_SLOT,
  type FromWorker,
  LEADER_SLOT,
  type NodeEvent,
  type NodeWorkerData,
  outcomeToReply,
  PACKED_EXECUTE,
  PACKED_EXECUTE_FIELDS,
  PACKED_KEYED,
  PACKED_KEYED_FIELDS,
  PACKED_KEYED_TYPES,
  PACKED_WRITE,
  PACKED_WRITE_FIELDS,
  PACKED_WRITE_TYPES,
  type PackedCalls,
  REPLY_ERROR,
  REPLY_EXECUTED,
  REPLY_OK,
  type Replies,
  SYNC_ABSENT,
  SYNC_DONE_SEQ,
  SYNC_FAILED,
  SYNC_FOUND,
  SYNC_HEADER_BYTES,
  SYNC_LENGTH,
  SYNC_STATUS,
  SYNC_TOO_LARGE,
  type ToWorker,
} from './node-thread-protocol.js';

const data = workerData as NodeWorkerData;
const port = parentPort as MessagePort;
const applied = new BigInt64Array(data.shared);
const flags = new Int32Array(data.shared);

// What this turn of the event loop produced leaves in one message, after the turn.
let logs: string[] = [];
let events: NodeEvent[] = [];
let replies: Replies = [];
/** Buffers moved, not copied, with the batch (the cache mirror's entries and chunks). */
let transfers: ArrayBuffer[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  const batch: FromWorker = { logs, events, replies };
  const moved = transfers;
  logs = [];
  events = [];
  replies = [];
  transfers = [];
  port.postMessage(batch, moved);
}

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

// Log records go to the application's thread, which writes them through its own logger.
const logger = pino(
  { level: data.logLevel, base: null, timestamp: false },
  {
    write(line: string) {
      logs.push(line);
      scheduleFlush();
    },
  },
);

const startCancel = new AbortController();
let node: NodeRuntime | null = null;
/** Publishes this node's clock offset for the cache mirror (CLOCK_OFFSET_SLOT), once it is fed. */
let clockOffsetTimer: NodeJS.Timeout | null = null;
/** Feeds the application thread's cache mirror (null when it is off, or not asked for yet). */
let feed: MirrorFeed | null = null;
/** The application asked for its mirror (`mirror-start`), possibly before the node started. */
let mirrorWanted = false;
let syncBuffer = data.syncBuffer;
let syncSlots = new Int32Array(syncBuffer, 0, SYNC_HEADER_BYTES / 4);
const aborts = new Map<number, AbortController>();

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'calls':
      for (const call of m.calls) serve(call);
      return;
    case 'packed-calls':
      servePacked(m);
      return;
    case 'abort':
      for (const id of m.ids) aborts.get(id)?.abort();
      return;
    case 'cancel-start':
      startCancel.abort();
      return;
    case 'listen-ack':
      for (const [id, n] of m.acks) listeners.get(id)?.ack(n);
      return;
    case 'mirror-ack':
      feed?.ack(m.bytes);
      return;
    case 'mirror-resync':
      feed?.resyncRequested(m.epoch);
      return;
    case 'mirror-start':
      mirrorWanted = true;
      if (node !== null && data.cacheMirror !== null && feed === null) {
        try {
          startMirrorFeed(node, data.cacheMirror.inflightBytesMax);
        } catch (e) {
          // The node is shutting down (its cache group refuses): no mirror, local reads cross.
          logger.debug({ err: String(e) }, 'the cache mirror was not started');
        }
      }
      return;
    case 'sync-buffer':
      syncBuffer = m.buffer;
      syncSlots = new Int32Array(syncBuffer, 0, SYNC_HEADER_BYTES / 4);
      return;
    case 'sync-read':
      answerSyncRead(m.seq, m.cache, m.key);
      return;
  }
});

/**
 * Writes the node's live entry for a `getLocal` waiting on the application's thread into the
 * synchronous read channel (node-thread-protocol.ts, SYNC_*), then wakes it.
 */
function answerSyncRead(seq: number, cache: string, key: string): void {
  let status = SYNC_FAILED;
  let length = 0;
  try {
    const e = node?.caches.getEntry(cache, key);
    if (e === null) status = SYNC_ABSENT;
    else if (e !== undefined) {
      length = e.value.byteLength;
      if (SYNC_HEADER_BYTES + length > syncBuffer.byteLength) status = SYNC_TOO_LARGE;
      else {
        new Uint8Array(syncBuffer, SYNC_HEADER_BYTES, length).set(e.value);
        status = SYNC_FOUND;
      }
    }
  } catch {
    status = SYNC_FAILED;
  }
  Atomics.store(syncSlots, SYNC_STATUS, status);
  Atomics.store(syncSlots, SYNC_LENGTH, length);
  Atomics.store(syncSlots, SYNC_DONE_SEQ, seq);
  Atomics.notify(syncSlots, SYNC_DONE_SEQ);
}

/**
 * A listener of the application's thread: notifications go over in batches as they come. What
 * the application's thread holds unread (sent, not acknowledged) counts against the node-side
 * subscription's bounds (`holdDownstream`), so the listener as a whole holds at most
 * `cache_listener_buffer_max` notifications and `cache_listener_buffer_bytes_max` of their bytes,
 * as one on the node's thread does; one more and the subscription lags, and its `lagged` item
 * (which says the unread were dropped) goes over at once, not after the application read what
 * it held. (Before, a window of that many on the application's thread came on top of the
 * subscription's own buffer: twice the bound.)
 */
class WorkerListener {
  private inflight = 0;
  /** Bytes of the items sent and not acknowledged, and each one's, in order (acks count items). */
  private inflightBytes = 0;
  private readonly sizes: number[] = [];
  private stopped = false;

  constructor(
    private readonly id: number,
    private readonly sub: Subscription,
  ) {}

  private count(item: ListenItem): void {
    const size = item.kind === 'notification' ? notificationBytes(item.notification) : 0;
    this.inflight++;
    this.inflightBytes += size;
    this.sizes.push(size);
    this.sub.holdDownstream(this.inflight, this.inflightBytes);
  }

  async pump(): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) return;
        const first = await this.sub.next();
        if (this.stopped) return;
        const items = [first];
        this.count(first);
        // The rest of what is queued (bounded by the subscription).
        for (const more of this.sub.drain(Number.MAX_SAFE_INTEGER)) {
          items.push(more);
          this.count(more);
        }
        events.push({ type: 'listen', listenId: this.id, items });
        scheduleFlush();
        if (items.some((i) => i.kind === 'lagged')) return;
      }
    } catch (e) {
      if (!this.stopped) {
        events.push({ type: 'listen-end', listenId: this.id, error: transferError(e) });
        scheduleFlush();
      }
    } finally {
      this.sub.close();
      listeners.delete(this.id);
    }
  }

  ack(n: number): void {
    for (const size of this.sizes.splice(0, n)) this.inflightBytes -= size;
    this.inflight = Math.max(0, this.inflight - n);
    this.sub.holdDownstream(this.inflight, this.inflightBytes);
  }

  stop(): void {
    this.stopped = true;
    this.sub.close();
  }
}

const listeners = new Map<number, WorkerListener>();

function serve(call: Call): void {
  if (call.op === 'cacheWrite') {
    serveCacheWrite(call);
    return;
  }
  if (call.op === 'write') {
    serveWrite(call.id, call.command);
    return;
  }
  run(call).then(
    (value) => answer(call.id, REPLY_OK, value, 0),
    (e: unknown) => answer(call.id, REPLY_ERROR, transferError(e), 0),
  );
}

/** A turn's calls, their small cache writes flat (PackedCalls), served in their order. */
function servePacked(m: PackedCalls): void {
  const { items, values } = m;
  for (let i = 0; i < items.length; ) {
    const item = items[i];
    if (item === PACKED_KEYED) {
      const timeoutMs = items[i + 6] as number;
      serveCacheWrite({
        op: 'cacheWrite',
        id: items[i + 1] as number,
        command: keyedCommand(
          PACKED_KEYED_TYPES[items[i + 2] as number] as (typeof PACKED_KEYED_TYPES)[number],
          items[i + 3] as string,
          items[i + 4] as string,
          items[i + 5] as bigint | null,
        ),
        ...(timeoutMs === -1 ? {} : { timeoutMs }),
      });
      i += 1 + PACKED_KEYED_FIELDS;
      continue;
    }
    if (item === PACKED_EXECUTE) {
      const count = items[i + 4] as number;
      const first = i + 1 + PACKED_EXECUTE_FIELDS;
      serveWrite(items[i + 1] as number, {
        type: 'execute',
        sql: items[i + 2] as string,
        params: items.slice(first, first + count) as ParamInput[],
        returning: items[i + 3] === 1,
      });
      i = first + count;
      continue;
    }
    if (item !== PACKED_WRITE) {
      serve(item as Call);
      i++;
      continue;
    }
    const type = PACKED_WRITE_TYPES[items[i + 2] as number] as (typeof PACKED_WRITE_TYPES)[number];
    const ttlMs = items[i + 7] as number;
    const timeoutMs = items[i + 8] as number;
    const command: CacheCommand = {
      type,
      cache: items[i + 3] as string,
      key: items[i + 4] as string,
      value: new Uint8Array(values, items[i + 5] as number, items[i + 6] as number),
      ...(ttlMs === -1 ? {} : { ttlMs }),
    };
    serveCacheWrite({
      op: 'cacheWrite',
      id: items[i + 1] as number,
      command,
      ...(timeoutMs === -1 ? {} : { timeoutMs }),
    });
    i += 1 + PACKED_WRITE_FIELDS;
  }
}

/** The command of a packed keyed item (PACKED_KEYED). */
function keyedCommand(
  type: (typeof PACKED_KEYED_TYPES)[number],
  name: string,
  key: string,
  n: bigint | null,
): CacheCommand {
  switch (type) {
    case 'delete':
    case 'getRemove':
      return { type, cache: name, key };
    case 'counterAdd':
      return { type, counter: name, key, delta: n as bigint };
    case 'counterSet':
      return { type, counter: name, key, value: n as bigint };
    case 'counterDelete':
      return { type, counter: name, key };
  }
}

/** One answer, in the flat layout of Replies (node-thread-protocol.ts). */
function answer(id: number, status: number, value: unknown, applied: number): void {
  replies.push(id, status, value, applied, 0);
  scheduleFlush();
}

/** An SQL write; its outcome without rows answers as numbers (REPLY_EXECUTED). */
function serveWrite(id: number, command: CommandInput): void {
  const n = node;
  if (n === null) {
    answer(id, REPLY_ERROR, transferError(new Error('call before the node started')), 0);
    return;
  }
  // An async method: whatever it throws arrives as a rejection.
  n.write(command).then(
    (out) => {
      const r = out.result;
      if (r.ok && r.type === 'execute' && r.value.rows === undefined) {
        replies.push(id, REPLY_EXECUTED, out.index, r.value.rowsAffected, r.value.lastInsertRowid);
        scheduleFlush();
      } else answer(id, REPLY_OK, out, 0);
    },
    (e: unknown) => answer(id, REPLY_ERROR, transferError(e), 0),
  );
}

/** The most frequent call, with one promise less than run()'s. */
function serveCacheWrite(call: Extract<Call, { op: 'cacheWrite' }>): void {
  const n = node;
  if (n === null) {
    answer(call.id, REPLY_ERROR, transferError(new Error('call before the node started')), 0);
    return;
  }
  let caches: NodeRuntime['caches'];
  try {
    caches = n.caches; // throws once the node is shutting down
  } catch (e) {
    answer(call.id, REPLY_ERROR, transferError(e), 0);
    return;
  }
  // An async method: whatever it throws arrives as a rejection. The answer reads the group taken
  // above: a write that completes while the node shuts down (it waits for the writes in flight)
  // must not meet the node's getter, which refuses by then (a throw here would end the thread).
  caches.write(call.command, call.timeoutMs === undefined ? {} : { timeoutMs: call.timeoutMs }).then(
    ({ result }) => {
      if (!result.ok) answer(call.id, REPLY_ERROR, transferError(cacheErrorFromInfo(result.error)), 0);
      // Every entry applied so far was handed to the mirror's feed before this answer.
      else answer(call.id, REPLY_OK, outcomeToReply(result.value), caches.sm.appliedIndex());
    },
    (e: unknown) => answer(call.id, REPLY_ERROR, transferError(e), 0),
  );
}

async function run(call: Exclude<Call, { op: 'cacheWrite' | 'write' }>): Promise<unknown> {
  const n = node;
  if (n === null) throw new Error('call before the node started');
  switch (call.op) {
    case 'query': {
      const ac = new AbortController();
      aborts.set(call.id, ac);
      try {
        return await n.query(call.sql, call.params, {
          timeoutMs: call.timeoutMs,
          signal: ac.signal,
          ...(call.consistency === undefined ? {} : { consistency: call.consistency }),
          ...(call.minIndex === undefined ? {} : { minIndex: call.minIndex }),
        });
      } finally {
        aborts.delete(call.id);
      }
    }
    case 'barrier':
      // The read index: a read's minIndex beyond it is refused (worker-node.ts, untilApplied).
      return await n.readBarrier(call.timeoutMs);
    case 'metrics':
      return n.metrics();
    case 'backup':
      return n.backup();
    case 'removeNode':
      return n.removeNode(call.nodeId, call.timeoutMs);
    case 'health':
      await n.waitUntilHealthy(call.timeoutMs);
      return null;
    case 'shutdown':
      Atomics.store(flags, LEADER_SLOT, 0);
      if (clockOffsetTimer !== null) clearInterval(clockOffsetTimer);
      feed?.close();
      await n.shutdown();
      return null;
    case 'cacheBarrier':
      await n.caches.readBarrier(call.timeoutMs);
      return n.caches.sm.appliedIndex();
    case 'cacheDigest':
      return digestOf(n.caches.sm);
    case 'cacheRead':
      return n.caches.read(call.read, call.consistency);
    case 'cacheLock': {
      const ac = new AbortController();
      aborts.set(call.id, ac);
      try {
        return await n.caches.lock(call.request, ac.signal);
      } finally {
        aborts.delete(call.id);
      }
    }
    case 'listen': {
      const l = new WorkerListener(call.listenId, n.caches.subscribe({ channel: call.channel }));
      listeners.set(call.listenId, l);
      void l.pump();
      return null;
    }
    case 'unlisten':
      listeners.get(call.listenId)?.stop();
      return null;
  }
}

function publishApplied(index: number): void {
  Atomics.store(applied, APPLIED_SLOT, BigInt(index));
  Atomics.notify(applied, APPLIED_SLOT);
}

async function main(): Promise<void> {
  try {
    const n = await NodeRuntime.start(
      data.config,
      {
        logger,
        signal: startCancel.signal,
        thread: 'main',
        ...(data.joinTimeoutMs === undefined ? {} : { joinTimeoutMs: data.joinTimeoutMs }),
        onFatal: (e) => {
          // A stopped node leads nothing: the application's isLeader() says so from now on.
          Atomics.store(flags, LEADER_SLOT, 0);
          events.push({ type: 'fatal', error: transferError(e) });
          scheduleFlush();
        },
      },
      backupFeatures,
    );
    node = n;
    // The SQL group's applied index, for local reads with minIndex (none on a cache-only node).
    n.appliedWatcher?.onAdvance(publishApplied);
    if (n.appliedWatcher !== null) publishApplied(n.appliedWatcher.current);
    n.onLeaderChange((s) => Atomics.store(flags, LEADER_SLOT, s.role === 'leader' ? 1 : 0));
    // Counted first: a lock whose `lost` is read before the event arrives sees it already.
    n.caches.onRefound(() => {
      Atomics.add(flags, CACHE_REFOUNDS_SLOT, 1);
      events.push({ type: 'cache-refounded' });
      scheduleFlush();
    });
    Atomics.store(flags, LEADER_SLOT, n.isLeader() ? 1 : 0);
    // The mirror is fed from the application's first local read on (mirror-start): until then
    // a node whose application never reads locally applies nothing twice.
    if (data.cacheMirror !== null && mirrorWanted) startMirrorFeed(n, data.cacheMirror.inflightBytesMax);
    events.push({ type: 'started', dbFile: n.cfg.sqlite ? dataPaths(n.cfg).dbFile : null });
  } catch (e) {
    events.push({ type: 'start-failed', error: transferError(e) });
  }
  scheduleFlush();
}

/** Starts the mirror's feed, and the clock offset it judges expiry by (CLOCK_OFFSET_SLOT). */
function startMirrorFeed(n: NodeRuntime, inflightBytesMax: number): void {
  const caches = n.caches; // throws once the node is shutting down: before anything starts
  const publishOffset = () =>
    Atomics.store(applied, CLOCK_OFFSET_SLOT, BigInt(Math.round(n.clockOffsetMs())));
  publishOffset();
  if (clockOffsetTimer !== null) clearInterval(clockOffsetTimer);
  clockOffsetTimer = setInterval(publishOffset, CLOCK_OFFSET_PUBLISH_MS);
  clockOffsetTimer.unref();
  const f = new MirrorFeed({
    sm: caches.sm,
    inflightBytesMax,
    post: (event, transfer) => {
      events.push(event);
      if (transfer !== null) transfers.push(transfer);
      scheduleFlush();
    },
    onError: (e) =>
      logger.error({ err: String(e) }, 'the cache mirror feed failed; local cache reads cross threads'),
  });
  caches.observe(f);
  feed = f;
  f.start();
}

void main();
