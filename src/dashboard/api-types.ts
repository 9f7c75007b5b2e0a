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
  /** '' for a member this node's `nodes` list does not name (`listed` false). */
  readonly addrApi: string;
  /**
   * In this node's `nodes` list. A member that is not (a voter whose node was taken out of the
   * lists but not removed: `hiqlite remove-node`) is shown too, as down: its vote still counts.
   */
  readonly listed: boolean;
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
  /** Its wall clock minus the cluster's (the median of the nodes' clocks), ms; null: unknown. */
  readonly clockOffsetMs: number | null;
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

// ---- Caches (the cache group) -------------------------------------------------------------------

/** `GET /dashboard/api/caches`: the cache group as this node holds it. */
export interface CacheOverview {
  readonly caches: readonly { readonly name: string; readonly entries: number; readonly bytes: number }[];
  readonly counters: readonly { readonly name: string; readonly keys: number }[];
  /** More caches or counter groups exist than are listed. */
  readonly truncated: boolean;
  /** Accounted bytes of every entry and counter, and their bound (`cache_bytes_max`). */
  readonly bytes: number;
  readonly bytesMax: number;
  readonly locksHeld: number;
  readonly lockWaiters: number;
  /** Listeners on this node, and notifications buffered for them not yet taken. */
  readonly listeners: number;
  readonly listenerLag: number;
  readonly notificationsHeld: number;
  /** The group's log clock (ms since the epoch): TTLs count down against it. */
  readonly clockMs: number;
}

/** A cache value as the page shows it: decoded and cut to a preview, never whole when large. */
export type ValuePreview =
  /** A msgpack value other than bytes, as JSON (bigints as strings), cut at the preview bound. */
  | { readonly kind: 'json'; readonly bytes: number; readonly text: string; readonly truncated: boolean }
  /** msgpack binary (a `Uint8Array` value): its size and first bytes in hex. */
  | { readonly kind: 'bytes'; readonly bytes: number; readonly size: number; readonly hex: string }
  /** Not msgpack, or too large to decode for a preview: the stored bytes' first bytes in hex. */
  | {
      readonly kind: 'raw';
      readonly bytes: number;
      readonly hex: string;
      readonly reason: 'not-msgpack' | 'too-large';
    };

export interface CacheKeyRow {
  readonly key: string;
  /** Counters: the value as decimal text. Caches: the preview. */
  readonly value: ValuePreview | string;
  /** Time left before it expires, against the group's clock; null: no TTL. */
  readonly ttlMs: number | null;
}

/** `GET /dashboard/api/cache-keys?kind=cache|counter&name=…&offset=…&limit=…` */
export interface CacheKeyPage {
  readonly kind: 'cache' | 'counter';
  readonly name: string;
  readonly offset: number;
  readonly rows: readonly CacheKeyRow[];
  readonly hasMore: boolean;
}

// ---- Backups --------------------------------------------------------------------------------------

export interface BackupItem {
  /** `backup_<time>_i<index>_n<node>.hqbak`: time, log index and node come from the name. */
  readonly name: string;
  readonly bytes: number;
  readonly createdMs: number;
  readonly logIndex: number;
  readonly nodeId: number;
}

/** One target's listing, or why it could not be listed. */
export type BackupTargetList =
  | {
      readonly ok: true;
      readonly backups: readonly BackupItem[];
      /** More backups exist than are listed (the newest are). */
      readonly truncated: boolean;
    }
  | { readonly ok: false; readonly error: ApiFailure };

/** What the last backup asked for from this dashboard gave. */
export type BackupOutcome =
  | { readonly ok: true; readonly atWallMs: number; readonly backup: BackupCreated }
  | { readonly ok: false; readonly atWallMs: number; readonly error: ApiFailure };

/** `GET /dashboard/api/backups` */
export interface BackupList {
  /** This node's local folder (the node that leads when a backup is taken writes it there). */
  readonly local: BackupTargetList;
  /**
   * On a follower, the leader's local folder (asked of the leader: it takes the backups and
   * writes them there); null on the leader. Backups taken under earlier leaders stay in those
   * nodes' folders: a backup's `nodeId` is the node that took it and holds it.
   */
  readonly leader: { readonly nodeId: number | null; readonly list: BackupTargetList } | null;
  /** The S3 bucket; null when `s3_url` is not configured. */
  readonly s3: BackupTargetList | null;
  /** A backup asked for from this dashboard runs since then (wall clock), or null. */
  readonly runningSinceWallMs: number | null;
  readonly last: BackupOutcome | null;
}

/** `POST /dashboard/api/backup`: what the backup produced (no key, no content). */
export interface BackupCreated {
  readonly name: string;
  readonly logIndex: number;
  readonly createdMs: number;
  readonly bytes: number;
  readonly databaseBytes: number;
  readonly targets: readonly string[];
  readonly nodeId: number;
  /** A backup asked for from this node's dashboard was running: this request waited for it. */
  readonly joined: boolean;
}
