/**
 * Reads with a time limit, off the caller's event loop: a fixed set of threads, each with its own
 * read-only connection, serving a bounded queue. The node serves every read of another process
 * here (a read on its own event loop would stop heartbeats for as long as it runs).
 *
 * A read's limit counts from its arrival (queueing included). At the limit the caller gets
 * HQL_TIMEOUT at once; the statement itself is interrupted by the extension's watchdog
 * (interrupt.ts) at the same deadline, and its thread serves the next read. An aborted read
 * (AbortSignal) is interrupted at once.
 *
 * Without the extension (no C compiler at install), a statement cannot be interrupted: a thread
 * that has not answered `stuckGraceMs` after its read's limit is retired (terminated when it
 * next runs JavaScript, which a statement that never ends never does) and replaced, as long as
 * the pool has fewer than 2 × `threads` threads in all (retired ones included); beyond that it
 * shrinks instead of growing, and reads wait in the queue until their limit. This degraded mode keeps the event
 * loop and the answer times right, not the CPU.
 *
 * Threads start when reads need them, and every thread but the last ends after `threadIdleMs`
 * without a read: each costs about 12 MB of resident memory (a V8 isolate, its share of malloc, a
 * connection's page cache), which a node that serves no reads for other processes should not pay
 * (docs/BENCHMARKS.md, "Memory per node"). Only the very first read waits for a thread to start
 * (tens to hundreds of ms); the last thread stays, so a read after a quiet spell finds one ready.
 * `threadIdleMs` 0: every thread starts with the pool and never ends.
 */

import type { Worker } from 'node:worker_threads';
import { whenAborted } from '../../lib/abort.js';
import { copyParams } from '../../lib/copy-params.js';
import { abortedError, HiqliteError } from '../../lib/errors.js';
import { queryTimeoutError } from './errors.js';
import { interruptConnection } from './interrupt.js';
import type { ReadReply, ReadRequest, ReadWorkerInit, ReadWorkerStarted } from './read-protocol.js';
import type { QueryParams } from './reader.js';
import type { Row } from './values.js';
import { spawnModuleWorker, type ThreadHeapLimits } from './worker-client.js';
import { deserializeError } from './worker-protocol.js';

export interface ReadPoolOptions {
  readonly dbPath: string;
  /** Threads, each with one connection. Default 2. */
  readonly threads?: number;
  /** Reads waiting for a thread before new ones are rejected (HQL_OVERLOADED). Default 1024. */
  readonly queueMax?: number;
  /** Load the interrupt extension when it is built. Default true (false: the degraded mode). */
  readonly interruptible?: boolean;
  /** How long past its read's limit a thread may take to answer before it is retired. Default 1000. */
  readonly stuckGraceMs?: number;
  /**
   * A thread that served no read for this long ends, unless it is the last one. Default 30,000;
   * 0: every thread starts with the pool and never ends.
   */
  readonly threadIdleMs?: number;
  /** Each thread's V8 heap limits (worker-client.ts). */
  readonly heap?: ThreadHeapLimits;
  readonly statementCacheMax?: number;
  readonly busyTimeoutMs?: number;
  /** Most rows one read may return (HQL_RESULT_TOO_LARGE beyond). Default 1,000,000. */
  readonly rowsMax?: number;
  /** Most bytes of values one read may return (HQL_RESULT_TOO_LARGE beyond). Default 64 MiB. */
  readonly resultBytesMax?: number;
  /** The largest string, blob or row a read may make or read (SqlReaderOptions.valueBytesMax). */
  readonly valueBytesMax?: number;
  /** The runtime's applied index, sent with each read (schema changes come with applied writes). */
  readonly appliedIndex?: () => number;
}

export interface PoolQueryOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

interface Job {
  readonly sql: string;
  readonly params: QueryParams;
  readonly deadlineMs: number;
  readonly timeoutMs: number;
  readonly resolve: (rows: Row[]) => void;
  readonly reject: (e: Error) => void;
  settled: boolean;
  timer: NodeJS.Timeout | null;
  cleanup: () => void;
}

interface Slot {
  readonly worker: Worker;
  readonly started: ReadWorkerStarted;
  job: Job | null;
  jobId: number;
  stuckTimer: NodeJS.Timeout | null;
  /** Ends the thread when it stays without a read (threadIdleMs). */
  idleTimer: NodeJS.Timeout | null;
  /** The thread's 'error' (uncaught, or out of its heap), before its exit. */
  failure: Error | null;
}

/** The id of a thread's close request (reads count from 1). */
const CLOSE_REQUEST_ID = -1;

export class ReadPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  /** Threads retired while running a statement they could not be made to stop; still running. */
  private readonly retired = new Set<Worker>();
  private nextId = 1;
  private closed = false;
  /** Threads being started (counted against `threads` like running ones). */
  private starting = 0;
  /** Their workers: close() stops them too (a thread killed halfway through its start can crash the process at exit). */
  private readonly startingWorkers = new Set<Worker>();
  private readonly threads: number;
  private readonly threadIdleMs: number;
  private readonly heap: ThreadHeapLimits | undefined;
  private readonly queueMax: number;
  private readonly stuckGraceMs: number;
  private readonly init: ReadWorkerInit;
  private readonly appliedIndex: () => number;

  private constructor(o: ReadPoolOptions) {
    this.threads = o.threads ?? 2;
    this.queueMax = o.queueMax ?? 1024;
    this.stuckGraceMs = o.stuckGraceMs ?? 1000;
    this.threadIdleMs = o.threadIdleMs ?? 30_000;
    this.heap = o.heap;
    this.appliedIndex = o.appliedIndex ?? (() => 0);
    for (const [key, v] of [
      ['threads', this.threads],
      ['queueMax', this.queueMax],
      ['stuckGraceMs', this.stuckGraceMs],
    ] as const) {
      if (!(Number.isSafeInteger(v) && v >= 1))
        throw new HiqliteError('HQL_INVALID_CONFIG', `${key} must be a positive integer, got ${v}`, {
          retryable: false,
        });
    }
    if (!(Number.isSafeInteger(this.threadIdleMs) && this.threadIdleMs >= 0))
      throw new HiqliteError(
        'HQL_INVALID_CONFIG',
        `threadIdleMs must be a non-negative integer, got ${this.threadIdleMs}`,
        { retryable: false },
      );
    this.init = {
      dbPath: o.dbPath,
      statementCacheMax: o.statementCacheMax ?? 256,
      busyTimeoutMs: o.busyTimeoutMs ?? 5_000,
      interruptible: o.interruptible ?? true,
      rowsMax: o.rowsMax ?? 1_000_000,
      resultBytesMax: o.resultBytesMax ?? 64 * 1024 * 1024,
      ...(o.valueBytesMax === undefined ? {} : { valueBytesMax: o.valueBytesMax }),
    };
  }

  static async start(options: ReadPoolOptions): Promise<ReadPool> {
    const pool = new ReadPool(options);
    if (pool.threadIdleMs > 0) return pool; // threads start with the first reads
    try {
      for (let i = 0; i < pool.threads; i++) pool.slots.add(await pool.spawn());
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Whether a read past its limit is interrupted (every running thread loaded the extension; false while none runs). */
  get interruptible(): boolean {
    for (const s of this.slots) if (!s.started.interruptible) return false;
    return this.slots.size > 0;
  }

  /** Threads serving reads, threads starting, reads waiting, retired threads still running. */
  stats(): { threads: number; starting: number; busy: number; queued: number; retired: number } {
    let busy = 0;
    for (const s of this.slots) if (s.job !== null) busy++;
    return {
      threads: this.slots.size,
      starting: this.starting,
      busy,
      queued: this.queue.length,
      retired: this.retired.size,
    };
  }

  query(sql: string, params: QueryParams, options: PoolQueryOptions): Promise<Row[]> {
    if (this.closed) return Promise.reject(closedError());
    if (this.queue.length >= this.queueMax) {
      return Promise.reject(
        new HiqliteError('HQL_OVERLOADED', `more than ${this.queueMax} reads waiting`, { retryable: true }),
      );
    }
    const { timeoutMs, signal } = options;
    if (signal?.aborted === true) return Promise.reject(queryCancelled());
    // The parameters as they are now: the read may wait in the queue or for a thread to start,
    // and a caller that reuses its array or Buffer meanwhile must not change what is read.
    let snapshot: QueryParams;
    try {
      snapshot = copyParams(params);
    } catch (e) {
      return Promise.reject(unsendableParam(e));
    }
    return new Promise<Row[]>((resolve, reject) => {
      const job: Job = {
        sql,
        params: snapshot,
        timeoutMs,
        deadlineMs: performance.now() + timeoutMs,
        resolve,
        reject,
        settled: false,
        timer: null,
        cleanup: () => {},
      };
      job.timer = setTimeout(() => this.giveUp(job, queryTimeoutError(timeoutMs)), timeoutMs);
      if (signal !== undefined) {
        job.cleanup = whenAborted(signal, () => this.giveUp(job, queryCancelled()));
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** Fails queued and running reads with HQL_CLOSED and stops the threads (bounded). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) settle(job, closedError());
    const stops: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      if (slot.stuckTimer !== null) clearTimeout(slot.stuckTimer);
      if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
      const busy = slot.job !== null;
      if (slot.job !== null) settle(slot.job, closedError());
      slot.job = null;
      stops.push(this.stopThread(slot, busy));
    }
    this.slots.clear();
    for (const w of this.startingWorkers) stops.push(w.terminate());
    this.startingWorkers.clear();
    // A thread stuck in a statement that cannot be interrupted never exits: do not wait for it.
    await Promise.race([Promise.all(stops), delay(this.stuckGraceMs)]);
  }

  /**
   * Ends a thread. One in a statement (also a read answered at its limit whose statement still
   * runs: such a thread does not end on terminate(), and the thread that started it cannot end
   * before it) is interrupted, then asked to close, and terminated once it has, or after
   * `stuckGraceMs`: the interrupted statement returns to the thread's JavaScript, which builds
   * its error, and a terminate() at that moment aborted the whole process (better-sqlite3 could
   * not create the error: "FATAL ERROR: v8::ToLocalChecked Empty MaybeLocal", seen in CI when a
   * node closed right after a read that timed out).
   */
  private async stopThread(slot: Slot, busy: boolean): Promise<void> {
    const w = slot.worker;
    w.removeAllListeners('message');
    if (busy && slot.started.connectionId !== null) {
      const closed = new Promise<void>((resolve) => {
        w.on('message', (m: ReadReply) => {
          if (m.id === CLOSE_REQUEST_ID) resolve();
        });
        w.once('exit', () => resolve());
      });
      interruptConnection(slot.started.connectionId);
      w.postMessage({ id: CLOSE_REQUEST_ID, op: 'close' } satisfies ReadRequest);
      await Promise.race([closed, delay(this.stuckGraceMs)]);
    }
    await w.terminate();
  }

  // ---------------------------------------------------------------------------------------------

  private pump(): void {
    for (const slot of this.slots) {
      while (slot.job === null) {
        let job = this.queue.shift();
        while (job?.settled) job = this.queue.shift();
        if (job === undefined) return;
        this.send(slot, job);
      }
    }
    this.grow();
  }

  /**
   * Hands `job` to the free `slot`. Parameters that cannot be copied to another thread (a
   * function, a symbol, nesting deeper than the copy's stack: the callers check, this is the
   * last line) fail that read alone with HQL_INVALID_PARAMS; thrown here they would end the
   * process.
   */
  private send(slot: Slot, job: Job): void {
    const remaining = Math.max(1, Math.ceil(job.deadlineMs - performance.now()));
    if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
    slot.idleTimer = null;
    slot.job = job;
    slot.jobId = this.nextId++;
    try {
      slot.worker.postMessage({
        id: slot.jobId,
        op: 'query',
        sql: job.sql,
        params: job.params,
        timeoutMs: remaining,
        applied: this.appliedIndex(),
      } satisfies ReadRequest);
    } catch (e) {
      slot.job = null;
      this.armIdle(slot);
      settle(job, unsendableParam(e));
    }
  }

  /**
   * Starts threads for the reads no thread is free for (every thread, when they never end), up
   * to `threads` running or starting, and 2 × `threads` counting the retired ones still running.
   */
  private grow(): void {
    if (this.closed) return;
    let wanted = this.threads;
    if (this.threadIdleMs > 0) {
      if (this.slots.size + this.starting >= this.threads) return;
      let waiting = 0;
      for (const job of this.queue) if (!job.settled) waiting++;
      let busy = 0;
      for (const s of this.slots) if (s.job !== null) busy++;
      wanted = Math.min(this.threads, busy + waiting);
    }
    while (
      this.slots.size + this.starting < wanted &&
      this.slots.size + this.starting + this.retired.size < 2 * this.threads
    ) {
      this.starting++;
      this.spawn().then(
        (slot) => {
          this.starting--;
          if (this.closed) {
            slot.worker.terminate().catch(() => {});
            return;
          }
          this.slots.add(slot);
          this.pump();
          if (slot.job === null) this.armIdle(slot);
        },
        (e: unknown) => {
          this.starting--;
          // No thread can serve the waiting reads: they fail now rather than at their limit.
          if (this.closed || this.slots.size > 0 || this.starting > 0) return;
          const error = e instanceof Error ? e : new Error(String(e));
          for (const job of this.queue.splice(0)) settle(job, error);
        },
      );
    }
  }

  /**
   * A thread without a read ends after `threadIdleMs` unless a read comes first, or it is the
   * last one: that one stays, so a read after a quiet spell does not wait for a thread to start.
   */
  private armIdle(slot: Slot): void {
    if (this.threadIdleMs === 0 || this.closed) return;
    if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = null;
      if (slot.job !== null || this.slots.size <= 1 || !this.slots.delete(slot)) return;
      slot.worker.removeAllListeners('message');
      slot.worker.terminate().catch(() => {});
    }, this.threadIdleMs);
    slot.idleTimer.unref();
  }

  private onReply(slot: Slot, m: ReadReply): void {
    if (m.id !== slot.jobId || slot.job === null) return;
    const job = slot.job;
    slot.job = null;
    if (slot.stuckTimer !== null) clearTimeout(slot.stuckTimer);
    slot.stuckTimer = null;
    if (m.ok) {
      if (!job.settled) {
        job.settled = true;
        if (job.timer !== null) clearTimeout(job.timer);
        job.cleanup();
        job.resolve(m.value as Row[]);
      }
    } else settle(job, deserializeError(m.error));
    this.pump();
    if (slot.job === null) this.armIdle(slot);
  }

  /** The caller gets `error` now; a running statement is interrupted, or its thread retired. */
  private giveUp(job: Job, error: Error): void {
    if (job.settled) return;
    settle(job, error);
    const slot = [...this.slots].find((s) => s.job === job);
    if (slot === undefined) {
      // Still queued: it leaves the queue now. Left there until a thread took it, reads given up
      // kept counting against read_queue_max: with no thread free for long, the queue stayed
      // "full" of them and every new read was refused before it could start a thread, for good
      // (found from outside: a node refused all local reads after a flood of reads whose answers
      // were never read, until it restarted). Bounded by read_queue_max.
      const at = this.queue.indexOf(job);
      if (at !== -1) this.queue.splice(at, 1);
      return;
    }
    // At the read's limit the watchdog interrupts the statement by itself; an abort comes early.
    if (slot.started.connectionId !== null && error instanceof HiqliteError && error.code === 'HQL_ABORTED')
      interruptConnection(slot.started.connectionId);
    slot.stuckTimer = setTimeout(() => {
      if (slot.job === job) this.retire(slot);
    }, this.stuckGraceMs);
  }

  private retire(slot: Slot): void {
    this.slots.delete(slot);
    if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
    slot.job = null;
    const w = slot.worker;
    this.retired.add(w);
    w.once('exit', () => {
      this.retired.delete(w);
      // Its place may be what the waiting reads need a thread for (2 × threads counts it).
      this.pump();
    });
    this.stopThread(slot, true).catch(() => {});
    // A replacement starts when a read needs it (at once when threads never end).
    this.grow();
  }

  private spawn(): Promise<Slot> {
    const worker = spawnModuleWorker('read-worker', this.init, this.heap);
    this.startingWorkers.add(worker);
    return new Promise<Slot>((resolve, reject) => {
      const onStart = (m: ReadReply) => {
        if (m.id !== 0) return;
        worker.off('message', onStart);
        this.startingWorkers.delete(worker);
        if (!m.ok) {
          worker.terminate().catch(() => {});
          reject(deserializeError(m.error));
          return;
        }
        const slot: Slot = {
          worker,
          started: m.value as ReadWorkerStarted,
          job: null,
          jobId: 0,
          stuckTimer: null,
          idleTimer: null,
          failure: null,
        };
        worker.off('error', reject);
        worker.on('error', (e) => {
          slot.failure = e;
        });
        worker.on('message', (r: ReadReply) => this.onReply(slot, r));
        worker.once('exit', () => this.onExit(slot));
        resolve(slot);
      };
      worker.on('message', onStart);
      // Kept for the thread's life: an 'error' without a listener would throw in this process
      // (the 'exit' that follows is handled by onExit).
      worker.on('error', reject);
      worker.once('exit', (code) => {
        this.startingWorkers.delete(worker);
        reject(
          new HiqliteError('HQL_IO', `read thread exited at start (code ${code})`, { retryable: false }),
        );
      });
    });
  }

  private onExit(slot: Slot): void {
    if (!this.slots.delete(slot)) return;
    if (slot.stuckTimer !== null) clearTimeout(slot.stuckTimer);
    if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
    if (slot.job !== null) settle(slot.job, exitError(slot.failure));
    slot.job = null;
    this.grow();
  }
}

function settle(job: Job, error: Error): void {
  if (job.settled) return;
  job.settled = true;
  if (job.timer !== null) clearTimeout(job.timer);
  job.cleanup();
  job.reject(error);
}

/** Why a read failed whose thread ended under it. */
function exitError(failure: Error | null): HiqliteError {
  // The same read would exhaust the next thread too: not retryable.
  if ((failure as { code?: string } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY')
    return new HiqliteError(
      'HQL_RESULT_TOO_LARGE',
      'the read needed more memory than its thread may use (thread_old_generation_max_mb); page through the result or aggregate',
      { retryable: false, cause: failure },
    );
  return new HiqliteError(
    'HQL_IO',
    failure === null ? 'the read thread exited' : `the read thread failed: ${failure.message}`,
    { retryable: true, ...(failure === null ? {} : { cause: failure }) },
  );
}

function queryCancelled(): HiqliteError {
  return abortedError('the query was cancelled');
}

function closedError(): HiqliteError {
  return new HiqliteError('HQL_CLOSED', 'the read pool is closed', { retryable: false });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** A parameter the structured clone algorithm cannot copy to a read thread. */
function unsendableParam(e: unknown): HiqliteError {
  return new HiqliteError(
    'HQL_INVALID_PARAMS',
    `a parameter cannot be sent to a read thread (${e instanceof Error ? e.message : String(e)}); bind null, numbers, bigints, strings, booleans or Uint8Array`,
    { retryable: false, cause: e },
  );
}
