/**
 * The SQL state machine on a worker thread, with an async API: the runtime's event loop (ticks,
 * heartbeats, votes) never waits for SQLite. Readers stay on whatever thread opens them
 * (SqlReader) and share `applied` for read-your-writes.
 *
 * Locating the worker script: from the compiled package, `worker.js` sits next to this file.
 * When this file runs as TypeScript source (tests and `tsx`), the worker is started with a small
 * bootstrap that registers tsx inside the worker first: on Node 20 a worker does not inherit the
 * parent's module hooks, and `execArgv: ['--import', 'tsx']` does not apply them to the worker's
 * entry module either.
 */
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { HiqliteError } from '../../lib/errors.js';
import type { LogIndex } from '../../raft/types.js';
import { AppliedIndexWatcher } from './applied-watch.js';
import { interruptConnection } from './interrupt.js';
import { type CommandResult, decodeResult } from './result.js';
import type { AppliedState, ApplyEntry, DamagedDatabase, SnapshotInfo } from './state-machine.js';
import {
  type ApplyBatchReply,
  deserializeError,
  packEntries,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
  type WorkerStarted,
  type WorkerStateMachineOptions,
} from './worker-protocol.js';

export interface SqlWorkerOptions extends WorkerStateMachineOptions {
  /** Requests in flight before new ones are rejected with HQL_OVERLOADED. Default 1024. */
  readonly pendingMax?: number;
  /** The thread's V8 heap limits. Default THREAD_HEAP_DEFAULTS. */
  readonly heap?: ThreadHeapLimits;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: unknown) => void;
}

type RequestBody = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

/**
 * The V8 young generation of the SQLite writer and the read threads, in MB: config key
 * `threadYoungGenerationMb`. Their garbage is short-lived (decoded commands, statement
 * outcomes): a small young generation collects it as well and keeps each thread's resident
 * memory down (V8's default lets it grow to 48 MB per isolate; 8 → 4 MB measured in
 * docs/BENCHMARKS.md, "Memory per node").
 */
export const YOUNG_GENERATION_MB_DEFAULT = 4;

/**
 * The V8 young generation of the node's own thread, in MB: config key
 * `nodeThreadYoungGenerationMb`. Every message, frame, entry and call makes garbage there; with
 * 4 MB it collected so often that a cache put cost about a third more CPU on every node than with
 * 16 (docs/BENCHMARKS.md, "The node thread's young generation").
 */
export const NODE_THREAD_YOUNG_GENERATION_MB_DEFAULT = 16;

/**
 * The V8 old generation limit of each thread hiqlite starts, in MB: config key
 * `threadOldGenerationMaxMb`; 0 (the default) is OLD_GENERATION_MAX_MB_AUTO or the starting
 * thread's own heap limit, whichever is smaller (on a small machine V8's default is lower, and
 * an application's `--max-old-space-size` is followed). Below 2,048 MB V8 lets a heap grow to
 * at most about twice its live data between full collections; from 2,048 MB on (its default
 * limit on a machine with 16 GB or more) to four times (V8's MemoryController::MaxGrowingFactor).
 * 2,000 keeps the node's thread near 35 MB instead of 45–55 MB under load, with room for the
 * default cache limits (512 MiB of entries) more than three times over (docs/BENCHMARKS.md,
 * "Memory per node, second round").
 */
export const OLD_GENERATION_MAX_MB_DEFAULT = 0;
export const OLD_GENERATION_MAX_MB_AUTO = 2000;

/** The limit `0` stands for, on this thread (see OLD_GENERATION_MAX_MB_DEFAULT). */
export function autoOldGenerationMaxMb(): number {
  const own = Math.floor(getHeapStatistics().heap_size_limit / (1024 * 1024));
  return Math.max(64, Math.min(OLD_GENERATION_MAX_MB_AUTO, own));
}

/** V8 heap limits of a thread hiqlite starts (Worker `resourceLimits`). */
export interface ThreadHeapLimits {
  readonly youngGenerationMb: number;
  readonly oldGenerationMaxMb: number;
}

export const THREAD_HEAP_DEFAULTS: ThreadHeapLimits = {
  youngGenerationMb: YOUNG_GENERATION_MB_DEFAULT,
  oldGenerationMaxMb: OLD_GENERATION_MAX_MB_DEFAULT,
};

/** The Worker `resourceLimits` of `heap`. */
export function workerResourceLimits(heap: ThreadHeapLimits): {
  maxYoungGenerationSizeMb: number;
  maxOldGenerationSizeMb: number;
} {
  return {
    maxYoungGenerationSizeMb: heap.youngGenerationMb,
    maxOldGenerationSizeMb:
      heap.oldGenerationMaxMb === 0 ? autoOldGenerationMaxMb() : heap.oldGenerationMaxMb,
  };
}

/** Starts the worker script `name` (worker.ts / read-worker.ts next to this file) with `data`. */
export function spawnModuleWorker(name: string, data: unknown, heap = THREAD_HEAP_DEFAULTS): Worker {
  const resourceLimits = workerResourceLimits(heap);
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL(`./${name}.ts`, here).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(bootstrap, { eval: true, workerData: data, resourceLimits });
  }
  return new Worker(new URL(`./${name}.js`, here), { workerData: data, resourceLimits });
}

export class SqlWorker {
  readonly applied: AppliedIndexWatcher;
  private state: AppliedState;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedError: Error | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    initial: AppliedState,
    private readonly pendingMax: number,
    private readonly connectionId: number | null,
    /** The damaged database file found and moved aside at open (state-machine.ts), or null. */
    readonly damaged: DamagedDatabase | null,
  ) {
    this.state = initial;
    this.applied = new AppliedIndexWatcher(initial.index);
    worker.on('message', (m: WorkerReply) => this.onReply(m));
    this.exited = new Promise<void>((resolve) => {
      worker.once('exit', (code) => {
        this.failAll(
          new HiqliteError('HQL_CLOSED', `state machine worker exited (code ${code})`, { retryable: false }),
        );
        resolve();
      });
    });
    worker.on('error', (e) => {
      this.failAll(
        new HiqliteError('HQL_IO', `state machine worker failed: ${e.message}`, {
          retryable: false,
          cause: e,
        }),
      );
    });
  }

  /** Starts the worker and opens the state machine in `dir`; rejects if it cannot be opened. */
  static async start(dir: string, options: SqlWorkerOptions = {}): Promise<SqlWorker> {
    const { pendingMax = 1024, heap, ...smOptions } = options;
    if (!(Number.isSafeInteger(pendingMax) && pendingMax >= 1)) {
      throw new HiqliteError(
        'HQL_INVALID_CONFIG',
        `pendingMax must be a positive integer, got ${pendingMax}`,
        {
          retryable: false,
        },
      );
    }
    const init: WorkerInit = { dir, options: smOptions };
    const worker = spawnModuleWorker('worker', init, heap);
    let initial: WorkerStarted;
    try {
      initial = await new Promise<WorkerStarted>((resolve, reject) => {
        const onMessage = (m: WorkerReply) => {
          if (m.id !== 0) return;
          cleanup();
          if (m.ok) resolve(m.value as WorkerStarted);
          else reject(deserializeError(m.error));
        };
        const onError = (e: Error) => {
          cleanup();
          reject(e);
        };
        const onExit = (code: number) => {
          cleanup();
          reject(
            new HiqliteError('HQL_CLOSED', `state machine worker exited during startup (code ${code})`, {
              retryable: false,
            }),
          );
        };
        const cleanup = () => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
      });
    } catch (e) {
      await worker.terminate();
      throw e;
    }
    return new SqlWorker(worker, initial.state, pendingMax, initial.connectionId, initial.damaged);
  }

  /**
   * Interrupts the statement the worker is running now (shutdown of a batch that does not end):
   * the batch is rolled back and its applyBatch rejects. False when the writer connection is not
   * interruptible (the extension is not built).
   */
  interrupt(): boolean {
    return this.connectionId !== null && interruptConnection(this.connectionId);
  }

  /** The applied index as of the last reply from the worker (the resume point). */
  appliedIndex(): LogIndex {
    return this.state.index;
  }

  /** The log clock as of the last reply from the worker (src/lib/log-clock.ts). */
  appliedClockMs(): number {
    return this.state.clockMs;
  }

  /**
   * Applies entries in order. Results come back where `wanted` says so (default: all), undefined
   * elsewhere: a follower, which nobody waits on, does not pay for copying them.
   */
  async applyBatch(
    entries: readonly ApplyEntry[],
    wanted: readonly boolean[] = entries.map(() => true),
  ): Promise<readonly (CommandResult | undefined)[]> {
    const packed = packEntries(entries);
    const reply = (await this.request({ op: 'applyBatch', entries: packed, wanted }, [
      packed,
    ])) as ApplyBatchReply;
    this.state = reply.applied;
    this.applied.advance(reply.applied.index);
    return reply.results.map((r) => (r instanceof Uint8Array ? decodeResult(r) : r));
  }

  snapshot(destPath: string): Promise<SnapshotInfo> {
    return this.request({ op: 'snapshot', destPath }) as Promise<SnapshotInfo>;
  }

  async restore(fromPath: string): Promise<AppliedState> {
    this.state = (await this.request({ op: 'restore', fromPath })) as AppliedState;
    this.applied.advance(this.state.index);
    return this.state;
  }

  /** See SqlStateMachine.reset. `applied` stays monotonic: it does not go back to 0. */
  async reset(): Promise<AppliedState> {
    this.state = (await this.request({ op: 'reset' })) as AppliedState;
    return this.state;
  }

  async appliedState(): Promise<AppliedState> {
    this.state = (await this.request({ op: 'appliedState' })) as AppliedState;
    return this.state;
  }

  /** Waits for queued requests, closes the database and stops the thread. */
  async close(): Promise<void> {
    if (this.closedError === null) {
      try {
        await this.request({ op: 'close' });
      } finally {
        this.closedError = new HiqliteError('HQL_CLOSED', 'state machine closed', { retryable: false });
        this.applied.close(this.closedError);
        await this.worker.terminate();
      }
    }
    await this.exited;
  }

  private request(body: RequestBody, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (this.pending.size >= this.pendingMax) {
      return Promise.reject(
        new HiqliteError('HQL_OVERLOADED', `more than ${this.pendingMax} state machine requests in flight`, {
          retryable: true,
        }),
      );
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...body, id } as WorkerRequest, transfer);
    });
  }

  private onReply(m: WorkerReply): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(deserializeError(m.error));
  }

  private failAll(e: Error): void {
    if (this.closedError === null) this.closedError = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
