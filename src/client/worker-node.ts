/**
 * An embedded node whose runtime (Raft group, transport, log store, API port) runs on a worker
 * thread of its own (node-worker.ts), so that an application that blocks its event loop — a long
 * synchronous query, a big JSON.parse, a full GC — does not stop heartbeats and depose its own
 * leader. This object is the application's side of it:
 *
 * - Local reads run here, synchronously, on a read-only connection to the same database file
 *   (WAL): no thread hop. A `minIndex` wait reads the applied index from shared memory
 *   (Atomics.waitAsync, bounded by the read's deadline).
 * - Writes, linearizable barriers, reads with `timeoutMs` (on the node's read pool, where they
 *   can be interrupted at their limit or by their `signal`), metrics and health cross to the worker over its MessagePort:
 *   what the application calls in one turn of its event loop leaves in one message.
 * - Every call in flight has a deadline and there are at most `threadCallsMax` of them; a worker
 *   that exits rejects them all (writes with HQL_OUTCOME_UNKNOWN, also after close(): they reached
 *   the node; the others with HQL_UNAVAILABLE, or HQL_CLOSED after close()).
 * - Errors keep their class and fields (node/error-transfer.ts); the worker's log records are
 *   written through the application's logger; `onFatal` is called on this thread.
 */

import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { type Logger, pino } from 'pino';
import { whenAborted } from '../lib/abort.js';
import { copyParams } from '../lib/copy-params.js';
import { abortedError, HiqliteError, outcomeUnknown } from '../lib/errors.js';
import { inTime } from '../lib/in-time.js';
import type { ListenItem } from '../node/cache-listeners.js';
import type { NodeConfig, ResolvedNodeConfig } from '../node/config/config.js';
import { nodeThreadHeapLimits, resolveConfig } from '../node/config/config.js';
import { cacheLimitsOf } from '../node/config/config-keys.js';
import { rebuildError, type TransferredError } from '../node/error-transfer.js';
import type { ClusterMembership, QueryOptions, StartOptions } from '../node/hiqlite-node.js';
import { logLevelFromEnv } from '../node/log-level.js';
import type { BackupInfo } from '../node/node-features.js';
import { sqliteDisabledError } from '../node/sqlite-setting.js';
import { systemClock } from '../node/system-clock.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import { AppliedIndexWatcher } from '../sm/sql/applied-watch.js';
import type { CommandInput, ExecuteCommand, ParamInput } from '../sm/sql/command.js';
import { sqlError } from '../sm/sql/errors.js';
import { interruptAllOnExit } from '../sm/sql/interrupt.js';
import { untilAppliedIndex } from '../sm/sql/read-your-writes.js';
import { type QueryParams, SqlReader } from '../sm/sql/reader.js';
import type { CommandResult, StatementOutcome } from '../sm/sql/result.js';
import type { Row } from '../sm/sql/values.js';
import { type ThreadHeapLimits, workerResourceLimits } from '../sm/sql/worker-client.js';
import { extraArgsError, healthTimeoutArg, noExtraArgs } from './args.js';
import type {
  CacheCallOptions,
  CacheConsistency,
  CacheRead,
  CacheReadValue,
  ListenSource,
  LockGrantInfo,
  LockRequest,
} from './cache-client.js';
import type { LocalCacheEntry } from './cache-local-values.js';
import { CacheMirror, type CacheMirrorStatus } from './cache-mirror.js';
import { ClientBase, type Metrics, type Params } from './client.js';
import type { HiqliteNode } from './embedded.js';
import {
  APPLIED_SLOT,
  CACHE_REFOUNDS_SLOT,
  type Call,
  type CallBody,
  CLOCK_OFFSET_SLOT,
  type FromWorker,
  LEADER_SLOT,
  type NodeEvent,
  type NodeWorkerData,
  outcomeFromReply,
  PACKED_EXECUTE,
  PACKED_KEYED,
  PACKED_KEYED_TYPES,
  PACKED_WRITE,
  PACKED_WRITE_TYPES,
  type PackedCalls,
  REPLY_EXECUTED,
  REPLY_FIELDS,
  REPLY_OK,
  SHARED_BYTES,
  SYNC_ABSENT,
  SYNC_BUFFER_BYTES_INITIAL,
  SYNC_DONE_SEQ,
  SYNC_FOUND,
  SYNC_HEADER_BYTES,
  SYNC_LENGTH,
  SYNC_STATUS,
  SYNC_TOO_LARGE,
  type ToWorker,
} from './node-thread-protocol.js';

/** A backup of a large database takes minutes. */
const BACKUP_CALL_TIMEOUT_MS = 3_600_000;

export const THREAD_CALLS_MAX_DEFAULT = 10_000;
export const CACHE_MIRROR_INFLIGHT_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/**
 * A call's deadline is the node's own limit for it plus this margin: the node answers first
 * (with its own typed error) unless its thread is gone or stuck. Not a limit users tune.
 */
const DEADLINE_MARGIN_MS = 5_000;
/** How often deadlines are checked while calls are in flight. */
const SWEEP_INTERVAL_MS = 1_000;

interface Pending {
  readonly op: CallBody['op'];
  readonly deadlineMs: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: unknown) => void;
  readonly cleanup: (() => void) | null;
}

type WaitAsync = (
  a: BigInt64Array,
  index: number,
  value: bigint,
  timeoutMs: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** `start()` with `thread: 'worker'`: resolves once the node is a member of the cluster. */
export async function startInWorker(config: NodeConfig, options: StartOptions): Promise<HiqliteNode> {
  if (options.clock !== undefined) {
    throw new HiqliteError('HQL_INVALID_CONFIG', "StartOptions.clock needs thread: 'main'", {
      retryable: false,
    });
  }
  const callsMax = options.threadCallsMax ?? THREAD_CALLS_MAX_DEFAULT;
  if (!(Number.isSafeInteger(callsMax) && callsMax > 0)) {
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `threadCallsMax must be a positive integer, got ${callsMax}`,
      {
        retryable: false,
      },
    );
  }
  const mirrorBytesMax = options.cacheMirrorInflightBytesMax ?? CACHE_MIRROR_INFLIGHT_BYTES_MAX_DEFAULT;
  if (!(Number.isSafeInteger(mirrorBytesMax) && mirrorBytesMax >= 1024 * 1024)) {
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `cacheMirrorInflightBytesMax must be an integer of at least 1 MiB, got ${mirrorBytesMax}`,
      { retryable: false },
    );
  }
  // Configuration problems are reported here, before a thread starts.
  const cfg = resolveConfig(config);
  // Quiet by default, as in the node itself: HQL_LOG_LEVEL or the application's logger.
  const logger = options.logger ?? pino({ level: logLevelFromEnv('warn') });
  const shared = new SharedArrayBuffer(SHARED_BYTES);
  const syncBuffer = new SharedArrayBuffer(SYNC_BUFFER_BYTES_INITIAL);
  const data: NodeWorkerData = {
    config,
    logLevel: logger.level,
    shared,
    syncBuffer,
    cacheMirror: options.cacheMirror === false ? null : { inflightBytesMax: mirrorBytesMax },
    ...(options.joinTimeoutMs === undefined ? {} : { joinTimeoutMs: options.joinTimeoutMs }),
  };
  // process.exit() on this thread ends the process: statements still running on the node's
  // threads (a wedged apply) are interrupted, or Node would wait for them (interrupt.ts).
  interruptAllOnExit();
  const node = new WorkerNode(
    spawnNodeWorker(data, nodeThreadHeapLimits(cfg)),
    cfg,
    logger,
    shared,
    callsMax,
    options.onFatal,
    data.cacheMirror !== null,
    syncBuffer,
  );
  const { signal } = options;
  const stopListening = whenAborted(signal, () => node.cancelStart());
  try {
    await node.started;
  } finally {
    stopListening();
  }
  // Cancelled after the node's thread had finished starting (its cancel came too late there):
  // not handed out running, as on the application's thread (HiqliteNode.start).
  if (signal?.aborted === true) {
    await node.close().catch(() => {});
    throw abortedError(`start of node ${cfg.nodeId} was cancelled`);
  }
  return node;
}

/** The thread of a node started with `thread: 'worker'`, or null (tests end it to see the client's side). */
export function nodeThreadOf(node: HiqliteNode): Worker | null {
  return node instanceof WorkerNode ? node.thread : null;
}

/**
 * For tests and diagnostics: the cache mirror's status and, with `digest`, sha256 digests of the
 * mirror's state and of the node thread's (equal when both applied the same log; taken at the
 * index each stands at). Null when the node is not on a worker thread or the mirror is off.
 */
export async function cacheMirrorOf(
  node: HiqliteNode,
  options: { digest?: boolean } = {},
): Promise<{
  status: CacheMirrorStatus;
  mirror?: { index: number; sha256: string };
  node?: { index: number; sha256: string };
} | null> {
  if (!(node instanceof WorkerNode)) return null;
  return node.mirrorReport(options.digest === true);
}

/**
 * As spawnModuleWorker (sm/sql/worker-client.ts): tsx is registered inside the worker first. The
 * node's garbage is short-lived and plentiful (messages, frames, decoded entries): its young
 * generation (`nodeThreadYoungGenerationMb`, 16 MB) is larger than the writer's and the read
 * threads' (4 MB collected it so often that a write cost a third more CPU); an old generation limit under 2 GB (`threadOldGenerationMaxMb`) makes V8 collect its old
 * generation at twice its live data instead of four times (worker-client.ts). A thread that runs
 * out of it ends with ERR_WORKER_OUT_OF_MEMORY: the node is gone and `onFatal` is called.
 */
function spawnNodeWorker(data: NodeWorkerData, heap: ThreadHeapLimits): Worker {
  const here = import.meta.url;
  const options = { workerData: data, resourceLimits: workerResourceLimits(heap) };
  if (here.endsWith('.ts')) {
    const entry = new URL('./node-worker.ts', here).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(bootstrap, { eval: true, ...options });
  }
  return new Worker(new URL('./node-worker.js', here), options);
}

class WorkerNode extends ClientBase implements HiqliteNode {
  readonly started: Promise<void>;
  private reader: SqlReader | null = null;
  /** Mirrors the shared applied index for the reader's schema check. */
  private readonly applied: AppliedIndexWatcher;
  private readonly appliedShared: BigInt64Array;
  private readonly flags: Int32Array;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outCalls: Call[] = [];
  private outAborts: number[] = [];
  private outAcks = new Map<number, number>();
  private readonly listens = new Map<number, WorkerListenSource>();
  /** Hooks of the cache API: the node's cache group was founded anew (cache-refounded). */
  private readonly refoundHooks = new Set<() => void>();
  private nextListenId = 1;
  private flushScheduled = false;
  /** flush() is applying the mirror's pending entries (their acknowledgements leave in the same flush). */
  private draining = false;
  private readonly sweep: NodeJS.Timeout;
  private appliedWaits = 0;
  /** Set once the worker is gone: every call is refused with it. */
  private gone: Error | null = null;
  private fatalReported = false;
  /** Why the thread failed (its 'error' event), before it exited. */
  private failure: HiqliteError | null = null;
  private closing: Promise<void> | null = null;
  /** shutdown(): the held locks released, then the node closed (`closing`). */
  private stopping: Promise<void> | null = null;
  private readonly exited: Promise<void>;
  private settleStart: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private readonly log: Logger;
  /** The cache group's replica on this thread (cache-mirror.ts), or null when it is off. */
  private readonly mirror: CacheMirror | null;
  private outMirrorAckBytes = 0;
  private outMirrorResync: number | null = null;

  constructor(
    private readonly worker: Worker,
    private readonly cfg: ResolvedNodeConfig,
    private readonly logger: Logger,
    shared: SharedArrayBuffer,
    private readonly callsMax: number,
    private readonly onFatal: ((e: Error) => void) | undefined,
    cacheMirror: boolean,
    syncBuffer: SharedArrayBuffer,
  ) {
    super();
    this.syncBuffer = syncBuffer;
    this.syncSlots = new Int32Array(syncBuffer, 0, SYNC_HEADER_BYTES / 4);
    this.log = logger.child({ node: cfg.nodeId });
    const offsetShared = new BigInt64Array(shared);
    this.mirror = cacheMirror
      ? new CacheMirror({
          limits: cacheLimitsOf(cfg),
          ack: (bytes) => {
            this.outMirrorAckBytes += bytes;
            this.scheduleFlush();
          },
          resync: (epoch) => {
            this.outMirrorResync = epoch;
            this.scheduleFlush();
          },
          onProblem: (message) => this.log.warn(message),
          // Expiry by the cluster's clock, as on the node's thread (CLOCK_OFFSET_SLOT).
          clock: {
            monotonicMs: () => performance.now(),
            wallMs: () => Date.now() - Number(Atomics.load(offsetShared, CLOCK_OFFSET_SLOT)),
          },
        })
      : null;
    this.appliedShared = new BigInt64Array(shared);
    this.flags = new Int32Array(shared);
    this.applied = new AppliedIndexWatcher(0);
    this.started = new Promise<void>((resolve, reject) => {
      this.settleStart = { resolve, reject };
    });
    worker.on('message', (m: FromWorker) => this.onBatch(m));
    worker.on('error', (e) => {
      this.log.error({ err: e.message }, "the node's thread failed");
      // Uncaught in the thread, or ERR_WORKER_OUT_OF_MEMORY (threadOldGenerationMaxMb): the exit
      // follows, and every call from then on gets this reason.
      this.failure = new HiqliteError('HQL_UNAVAILABLE', `the node's thread failed: ${e.message}`, {
        retryable: false,
        cause: e,
      });
      this.reportFatal(this.failure);
    });
    this.exited = new Promise<void>((resolve) => {
      worker.once('exit', (code) => {
        this.onExit(code);
        resolve();
      });
    });
    this.sweep = setInterval(() => this.expire(), SWEEP_INTERVAL_MS);
    this.sweep.unref();
    this.hideFields();
  }

  get nodeId(): number {
    return this.cfg.nodeId;
  }

  protected override describe(): Record<string, unknown> {
    return { nodeId: this.cfg.nodeId, thread: 'worker' };
  }

  get thread(): Worker {
    return this.worker;
  }

  cancelStart(): void {
    this.post({ type: 'cancel-start' });
  }

  // ---------------------------------------------------------------------------------------------
  // The client API
  // ---------------------------------------------------------------------------------------------

  protected write(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    return this.call({ op: 'write', command }, this.cfg.proposalTimeoutMs) as Promise<{
      index: number;
      result: CommandResult;
    }>;
  }

  protected async read(sql: string, params: Params, options: QueryOptions): Promise<Row[]> {
    this.checkOpen();
    if (!this.cfg.sqlite) throw sqliteDisabledError(this.cfg.nodeId, 'query');
    const { timeoutMs, signal, consistency, minIndex } = options;
    if (timeoutMs !== undefined || signal !== undefined) {
      // On the node's read pool, as on the caller's thread: a statement there can be interrupted
      // at its limit (a signal alone: the node's query_timeout_ms) or by its signal.
      if (signal?.aborted === true) throw abortedError('the query was cancelled');
      const limitMs = timeoutMs ?? this.cfg.queryTimeoutMs;
      const body: CallBody = {
        op: 'query',
        sql,
        params: params as QueryParams,
        timeoutMs: limitMs,
        ...(consistency === undefined ? {} : { consistency }),
        ...(minIndex === undefined ? {} : { minIndex }),
      };
      const waitMs = Number.isFinite(limitMs) && limitMs > 0 ? limitMs : this.cfg.readTimeoutMs;
      return this.call(body, waitMs, signal) as Promise<Row[]>;
    }
    if (this.cfg.logStatements) this.log.info({ sql, params, consistency: consistency ?? 'local' }, 'query');
    const deadlineMs = performance.now() + this.cfg.readTimeoutMs;
    if (consistency === 'linearizable')
      await this.call({ op: 'barrier', timeoutMs: this.cfg.readTimeoutMs }, this.cfg.readTimeoutMs);
    if (minIndex !== undefined) await this.untilApplied(minIndex, deadlineMs);
    this.checkOpen();
    this.applied.advance(Number(Atomics.load(this.appliedShared, APPLIED_SLOT)));
    return (this.reader as SqlReader).query(sql, params as QueryParams);
  }

  metrics(...extra: []): Promise<Metrics> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'metrics', '()'));
    return this.call({ op: 'metrics' }, this.cfg.readTimeoutMs) as Promise<Metrics>;
  }

  protected takeBackup(): Promise<BackupInfo> {
    return this.call({ op: 'backup' }, BACKUP_CALL_TIMEOUT_MS) as Promise<BackupInfo>;
  }

  protected removeMember(nodeId: number, timeoutMs: number | undefined): Promise<ClusterMembership> {
    // Both groups, each up to its deadline (the node's proposal_timeout_ms by default).
    const waitMs = 2 * (timeoutMs ?? this.cfg.proposalTimeoutMs);
    return this.call(
      { op: 'removeNode', nodeId, ...(timeoutMs === undefined ? {} : { timeoutMs }) },
      waitMs,
    ) as Promise<ClusterMembership>;
  }

  // The cache group lives on the node's thread: writes, locks and listeners cross over (batched
  // per turn). Local reads are served by the mirror on this thread while it is live.
  override async cacheWrite(command: CacheCommand, options: CacheCallOptions = {}): Promise<CacheOutcome> {
    if (options.signal?.aborted === true) throw abortedError('the cache call was aborted');
    const body: CallBody = {
      op: 'cacheWrite',
      command,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
    // Read-your-writes: onBatch checks the mirror against the applied index of the answer.
    return outcomeFromReply(command.type, await this.call(body, this.cfg.proposalTimeoutMs));
  }

  override cacheRead(read: CacheRead, consistency: CacheConsistency): Promise<CacheReadValue> {
    const mirror = this.mirror;
    this.startMirror();
    if (mirror === null) {
      return this.call(
        { op: 'cacheRead', read, consistency },
        this.cfg.readTimeoutMs,
      ) as Promise<CacheReadValue>;
    }
    if (consistency === 'local') {
      if (mirror.live) {
        try {
          this.checkOpen();
          return Promise.resolve(mirror.read(read));
        } catch (e) {
          return Promise.reject(e);
        }
      }
      return this.call(
        { op: 'cacheRead', read, consistency },
        this.cfg.readTimeoutMs,
      ) as Promise<CacheReadValue>;
    }
    return this.linearizableCacheRead(mirror, read);
  }

  cacheRefounds(): number {
    return Atomics.load(this.flags, CACHE_REFOUNDS_SLOT);
  }

  onCacheRefound(hook: () => void): void {
    this.refoundHooks.add(hook);
  }

  override cacheLocalEntry(cache: string, key: string): LocalCacheEntry | null {
    const mirror = this.mirror;
    if (mirror === null)
      throw new HiqliteError(
        'HQL_UNAVAILABLE',
        'getLocal needs the cache mirror (the start option cacheMirror: true) with the node on its own thread; use await get()',
        { retryable: false },
      );
    this.checkOpen();
    this.startMirror();
    return mirror.live ? mirror.entry(cache, key) : this.syncLocalEntry(cache, key);
  }

  /** The mirror is fed from the first local read on (a node whose application never reads pays nothing). */
  private startMirror(): void {
    if (this.mirror === null || this.mirrorStarted) return;
    this.mirrorStarted = true;
    this.post({ type: 'mirror-start' });
  }

  private mirrorStarted = false;
  private syncBuffer: SharedArrayBuffer;
  private syncSlots: Int32Array;
  private syncSeq = 0;

  /**
   * `getLocal` while the mirror is not live (not asked for before, starting, rebuilt from a
   * snapshot): the node thread's entry, read synchronously. This thread posts the key and waits
   * (Atomics.wait, at most `read_timeout_ms`) until the node's thread has written the answer into
   * the shared buffer (node-thread-protocol.ts, SYNC_*): about a round trip between the threads,
   * with this thread's event loop blocked meanwhile.
   */
  private syncLocalEntry(cache: string, key: string): LocalCacheEntry | null {
    const deadlineMs = performance.now() + this.cfg.readTimeoutMs;
    // Bounded: a value too large for the buffer gets one that fits, and the read is asked again
    // (twice at most: the value may have grown meanwhile, once more).
    for (let attempt = 0; attempt < 3; attempt++) {
      this.syncSeq = this.syncSeq >= 0x7fffffff ? 1 : this.syncSeq + 1;
      const seq = this.syncSeq;
      this.post({ type: 'sync-read', seq, cache, key });
      // Bounded by the deadline.
      for (;;) {
        const done = Atomics.load(this.syncSlots, SYNC_DONE_SEQ);
        if (done === seq) break;
        const leftMs = deadlineMs - performance.now();
        if (leftMs <= 0 || this.gone !== null)
          throw new HiqliteError(
            'HQL_TIMEOUT',
            `getLocal: the node's thread did not answer within ${this.cfg.readTimeoutMs} ms (read_timeout_ms)`,
            { retryable: true },
          );
        Atomics.wait(this.syncSlots, SYNC_DONE_SEQ, done, leftMs);
      }
      const status = Atomics.load(this.syncSlots, SYNC_STATUS);
      const length = Atomics.load(this.syncSlots, SYNC_LENGTH);
      if (status === SYNC_ABSENT) return null;
      if (status === SYNC_FOUND) {
        // A copy: the buffer is reused by the next read.
        const value = new Uint8Array(this.syncBuffer, SYNC_HEADER_BYTES, length).slice();
        return { value, expiresAtMs: null, decoded: undefined };
      }
      if (status !== SYNC_TOO_LARGE) break;
      let bytes = this.syncBuffer.byteLength;
      while (bytes < SYNC_HEADER_BYTES + length) bytes *= 2;
      this.syncBuffer = new SharedArrayBuffer(bytes);
      this.syncSlots = new Int32Array(this.syncBuffer, 0, SYNC_HEADER_BYTES / 4);
      this.post({ type: 'sync-buffer', buffer: this.syncBuffer });
    }
    throw new HiqliteError(
      'HQL_UNAVAILABLE',
      "getLocal: the node's thread could not read its cache (it is starting or stopping); await get() meanwhile",
      { retryable: true },
    );
  }

  /**
   * ReadIndex on the node's thread, then the read here once the mirror applied up to what the
   * node had applied after it (already so when the mirror is live: entries come before answers);
   * on the node's thread if the mirror is not live by then.
   */
  private async linearizableCacheRead(mirror: CacheMirror, read: CacheRead): Promise<CacheReadValue> {
    const deadlineMs = performance.now() + this.cfg.readTimeoutMs;
    const applied = (await this.call(
      { op: 'cacheBarrier', timeoutMs: this.cfg.readTimeoutMs },
      this.cfg.readTimeoutMs,
    )) as number;
    this.checkOpen();
    if (await mirror.waitFor(applied, deadlineMs)) return mirror.read(read);
    // The node applied at least `applied`: a local read there is linearizable.
    return (await this.call(
      { op: 'cacheRead', read, consistency: 'local' },
      this.cfg.readTimeoutMs,
    )) as CacheReadValue;
  }

  /** cacheMirrorOf(): the mirror's status and, if asked, both states' digests. */
  async mirrorReport(digest: boolean): Promise<{
    status: CacheMirrorStatus;
    mirror?: { index: number; sha256: string };
    node?: { index: number; sha256: string };
  } | null> {
    const mirror = this.mirror;
    if (mirror === null) return null;
    if (!digest) return { status: mirror.status() };
    const node = (await this.call({ op: 'cacheDigest' }, this.cfg.readTimeoutMs)) as {
      index: number;
      sha256: string;
    };
    return { status: mirror.status(), mirror: await mirror.digest(), node };
  }

  override cacheLock(request: LockRequest, signal?: AbortSignal): Promise<LockGrantInfo | null> {
    // The wait is the node's: until the grant, waitMs or the signal (plus a write's deadline).
    const waitMs = (request.waitMs ?? Number.POSITIVE_INFINITY) + this.cfg.proposalTimeoutMs * 2;
    return this.call({ op: 'cacheLock', request }, waitMs, signal) as Promise<LockGrantInfo | null>;
  }

  override cacheListen(channel: string | null): ListenSource {
    this.checkOpen();
    const id = this.nextListenId++;
    const source = new WorkerListenSource(
      (n) => {
        this.outAcks.set(id, (this.outAcks.get(id) ?? 0) + n);
        this.scheduleFlush();
      },
      () => {
        if (!this.listens.delete(id) || this.gone !== null || this.closing !== null) return Promise.resolve();
        // Resolved when the node dropped it, or failed (the node's thread is gone: so is it; a
        // client being closed ends every listener with the node).
        try {
          return this.call({ op: 'unlisten', listenId: id }, this.cfg.readTimeoutMs).then(
            () => {},
            () => {},
          );
        } catch {
          return Promise.resolve();
        }
      },
    );
    this.listens.set(id, source);
    this.call({ op: 'listen', listenId: id, channel }, this.cfg.readTimeoutMs).catch((e: unknown) => {
      this.listens.delete(id);
      source.end(e as Error);
    });
    return source;
  }

  protected async awaitHealthy(options: { timeoutMs?: number }): Promise<void> {
    const timeoutMs = healthTimeoutArg(options);
    await this.call({ op: 'health', timeoutMs }, timeoutMs);
  }

  isLeader(...extra: []): boolean {
    noExtraArgs(extra, 'isLeader', '()');
    return this.gone === null && this.closing === null && Atomics.load(this.flags, LEADER_SLOT) === 1;
  }

  shutdown(): Promise<void> {
    // The held locks are released while the node still takes calls; then it closes.
    if (this.stopping === null)
      this.stopping = this.beginClose().then(() => {
        if (this.closing === null) this.closing = this.doClose();
        return this.closing;
      });
    return this.stopping;
  }

  close(): Promise<void> {
    return this.shutdown();
  }

  // ---------------------------------------------------------------------------------------------
  // Calls to the worker
  // ---------------------------------------------------------------------------------------------

  private call(body: CallBody, waitMs: number, signal?: AbortSignal): Promise<unknown> {
    if (body.op !== 'shutdown') this.checkOpen();
    // A listener's close is never refused: it frees a slot on the node (bounded by
    // cache_listeners_max), and refused it would leave the listener there for good.
    if (body.op !== 'unlisten' && this.pending.size >= this.callsMax) {
      return Promise.reject(
        new HiqliteError(
          'HQL_OVERLOADED',
          `more than ${this.callsMax} calls are in flight to the node's thread`,
          {
            retryable: true,
          },
        ),
      );
    }
    // What the caller passed now, not at the end of the turn when the call leaves: a caller that
    // reuses its parameter array or Buffer right after the call (without awaiting it) must not
    // change what is written or read, as with the node on this thread or a remote client (found:
    // a Buffer refilled after execute() was written refilled). Cache writes carry a fresh copy
    // of their value already (encodeCacheValue).
    let sent: CallBody = body;
    if (body.op === 'write' || body.op === 'query') {
      try {
        sent = callCopy(body);
      } catch (e) {
        if (!isDataCloneError(e)) throw e;
        return Promise.reject(notSendable(body.op, e));
      }
    }
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      // Aborted already: after the call is registered below (abort() needs it).
      const cleanup =
        signal === undefined ? null : whenAborted(signal, () => queueMicrotask(() => this.abort(id)));
      this.pending.set(id, {
        op: body.op,
        deadlineMs: performance.now() + waitMs + DEADLINE_MARGIN_MS,
        resolve,
        reject,
        cleanup,
      });
      this.outCalls.push({ ...sent, id } as Call);
      this.scheduleFlush();
    });
  }

  private abort(id: number): void {
    if (!this.pending.has(id)) return;
    this.outAborts.push(id);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.draining) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outCalls.length > 0) {
      const calls = this.outCalls;
      this.outCalls = [];
      this.postCalls(calls);
    }
    if (this.outAborts.length > 0) {
      const ids = this.outAborts;
      this.outAborts = [];
      this.post({ type: 'abort', ids });
    }
    if (this.outAcks.size > 0) {
      const acks = [...this.outAcks];
      this.outAcks = new Map();
      this.post({ type: 'listen-ack', acks });
    }
    // The mirror applies the entries that came with the last answers now, after the calls those
    // answers led to are on their way to the node's thread (cache-mirror.ts, drain()).
    if (this.mirror?.hasPending === true) {
      this.draining = true;
      try {
        this.mirror.drain();
      } finally {
        this.draining = false;
      }
    }
    if (this.outMirrorAckBytes > 0) {
      const bytes = this.outMirrorAckBytes;
      this.outMirrorAckBytes = 0;
      this.post({ type: 'mirror-ack', bytes });
    }
    if (this.outMirrorResync !== null) {
      const epoch = this.outMirrorResync;
      this.outMirrorResync = null;
      this.post({ type: 'mirror-resync', epoch });
    }
  }

  private post(m: ToWorker): void {
    if (this.gone === null) this.worker.postMessage(m);
  }

  /**
   * Posts a turn's calls. A call holding what cannot cross threads (a function, a symbol, an
   * object with one inside) fails alone with HQL_INVALID_PARAMS; the others of its turn go on.
   * (Before, the DataCloneError was thrown in this callback and ended the application.)
   */
  private postCalls(calls: Call[]): void {
    try {
      const packed = packCalls(calls);
      if (packed === null) this.post({ type: 'calls', calls });
      else if (this.gone === null) this.worker.postMessage(packed, [packed.values]);
      return;
    } catch (e) {
      if (!isDataCloneError(e)) throw e;
    }
    for (const c of calls) {
      try {
        this.post({ type: 'calls', calls: [c] });
      } catch (e) {
        if (!isDataCloneError(e)) throw e;
        const p = this.pending.get(c.id);
        if (p === undefined) continue;
        this.settle(c.id, p);
        p.reject(notSendable(c.op, e));
      }
    }
  }

  private onBatch(m: FromWorker): void {
    for (const line of m.logs) this.forwardLog(line);
    for (const e of m.events) this.onEvent(e);
    if (this.mirror?.hasPending === true) this.scheduleFlush();
    const r = m.replies;
    for (let i = 0; i < r.length; i += REPLY_FIELDS) {
      const id = r[i] as number;
      const p = this.pending.get(id);
      if (p === undefined) continue; // expired meanwhile
      this.settle(id, p);
      const status = r[i + 1];
      if (status === REPLY_OK) {
        // Read-your-writes: the entries the node applied came before its answer.
        if (p.op === 'cacheWrite') this.mirror?.checkAfterAnswer(r[i + 3] as number);
        p.resolve(r[i + 2]);
      } else if (status === REPLY_EXECUTED) {
        const value: StatementOutcome = {
          rowsAffected: r[i + 3] as number,
          lastInsertRowid: r[i + 4] as number | bigint,
        };
        p.resolve({ index: r[i + 2] as number, result: { ok: true, type: 'execute', value } });
      } else p.reject(rebuildError(r[i + 2] as TransferredError));
    }
  }

  private onEvent(e: NodeEvent): void {
    switch (e.type) {
      case 'started':
        try {
          this.reader = e.dbFile === null ? null : SqlReader.open(e.dbFile, { applied: this.applied });
          this.settleStart?.resolve();
        } catch (err) {
          this.settleStart?.reject(err);
          void this.shutdown();
        }
        this.settleStart = null;
        return;
      case 'start-failed':
        this.settleStart?.reject(rebuildError(e.error));
        this.settleStart = null;
        void this.worker.terminate();
        return;
      case 'fatal':
        this.reportFatal(rebuildError(e.error));
        return;
      case 'listen':
        this.listens.get(e.listenId)?.push(e.items);
        return;
      case 'listen-end': {
        const l = this.listens.get(e.listenId);
        this.listens.delete(e.listenId);
        l?.end(rebuildError(e.error));
        return;
      }
      case 'cache-refounded':
        for (const hook of this.refoundHooks) hook();
        return;
      case 'mirror-snapshot':
      case 'mirror-chunk':
      case 'mirror-snapshot-end':
      case 'mirror-entries':
      case 'mirror-lost':
        this.mirror?.onEvent(e);
        return;
    }
  }

  /** StartOptions.onFatal, once: the node stopped serving (or its thread ended unasked). */
  private reportFatal(e: Error): void {
    if (this.fatalReported || this.settleStart !== null) return;
    this.fatalReported = true;
    this.onFatal?.(e);
  }

  /** A pino record of the worker, written through the application's logger at its level. */
  private forwardLog(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, ...fields } = record;
    const label = typeof level === 'number' ? this.logger.levels.labels[level] : undefined;
    const write = (this.logger as unknown as Record<string, unknown>)[label ?? 'info'];
    if (typeof write === 'function') write.call(this.logger, fields, msg);
  }

  private settle(id: number, p: Pending): void {
    this.pending.delete(id);
    p.cleanup?.();
  }

  /**
   * Rejects calls past their deadline. Decided after the poll phase (setImmediate): an
   * application that blocked its event loop past a deadline gets the answer that arrived
   * meanwhile, not a timeout.
   */
  private expire(): void {
    if (this.pending.size === 0) return;
    setImmediate(() => {
      const now = performance.now();
      for (const [id, p] of this.pending) {
        if (p.deadlineMs > now) continue;
        this.settle(id, p);
        p.reject(
          p.op === 'write' || p.op === 'cacheWrite'
            ? outcomeUnknown("the node's thread did not answer it in time")
            : new HiqliteError('HQL_TIMEOUT', `the node's thread did not answer ${p.op} in time`, {
                retryable: true,
              }),
        );
      }
    });
  }

  private onExit(code: number): void {
    clearInterval(this.sweep);
    const closed = this.closing !== null;
    this.gone = closed
      ? new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: false })
      : (this.failure ??
        new HiqliteError('HQL_UNAVAILABLE', `the node's thread exited (code ${code})`, { retryable: false }));
    this.settleStart?.reject(this.gone);
    this.settleStart = null;
    if (!closed) this.reportFatal(this.gone);
    for (const [id, p] of this.pending) {
      this.settle(id, p);
      // A write still in flight reached the node's thread (close() sends its shutdown after
      // every call made before it): it may be in the log, whether or not the node was closed.
      p.reject(
        p.op === 'write' || p.op === 'cacheWrite'
          ? outcomeUnknown(
              closed
                ? "the node was shut down before the write's outcome was known"
                : `the node's thread exited (code ${code}) during the write`,
              this.gone,
            )
          : this.gone,
      );
    }
    for (const l of this.listens.values()) l.end(this.gone);
    this.listens.clear();
    this.mirror?.close();
    // Wakes reads waiting for an applied index: they see `gone`.
    Atomics.notify(this.appliedShared, APPLIED_SLOT);
  }

  // ---------------------------------------------------------------------------------------------
  // Local reads and close
  // ---------------------------------------------------------------------------------------------

  /**
   * Resolves once the node applied `minIndex` (read-your-writes); HQL_TIMEOUT at the deadline. An
   * index beyond the cluster's log is refused (HQL_INVALID_PARAMS), as by the node's own query()
   * (read-your-writes.ts).
   */
  private async untilApplied(minIndex: number, deadlineMs: number): Promise<void> {
    if (Number(Atomics.load(this.appliedShared, APPLIED_SLOT)) >= minIndex) return;
    const over = { stopped: false };
    try {
      await untilAppliedIndex(minIndex, {
        applied: this.waitApplied(minIndex, deadlineMs, over),
        readIndex: async () => {
          const waitMs = Math.max(1, deadlineMs - performance.now());
          return (await this.call({ op: 'barrier', timeoutMs: waitMs }, waitMs)) as number;
        },
        probeAfterMs: this.cfg.heartbeatIntervalMs,
        clock: systemClock,
      });
    } finally {
      // A read refused before its wait ended lets go of its slot of callsMax.
      over.stopped = true;
    }
  }

  /** Until the node applied `minIndex`, the deadline, or `over.stopped` (then it resolves). */
  private async waitApplied(minIndex: number, deadlineMs: number, over: { stopped: boolean }): Promise<void> {
    if (this.appliedWaits >= this.callsMax) {
      throw new HiqliteError(
        'HQL_OVERLOADED',
        `more than ${this.callsMax} reads are waiting for an applied index`,
        {
          retryable: true,
        },
      );
    }
    this.appliedWaits++;
    try {
      for (;;) {
        this.checkOpen();
        const current = Atomics.load(this.appliedShared, APPLIED_SLOT);
        if (Number(current) >= minIndex) return;
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) {
          throw sqlError(
            'HQL_TIMEOUT',
            `index ${minIndex} not applied within ${this.cfg.readTimeoutMs} ms (applied: ${current})`,
          );
        }
        if (over.stopped) return;
        // In slices: a wait given up (over.stopped) lets go of its slot of callsMax soon.
        const r = waitAsync(
          this.appliedShared,
          APPLIED_SLOT,
          current,
          Math.min(remainingMs, APPLIED_WAIT_SLICE_MS),
        );
        if (r.async) await r.value;
      }
    } finally {
      this.appliedWaits--;
    }
  }

  private checkOpen(): void {
    if (this.closing !== null)
      throw new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: false });
    if (this.gone !== null) throw this.gone;
  }

  private async doClose(): Promise<void> {
    if (this.gone === null) {
      // The node hands over leadership and closes within these limits; then its thread ends.
      const waitMs = this.cfg.shutdownTimeoutMs + 2 * this.cfg.electionTimeoutMs;
      try {
        await this.call({ op: 'shutdown' }, waitMs);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'shutting down the node failed');
      }
      // Bounded: a thread in a native call that never returns (a statement nobody can interrupt)
      // does not end on terminate(), and close() would wait for good (found from outside).
      const ended = await inTime(
        this.worker.terminate().then(() => true),
        this.cfg.shutdownTimeoutMs,
        false,
      );
      if (!ended) {
        this.log.error(
          { waitedMs: this.cfg.shutdownTimeoutMs },
          "the node's thread did not end (a statement that cannot be interrupted?); close() returns without it",
        );
        this.reader?.close();
        return;
      }
    }
    await this.exited;
    this.reader?.close();
  }
}

/**
 * A listener on the application's thread: the node's thread sends notifications in batches, at
 * most `cache_listener_buffer_max` not yet taken here; each one taken is acknowledged (batched),
 * which lets the node send more.
 */
class WorkerListenSource implements ListenSource {
  private queue: ListenItem[] = [];
  private waiter: { resolve: (i: ListenItem) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;
  private closed = false;

  constructor(
    private readonly ack: (n: number) => void,
    private readonly stop: () => Promise<void>,
  ) {}

  push(items: readonly ListenItem[]): void {
    if (this.closed) return;
    for (let item of items) {
      // It overflowed: what it holds here unread is dropped and counted with the rest, as a
      // listener on this thread does.
      if (item.kind === 'lagged' && item.unreadDropped === true && this.queue.length > 0) {
        item = { ...item, missed: item.missed + this.queue.length };
        this.queue = [];
      }
      const w = this.waiter;
      if (w !== null) {
        this.waiter = null;
        this.ack(1);
        w.resolve(item);
      } else this.queue.push(item);
    }
  }

  end(error: Error): void {
    if (this.error !== null) return;
    this.error = error;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(error);
  }

  next(): Promise<ListenItem> {
    const item = this.queue.shift();
    if (item !== undefined) {
      this.ack(1);
      return Promise.resolve(item);
    }
    if (this.error !== null) return Promise.reject(this.error);
    if (this.closed)
      return Promise.reject(new HiqliteError('HQL_CLOSED', 'the listener was closed', { retryable: false }));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.queue = [];
    const stopped = this.stop();
    this.end(new HiqliteError('HQL_CLOSED', 'the listener was closed', { retryable: false }));
    return stopped;
  }
}

/** How long a minIndex wait sleeps at most between looks at the applied index (waitApplied). */
const APPLIED_WAIT_SLICE_MS = 100;

/** A value at most this large travels in the turn's shared buffer (packCalls). */
const PACKED_VALUE_BYTES_MAX = 4096;

/**
 * A turn's calls, their small cache writes and keyed cache commands flat (node-thread-protocol.ts,
 * PackedCalls), the writes' values copied into one buffer that moves with the message: the
 * node's thread receives views of one buffer instead of one buffer per value. Null when no call
 * is packed.
 */
function packCalls(calls: readonly Call[]): PackedCalls | null {
  let total = 0;
  let packed = 0;
  for (const c of calls) {
    if (isPackedExecute(c)) packed++;
    if (c.op !== 'cacheWrite') continue;
    const v = packableValue(c.command);
    if (v !== null) total += v.byteLength;
    if (v !== null || (PACKED_KEYED_TYPES as readonly string[]).includes(c.command.type)) packed++;
  }
  if (packed === 0) return null;
  const values = new ArrayBuffer(total);
  const bytes = new Uint8Array(values);
  const items: unknown[] = [];
  let at = 0;
  for (const c of calls) {
    if (isPackedExecute(c)) {
      const { sql, params, returning } = c.command;
      items.push(PACKED_EXECUTE, c.id, sql, returning ? 1 : 0, params.length);
      for (const v of params) items.push(v);
      continue;
    }
    if (c.op !== 'cacheWrite') {
      items.push(c);
      continue;
    }
    const cmd = c.command;
    const v = packableValue(cmd);
    const keyed = v === null ? keyedParts(cmd) : null;
    if (v !== null && (cmd.type === 'put' || cmd.type === 'replace' || cmd.type === 'putIfAbsent')) {
      bytes.set(v, at);
      items.push(
        PACKED_WRITE,
        c.id,
        PACKED_WRITE_TYPES.indexOf(cmd.type),
        cmd.cache,
        cmd.key,
        at,
        v.byteLength,
        cmd.ttlMs ?? -1,
        c.timeoutMs ?? -1,
      );
      at += v.byteLength;
    } else if (keyed !== null) items.push(PACKED_KEYED, c.id, ...keyed, c.timeoutMs ?? -1);
    else items.push(c);
  }
  return { type: 'packed-calls', items, values };
}

/** An SQL `execute` with positional parameters: it travels flat (PACKED_EXECUTE). */
function isPackedExecute(c: Call): c is Call & {
  readonly op: 'write';
  readonly command: ExecuteCommand<ParamInput> & { params: readonly ParamInput[] };
} {
  return c.op === 'write' && c.command.type === 'execute' && Array.isArray(c.command.params);
}

/**
 * The call's own copy of a write or a limited read, taken at the call (lib/copy-params.ts): its
 * parameters copied (an `execute`'s primitives and byte arrays without a structured clone), the
 * rest of a write (SQL text, migrations) by `structuredClone`.
 */
function callCopy(body: CallBody): CallBody {
  if (body.op === 'query') return { ...body, params: copyParams(body.params) };
  if (body.op !== 'write') return body;
  const c = body.command;
  switch (c.type) {
    case 'execute':
      return { op: 'write', command: { ...c, params: copyParams(c.params) } };
    case 'txn':
      return {
        op: 'write',
        command: {
          type: 'txn',
          statements: c.statements.map((s) => ({ sql: s.sql, params: copyParams(s.params) })),
        },
      };
    default:
      return structuredClone(body);
  }
}

/**
 * A keyed cache command (no value) as PACKED_KEYED fields: its type's index in
 * PACKED_KEYED_TYPES, cache or counter name, key, and the counter's number (or null); null for
 * any other command.
 */
function keyedParts(cmd: CacheCommand): [number, string, string, bigint | null] | null {
  switch (cmd.type) {
    case 'delete':
    case 'getRemove':
      return [PACKED_KEYED_TYPES.indexOf(cmd.type), cmd.cache, cmd.key, null];
    case 'counterAdd':
      return [PACKED_KEYED_TYPES.indexOf(cmd.type), cmd.counter, cmd.key, cmd.delta];
    case 'counterSet':
      return [PACKED_KEYED_TYPES.indexOf(cmd.type), cmd.counter, cmd.key, cmd.value];
    case 'counterDelete':
      return [PACKED_KEYED_TYPES.indexOf(cmd.type), cmd.counter, cmd.key, null];
    default:
      return null;
  }
}

/** The value of a write that travels packed, or null. */
function packableValue(cmd: CacheCommand): Uint8Array | null {
  if (cmd.type !== 'put' && cmd.type !== 'replace' && cmd.type !== 'putIfAbsent') return null;
  // A value of zero bytes: nothing to pack, and the write is cloned as it is.
  return cmd.value.byteLength > 0 && cmd.value.byteLength <= PACKED_VALUE_BYTES_MAX ? cmd.value : null;
}

/** A call holding what cannot cross threads (a function, a symbol, an object with one inside). */
function notSendable(op: string, e: unknown): HiqliteError {
  return new HiqliteError(
    'HQL_INVALID_PARAMS',
    `${op}: a parameter or value cannot be sent to the node's thread (${(e as Error).message})`,
    { retryable: false },
  );
}

/** Thrown by postMessage for a value the structured clone algorithm cannot copy. */
function isDataCloneError(e: unknown): boolean {
  return e instanceof Error && e.name === 'DataCloneError';
}
