/**
 * The node's side of the dashboard's seam (src/dashboard/backend.ts): what the dashboard may see
 * and do, as closures over the node, so the dashboard holds no reference to the node itself, its
 * config or its secrets. Other nodes are asked over this node's own authenticated connections to
 * their API ports (the `metrics` request), with a deadline.
 */
import type {
  DashboardBackend,
  DashboardBackups,
  DashboardCaches,
  LeaderBackups,
  NodeView,
  Row,
  WriteOutcome,
} from '../dashboard/backend.js';
import type { MetricsHistory } from '../dashboard/metrics-history.js';
import { HiqliteError } from '../lib/errors.js';
import type { ApiResponse } from '../protocol/api-codec.js';
import type { QueryParams } from '../sm/sql/reader.js';
import type { CommandResult } from '../sm/sql/result.js';
import type { CacheGroup } from './cache-group.js';
import type { ResolvedNodeConfig } from './config/config.js';
import type { BackupInfo, NodeBackups } from './node-features.js';

export interface NodeForDashboard {
  readonly cfg: ResolvedNodeConfig;
  /** This node's metrics; null while its Raft group is not open. */
  view(): NodeView | null;
  /** What `/health` would answer now. */
  health(): { ok: boolean; body: Record<string, unknown> };
  request(id: number, timeoutMs: number): Promise<ApiResponse>;
  query(
    sql: string,
    params: QueryParams,
    consistency: 'local' | 'linearizable',
    signal: AbortSignal,
  ): Promise<Row[]>;
  write(sql: string): Promise<{ index: number; result: Extract<CommandResult, { ok: true }> }>;
  readonly history: MetricsHistory;
  /** The cache group while it runs, else null. */
  cacheGroup(): CacheGroup | null;
  /** The backup service once the node runs (null before, or without backups). */
  backups(): NodeBackups | null;
  /** Takes a backup on the leader (HiqliteNode.backup). */
  backup(): Promise<BackupInfo>;
  /** The leader's local backups, asked of it; null when this node leads. */
  leaderBackups(signal: AbortSignal): Promise<LeaderBackups | null>;
}

export function nodeDashboardBackend(n: NodeForDashboard): DashboardBackend {
  return {
    nodeId: n.cfg.nodeId,
    members: n.cfg.nodes.map((m) => ({ id: m.id, addrApi: m.addrApi })),
    local: () => {
      const h = n.health();
      const error = typeof h.body.error === 'string' ? h.body.error : null;
      return { view: n.view(), healthy: h.ok, error };
    },
    peer: async (id, timeoutMs) => {
      const r = await n.request(id, timeoutMs);
      if (!r.ok) throw new HiqliteError(r.error.code, r.error.message, { retryable: r.error.retryable });
      return r.value as NodeView;
    },
    query: (sql, params, consistency, signal) => n.query(sql, params as QueryParams, consistency, signal),
    execute: async (sql): Promise<WriteOutcome> => {
      const out = await n.write(sql);
      if (out.result.type !== 'execute')
        throw new HiqliteError('HQL_INTERNAL', `an execute answered ${out.result.type}`, {
          retryable: false,
        });
      const v = out.result.value;
      return {
        rowsAffected: v.rowsAffected,
        lastInsertRowid: v.lastInsertRowid,
        ...(v.rows === undefined ? {} : { rows: v.rows }),
        logIndex: out.index,
      };
    },
    metrics: () => n.history.series(),
    features: () => ({ caches: n.cacheGroup() !== null, backups: n.backups() !== null }),
    caches: nodeCaches(n),
    backups: nodeBackups(n),
  };
}

/** The cache group's pages: its stats, and pages of one cache walked on its state machine. */
function nodeCaches(n: NodeForDashboard): DashboardCaches {
  return {
    overview: () => {
      const g = n.cacheGroup();
      if (g === null) return null;
      const m = g.metrics();
      return {
        ...m.stats,
        nowMs: g.logClock.nowMs(),
        bytesMax: g.sm.limits.bytesMax,
        listeners: m.listeners,
        listenerLag: m.listenerLag,
      };
    },
    entries: (cache, offset, limit) => {
      const g = n.cacheGroup();
      return g === null ? null : g.sm.entriesPage(cache, offset, limit, g.logClock.nowMs());
    },
    counters: (counter, offset, limit) => n.cacheGroup()?.sm.countersPage(counter, offset, limit) ?? null,
  };
}

function nodeBackups(n: NodeForDashboard): DashboardBackups {
  const service = () => {
    const b = n.backups();
    if (b === null)
      throw new HiqliteError('HQL_UNAVAILABLE', 'backups are not available on this node', {
        retryable: true,
      });
    return b;
  };
  return {
    available: () => n.backups() !== null,
    get s3() {
      return n.backups()?.hasS3 === true;
    },
    list: (target, signal) => service().list(target, signal),
    leaderList: (signal) => n.leaderBackups(signal),
    create: () => n.backup(),
  };
}
