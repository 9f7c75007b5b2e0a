/**
 * The embedded node on the caller's thread (`start(config, { thread: 'main' })`): the node's
 * runtime in this isolate. Loaded only when asked for (embedded.ts imports it dynamically), so an
 * application with the node on its own thread does not load the runtime's modules on its thread
 * too (about 7 MB of code and module text per process, measured: docs/BENCHMARKS.md).
 */

import { backupFeatures } from '../backup/node-features.js';
import type { NodeConfig } from '../node/config/config.js';
import {
  type ClusterMembership,
  HiqliteNode as NodeRuntime,
  type QueryOptions,
  type StartOptions,
} from '../node/hiqlite-node.js';
import type { BackupInfo } from '../node/node-features.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import type { CommandInput } from '../sm/sql/command.js';
import type { QueryParams } from '../sm/sql/reader.js';
import type { CommandResult } from '../sm/sql/result.js';
import type { Row } from '../sm/sql/values.js';
import { healthTimeoutArg, noExtraArgs } from './args.js';
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
import { ClientBase, type Metrics, type Params } from './client.js';
import type { HiqliteNode } from './embedded.js';

/** Starts the node on this thread (start() has checked the options). */
export async function startOnThisThread(config: NodeConfig, options: StartOptions): Promise<HiqliteNode> {
  return new EmbeddedNode(await NodeRuntime.start(config, options, backupFeatures));
}

class EmbeddedNode extends ClientBase implements HiqliteNode {
  /** The cache group's refound count last read (cacheRefounds). */
  private lastRefounds = 0;

  constructor(private readonly node: NodeRuntime) {
    super();
    this.hideFields();
  }

  get nodeId(): number {
    return this.node.cfg.nodeId;
  }

  protected override describe(): Record<string, unknown> {
    return { nodeId: this.node.cfg.nodeId, thread: 'main' };
  }

  protected write(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    return this.node.write(command);
  }

  protected read(sql: string, params: Params, options: QueryOptions): Promise<Row[]> {
    return this.node.query(sql, params as QueryParams, options);
  }

  async metrics(...extra: []): Promise<Metrics> {
    noExtraArgs(extra, 'metrics', '()');
    return this.node.metrics();
  }

  protected takeBackup(): Promise<BackupInfo> {
    return this.node.backup();
  }

  protected removeMember(nodeId: number, timeoutMs: number | undefined): Promise<ClusterMembership> {
    return this.node.removeNode(nodeId, timeoutMs);
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

  cacheRefounds(): number {
    try {
      this.lastRefounds = this.node.caches.refoundCount;
    } catch {
      // The node is shutting down: its count stays what it was (close() ends the locks).
    }
    return this.lastRefounds;
  }

  onCacheRefound(hook: () => void): void {
    this.node.caches.onRefound(hook);
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

  protected awaitHealthy(options: { timeoutMs?: number }): Promise<void> {
    try {
      return this.node.waitUntilHealthy(healthTimeoutArg(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  isLeader(...extra: []): boolean {
    noExtraArgs(extra, 'isLeader', '()');
    return this.node.isLeader();
  }

  async shutdown(): Promise<void> {
    await this.beginClose();
    await this.node.shutdown();
  }

  close(): Promise<void> {
    return this.shutdown();
  }
}
