/**
 * `start(config)`: this process becomes a node of the cluster, with a local SQLite replica. By
 * default the node runs on a worker thread of its own (worker-node.ts): the application's event
 * loop can block without stopping heartbeats. `thread: 'main'` runs it on the caller's thread
 * (`hiqlite serve`, tests with a virtual clock).
 */

import { backupFeatures } from '../backup/node-features.js';
import type { NodeConfig } from '../node/config/config.js';
import { HiqliteNode as NodeRuntime, type QueryOptions, type StartOptions } from '../node/hiqlite-node.js';
import type { BackupInfo } from '../node/node-features.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import type { CommandInput } from '../sm/sql/command.js';
import type { QueryParams } from '../sm/sql/reader.js';
import type { CommandResult } from '../sm/sql/result.js';
import type { Row } from '../sm/sql/values.js';
import { healthTimeoutArg } from './args.js';
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
import { ClientBase, type HiqliteClient, type Metrics, type Params } from './client.js';
import { checkStartOptions } from './entry-options.js';
import { explainListenError } from './listen-error.js';
import { startInWorker } from './worker-node.js';

export interface HiqliteNode extends HiqliteClient {
  isLeader(): boolean;
  /** Graceful: a leader hands over leadership first. Same as close(). */
  shutdown(): Promise<void>;
  readonly nodeId: number;
}

class EmbeddedNode extends ClientBase implements HiqliteNode {
  constructor(private readonly node: NodeRuntime) {
    super();
  }

  get nodeId(): number {
    return this.node.cfg.nodeId;
  }

  protected write(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    return this.node.write(command);
  }

  protected read(sql: string, params: Params, options: QueryOptions): Promise<Row[]> {
    return this.node.query(sql, params as QueryParams, options);
  }

  async metrics(): Promise<Metrics> {
    return this.node.metrics();
  }

  backup(): Promise<BackupInfo> {
    return this.node.backup();
  }

  override cacheWrite(command: CacheCommand, options: CacheCallOptions = {}): Promise<CacheOutcome> {
    return this.node.caches.writeOk(command, options);
  }

  override async cacheRead(read: CacheRead, consistency: CacheConsistency): Promise<CacheReadValue> {
    return this.node.caches.read(read, consistency);
  }

  override cacheLocalEntry(cache: string, key: string): LocalCacheEntry | null {
    return this.node.caches.getEntry(cache, key);
  }

  override cacheLock(request: LockRequest, signal?: AbortSignal): Promise<LockGrantInfo | null> {
    return this.node.caches.lock(request, signal);
  }

  override cacheListen(channel: string | null): ListenSource {
    try {
      return this.node.caches.subscribe({ channel });
    } catch (e) {
      // Refused (a channel longer than any can be, the node stopped): the listener's first
      // next() says so, as on the other clients.
      const error = e instanceof Error ? e : new Error(String(e));
      return { next: () => Promise.reject(error), close: () => {} };
    }
  }

  waitUntilHealthy(options: { timeoutMs?: number } = {}): Promise<void> {
    try {
      return this.node.waitUntilHealthy(healthTimeoutArg(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  isLeader(): boolean {
    return this.node.isLeader();
  }

  async shutdown(): Promise<void> {
    await this.releaseHeldLocks();
    await this.node.shutdown();
  }

  close(): Promise<void> {
    return this.shutdown();
  }
}

/** Starts an embedded node; resolves once it is a member of the cluster. */
export async function start(config: NodeConfig, options: StartOptions = {}): Promise<HiqliteNode> {
  checkStartOptions(options);
  try {
    if ((options.thread ?? 'worker') === 'worker') return await startInWorker(config, options);
    return new EmbeddedNode(await NodeRuntime.start(config, options, backupFeatures));
  } catch (e) {
    throw explainListenError(e, config);
  }
}
