/**
 * What the dashboard needs from its node: the seam between the two (the node implements it in
 * src/node/hiqlite-node.ts; unit tests implement it in memory). The dashboard sees no Raft group,
 * no config and no secret: only these calls.
 */
import type { CacheOverview, Features, MetricsSeries, Role } from './api-types.js';

/** A node's own view of itself (the binary API's `metrics`, `NodeMetrics`). */
export interface NodeView {
  readonly nodeId: number;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: number | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Its clock minus the cluster's, ms (absent from a node of an earlier version). */
  readonly clockOffsetMs?: number;
}

export type Row = Readonly<Record<string, unknown>>;

export interface WriteOutcome {
  readonly rowsAffected: number;
  readonly lastInsertRowid: number | bigint;
  readonly rows?: readonly Row[];
  readonly logIndex: number;
}

export interface DashboardBackend {
  readonly nodeId: number;
  /** Every node of the cluster's configuration, this one included. */
  readonly members: readonly { readonly id: number; readonly addrApi: string }[];
  /** This node: its view (null while it starts), whether `/health` is ok, and why not. */
  local(): { readonly view: NodeView | null; readonly healthy: boolean; readonly error: string | null };
  /** Another node's view, asked over its API port; rejects when it does not answer in time. */
  peer(id: number, timeoutMs: number): Promise<NodeView>;
  /** A read on this node (read threads, `query_timeout_ms`, `query_rows_max`). */
  query(
    sql: string,
    params: readonly unknown[],
    consistency: 'local' | 'linearizable',
    signal: AbortSignal,
  ): Promise<Row[]>;
  /** One statement through the normal write path (Raft), with its RETURNING rows if any. */
  execute(sql: string): Promise<WriteOutcome>;
  metrics(): MetricsSeries;
  /**
   * The extension point for pages of features built beside the dashboard (caches, backups): a
   * feature that exists says so here, and adds its routes to the dashboard's router.
   */
  features(): Features;
  /** The cache group's pages (absent: the node has no cache group). */
  readonly caches?: DashboardCaches;
  /** The backups page (absent: the node has no backup service). */
  readonly backups?: DashboardBackups;
}

/** The cache group as the dashboard sees it (null from `overview` while the group does not run). */
export interface DashboardCaches {
  overview(): CacheGroupView | null;
  /** Live entries of one cache, `limit` after skipping `offset` (the node walks, never copies, the rest). */
  entries(
    cache: string,
    offset: number,
    limit: number,
  ): {
    readonly entries: readonly { key: string; value: Uint8Array; expiresAtMs: number | null }[];
    readonly hasMore: boolean;
  } | null;
  counters(
    counter: string,
    offset: number,
    limit: number,
  ): { readonly entries: readonly (readonly [string, bigint])[]; readonly hasMore: boolean } | null;
}

/** The cache group as this node holds it: what the page shows (CacheOverview), every group listed. */
export interface CacheGroupView
  extends Pick<
    CacheOverview,
    | 'clockMs'
    | 'bytes'
    | 'bytesMax'
    | 'caches'
    | 'locksHeld'
    | 'lockWaiters'
    | 'notificationsHeld'
    | 'listeners'
    | 'listenerLag'
  > {
  /** Now for TTLs: the later of the group's log clock and this node's wall clock (as reads judge expiry). */
  readonly nowMs: number;
  readonly counterGroups: CacheOverview['counters'];
}

/** A stored backup as a target lists it (time, log index and node as its name says). */
export interface StoredBackup {
  readonly name: string;
  readonly bytes: number;
  readonly createdMs: number;
  readonly logIndex: number;
  readonly nodeId: number;
}

/** The leader's local backups, as a follower's dashboard shows them. */
export interface LeaderBackups {
  readonly nodeId: number;
  readonly backups: readonly StoredBackup[];
}

/** Backups as the dashboard sees them: listing and taking one. Never their contents or keys. */
export interface DashboardBackups {
  /** Whether backups exist on this node now (the service starts once the node is a member). */
  available(): boolean;
  /** Whether an S3 bucket is configured (`s3_url`). */
  readonly s3: boolean;
  list(target: 'local' | 's3', signal: AbortSignal): Promise<readonly StoredBackup[]>;
  /**
   * The leader's local folder (the leader takes the backups and writes them there), asked of
   * the leader; null when this node leads.
   */
  leaderList(signal: AbortSignal): Promise<LeaderBackups | null>;
  /** Takes a backup on the leader (forwarded when this node does not lead); one at a time. */
  create(): Promise<{
    readonly name: string;
    readonly logIndex: number;
    readonly createdMs: number;
    readonly bytes: number;
    readonly databaseBytes: number;
    readonly targets: readonly string[];
    readonly nodeId: number;
  }>;
}
