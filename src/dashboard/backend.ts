/**
 * What the dashboard needs from its node: the seam between the two (the node implements it in
 * src/node/hiqlite-node.ts; unit tests implement it in memory). The dashboard sees no Raft group,
 * no config and no secret: only these calls.
 */
import type { Features, MetricsSeries, Role } from './api-types.js';

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
}
