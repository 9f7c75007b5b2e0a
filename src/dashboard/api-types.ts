/**
 * The JSON of the dashboard's routes (`/dashboard/api/…`), shared by the node (src/dashboard) and
 * the page (src/dashboard/ui). Types only: the page's bundle imports nothing from the node.
 */

export interface ApiFailure {
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
}

export type ApiAnswer<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ApiFailure };

/** Pages of features that may or may not exist on this node (the extension point). */
export interface Features {
  readonly caches: boolean;
  readonly backups: boolean;
}

/** `GET /dashboard/api/session`, and the answer of `POST /dashboard/api/login`. */
export interface SessionInfo {
  /** Sent back in the `X-CSRF-Token` header of every state-changing request. */
  readonly csrfToken: string;
  readonly nodeId: number;
  /** The session ends this long after now unless it is used again (at most its lifetime). */
  readonly expiresInMs: number;
  readonly features: Features;
}

export type Role = 'leader' | 'follower' | 'candidate' | 'learner';

export interface MemberStatus {
  readonly id: number;
  readonly addrApi: string;
  /** The node that serves this dashboard. */
  readonly self: boolean;
  /** It answered within the deadline. */
  readonly up: boolean;
  /** Why it is down, or what is wrong with it. */
  readonly error: string | null;
  readonly role: Role | null;
  readonly voter: boolean | null;
  readonly term: number | null;
  readonly leaderId: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly lastLogIndex: number | null;
  /** Entries it has yet to apply, against the highest commit index seen in this round. */
  readonly lag: number | null;
  /** Up, a member, and knows a leader (for this node: its `/health`). */
  readonly healthy: boolean;
}

export interface ClusterStatus {
  readonly nodeId: number;
  /** The leader most members name (null when none). */
  readonly leaderId: number | null;
  readonly term: number | null;
  readonly members: readonly MemberStatus[];
  /** When this round of questions ended (wall clock, for the page's "updated …"). */
  readonly atWallMs: number;
}

/** A value as the page shows it: long text and blobs are cut to a preview. */
export type Cell =
  | null
  | number
  | string
  | { readonly kind: 'bigint'; readonly text: string }
  | { readonly kind: 'blob'; readonly bytes: number; readonly hex: string }
  | { readonly kind: 'long'; readonly chars: number; readonly text: string };

export interface RowPage {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  readonly offset: number;
  /** More rows follow this page. */
  readonly hasMore: boolean;
  readonly elapsedMs: number;
}

export interface QueryRequest {
  readonly sql: string;
  readonly consistency: 'local' | 'linearizable';
  readonly offset?: number;
  readonly limit?: number;
}

export interface ExecuteRequest {
  readonly sql: string;
}

export interface ExecuteResult {
  readonly rowsAffected: number;
  readonly lastInsertRowid: number | string;
  readonly logIndex: number;
  /** Rows of a `RETURNING` clause (at most one page). */
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  readonly elapsedMs: number;
}

export interface SchemaObject {
  readonly type: 'table' | 'view' | 'index' | 'trigger';
  readonly name: string;
  /** The table an index or trigger belongs to (the object itself for tables and views). */
  readonly table: string;
  readonly sql: string | null;
  /** Rows of a table; null for other objects, internal tables, or when not counted. */
  readonly rows: number | null;
  /** The state machine's own (`_hq_*`): listed, never read. */
  readonly internal: boolean;
}

export interface SchemaList {
  readonly objects: readonly SchemaObject[];
  /** More objects exist than are listed. */
  readonly truncated: boolean;
}

/** One sample per second, oldest first; the last one ends at `endWallMs`. */
export interface MetricsSeries {
  readonly intervalMs: number;
  readonly endWallMs: number;
  readonly writesPerSec: readonly number[];
  readonly readsPerSec: readonly number[];
  /** Committed entries not yet applied on this node, at the sample. */
  readonly applyLag: readonly number[];
  /** Write latency on this node in that second (null: no writes). */
  readonly latencyP50Ms: readonly (number | null)[];
  readonly latencyP99Ms: readonly (number | null)[];
}
