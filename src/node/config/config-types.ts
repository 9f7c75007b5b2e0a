/**
 * The node configuration as the user writes it (`NodeConfig`, what `start(config)` takes) and as
 * the runtime uses it (`ResolvedNodeConfig`: every default filled in, validated, paths derived).
 * Key names, defaults and ranges: docs/CONFIGURATION.md and config-keys.ts.
 */
import type { NodeId } from '../../raft/types.js';
import type { ResolvedBackupConfig } from './config-backup.js';
import type { ResolvedDashboardConfig } from './config-dashboard.js';

/** PEM files. With `caFile` peers are verified against it, without it against Node's default roots. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile?: string;
}

/**
 * `'self-signed'`: a certificate generated at start, not verified by peers; the handshake over
 * the shared secret, bound to the TLS session, authenticates them.
 */
export type TlsSetting = TlsFiles | 'self-signed';

/** One member of the cluster. Addresses are `"host:port"`, IPv6 hosts in brackets (`"[::1]:8100"`). */
export interface NodeEntry {
  readonly id: number;
  readonly addrRaft: string;
  readonly addrApi: string;
}

export interface NodeConfig {
  /** This node's id: one of the ids in `nodes`. */
  nodeId: number;
  /** Every node of the cluster, this one included: the static membership. Must contain node 1. */
  nodes: (NodeEntry | string)[];
  /**
   * Root of this node's files (relative paths resolve against the working directory). Required,
   * except on a cache-only node that keeps its cache in memory (`sqlite: false` and
   * `cacheStorageDisk: false`): such a node writes no file, and a `dataDir` given is not used.
   */
  dataDir?: string;
  /** Shared by all nodes; authenticates node-to-node connections. At least 16 characters. */
  secretRaft: string;
  /** Shared by all nodes; authenticates API clients. At least 16 characters. */
  secretApi: string;
  /** File name of the SQLite database under `<dataDir>/state_machine/db/`. Default `hiqlite.db`. */
  filenameDb?: string;
  /** Host (no port) the Raft server binds to. Default: the host of this node's own entry. */
  listenAddrRaft?: string;
  /** Host (no port) the API server binds to. Default: the host of this node's own entry. */
  listenAddrApi?: string;
  /** Join as a non-voting learner and stay one: a read replica. Not allowed on node 1. */
  learnerOnly?: boolean;
  tls?: { raft?: TlsSetting; api?: TlsSetting };
  /** Log SQL statements with their parameters. Off by default: parameters may hold personal data. */
  logStatements?: boolean;
  /**
   * Check the SQLite database file at start (`PRAGMA quick_check`, about 1.3 s per GB in the page
   * cache): a damaged file is moved aside and rebuilt from snapshot and log. Default true.
   */
  checkDatabaseAtStart?: boolean;
  /**
   * Enables the dashboard (`/dashboard` on the API port): the Argon2id PHC string of its
   * password (`hiqlite hash-password` makes one), or base64 of it as the Rust project writes it.
   */
  passwordDashboard?: string;
  /** The dashboard's session cookie without `__Host-` and `Secure`: plain HTTP away from localhost. */
  insecureCookie?: boolean;
  /** When the leader takes scheduled backups (croner, seconds first, local time). Default `0 30 2 * * *`. */
  backupCron?: string;
  /** Backups in S3 older than this many days are deleted after each scheduled backup (the newest is kept). */
  backupKeepDays?: number;
  /** Local backups older than this many days are deleted after each backup (the newest is kept). */
  backupKeepDaysLocal?: number;
  /** gzip level of new backups, 0 (stored, fastest, largest) to 9. Default 1. */
  backupGzipLevel?: number;
  /** One S3 request's deadline (its answer's headers, then every gap in its body). Default 60 s. */
  s3RequestTimeoutMs?: number;
  /** No retry of an S3 request starts after this long since its first attempt. Default 300 s. */
  s3RetryDeadlineMs?: number;
  /** The least time between two runs of `backupCron`, in seconds; a closer schedule is refused. Default 60. */
  backupCronGapMinS?: number;
  /** Unfinished S3 multipart uploads of backups older than this many hours are aborted at retention. Default 24. */
  backupS3UploadStaleHours?: number;
  /** Backup encryption keys, `"<id>/<base64 of 32 bytes>"`; keep old ones after a rotation. */
  encKeys?: string[];
  /** The id of the key in `encKeys` new backups are encrypted with. */
  encKeyActive?: string;
  /** S3 endpoint for backups (`https://host`); with it, the other `s3*` keys are required. */
  s3Url?: string;
  s3Bucket?: string;
  s3Region?: string;
  /** Path-style URLs (`host/bucket/key`, default) or virtual-hosted (`bucket.host/key`). */
  s3PathStyle?: boolean;
  /** S3 access key id. */
  s3Key?: string;
  /** S3 secret access key. */
  s3Secret?: string;
  /**
   * A folder of the bucket for this cluster's backups (`cluster-a/`): retention and listings
   * see only it, so clusters can share a bucket. Default: the bucket's top.
   */
  s3Prefix?: string;
  /** Applied entries since the last snapshot that trigger a new snapshot. */
  logsUntilSnapshot?: number;
  /** Command bytes applied since the last snapshot that trigger a new snapshot. */
  logBytesUntilSnapshot?: number;
  heartbeatIntervalMs?: number;
  electionTimeoutMs?: number;
  tickIntervalMs?: number;
  proposalTimeoutMs?: number;
  /**
   * How long after its last write a client session (exactly-once retries) is never forgotten to
   * make room for another; at least proposalTimeoutMs.
   */
  sessionProtectMs?: number;
  /** Exactly-once sessions the SQL group remembers; the same on every node. */
  sqlSessionsMax?: number;
  readTimeoutMs?: number;
  /** Limit of a read served for another process (API, HTTP); it is interrupted then. */
  queryTimeoutMs?: number;
  /** Threads serving reads for other processes (and embedded reads given a timeoutMs). */
  readThreads?: number;
  /**
   * A read thread that served no read for this long ends (its memory goes back); the next read
   * starts one again. 0: the read threads start with the node and never end.
   */
  readThreadIdleMs?: number;
  /**
   * The V8 young generation, in MB, of the SQLite writer and the read threads. Smaller: less
   * resident memory, more frequent minor collections.
   */
  threadYoungGenerationMb?: number;
  /**
   * The V8 young generation, in MB, of the node's own thread (`start()`'s default `thread:
   * 'worker'`). It makes garbage with every message, entry and call: 16 (the default) costs it
   * about a quarter less CPU per write than 4 does, for a few MB more resident.
   */
  nodeThreadYoungGenerationMb?: number;
  /**
   * The V8 old generation limit, in MB, of each thread hiqlite starts (as above); 0 (default):
   * 2,000, or the starting thread's own limit when that is smaller. Under 2,048 V8 collects at
   * twice the live data instead of four times; a thread that needs more ends with
   * ERR_WORKER_OUT_OF_MEMORY (the node is gone, `onFatal`).
   */
  threadOldGenerationMaxMb?: number;
  /** Reads waiting for a read thread before new ones get HQL_OVERLOADED. */
  readQueueMax?: number;
  /**
   * Writes of this node's own application in flight at once, SQL and cache each (each holds a
   * client session while it runs); beyond, HQL_OVERLOADED. A remote client's is `writesMax`.
   */
  writesInflightMax?: number;
  /** Most rows a read on a read thread returns; beyond, HQL_RESULT_TOO_LARGE. */
  queryRowsMax?: number;
  /** Most bytes of values a read on a read thread returns; beyond, HQL_RESULT_TOO_LARGE. */
  queryResultBytesMax?: number;
  /**
   * Rows a recursive CTE of a write may make (its LIMIT plus OFFSET, whole-number literals),
   * checked where the write is proposed; more is HQL_STATEMENT_NOT_ALLOWED.
   */
  writeRecursionRowsMax?: number;
  /**
   * The largest string, blob or row (bytes) a write may make or read, stamped into each write
   * this node proposes and applied alike on every replica (SQLite's SQLITE_LIMIT_LENGTH); also
   * bounds reads on read threads. Beyond: the statement fails with HQL_SQL (SQLITE_TOOBIG).
   */
  sqlValueBytesMax?: number;
  /** /health reports 503 once one apply batch has taken longer than this. */
  applyStallMs?: number;
  /** How long shutdown waits for the entry being applied before interrupting it. */
  shutdownTimeoutMs?: number;
  inflightMessagesMax?: number;
  inflightBytesMax?: number;
  appendBytesMax?: number;
  uncommittedEntriesMax?: number;
  uncommittedBytesMax?: number;
  /** Linearizable reads waiting for the leader's confirmation on this node, per group. */
  pendingReadsMax?: number;
  /** Committed entries queued for the state machine, per group, before Raft pauses. */
  applyQueueEntriesMax?: number;
  entryBytesMax?: number;
  frameBytesMax?: number;
  healthCheckDelaySecs?: number;
  /** Open connections on the API port, authenticated or not. */
  apiConnectionsMax?: number;
  /** Requests of one API connection being served at once; beyond, its socket is not read. */
  apiRequestsInflightMax?: number;
  /** Answers queued for one API connection that does not read them; beyond, it is closed. */
  apiSendBufferBytesMax?: number;
  apiSendBufferTotalBytesMax?: number;
  /**
   * Bytes of unfinished frames over all API connections; past it the connection holding the
   * largest is closed.
   */
  apiReceiveBufferTotalBytesMax?: number;
  /** An authenticated API connection silent this long (no ping either) is closed; 0: never. */
  apiIdleTimeoutMs?: number;
  /** Open inbound connections on the Raft port, authenticated or not. */
  raftConnectionsMax?: number;
  /** Connections not yet authenticated, per port (the oldest is closed to make room). */
  unauthenticatedConnectionsMax?: number;
  /** From TCP accept to an authenticated connection, on both ports. */
  handshakeTimeoutMs?: number;
  /** How long an HTTP request body may take to arrive on the API port; later is 408 HQL_TIMEOUT. */
  httpBodyTimeoutMs?: number;
  /**
   * How much of a body an authenticated HTTP connection still reads, and drops, when its answer
   * comes first and closes it (a 413): the client sees the answer instead of a reset. Beyond
   * it, or past `httpBodyTimeoutMs`, the connection is cut.
   */
  httpLingerBytesMax?: number;
  /**
   * How deep arrays and objects may nest in an HTTP request's JSON body; deeper is 400
   * HQL_INVALID_PARAMS, found by a scan before the body is parsed.
   */
  httpJsonDepthMax?: number;
  /**
   * How many values (arrays, objects and items) an HTTP request's JSON body may hold; more is 400
   * HQL_INVALID_PARAMS, found by the same scan.
   */
  httpJsonValuesMax?: number;
  /**
   * The cache group keeps its log and snapshots on disk (`<dataDir>/logs_cache`,
   * `<dataDir>/state_machine/cache_snapshots`), so caches survive a full restart. Default true.
   */
  cacheStorageDisk?: boolean;
  /**
   * Run the SQL group (SQLite). False: a cache-only node, which runs the cache group alone (no
   * SQLite, no database files; SQL calls fail with HQL_SQLITE_DISABLED). Every node of a cluster
   * must have the same setting. Default true.
   */
  sqlite?: boolean;
  /** How often the cache group's leader checks whether entries expired or leases ended. */
  cacheExpireIntervalMs?: number;
  /**
   * A lock waiter's wait lease in log time (ms, default 10,000): the node it waits on renews it
   * every third of this; a waiter whose node died is skipped when its turn comes once it ran out,
   * so the lock is not granted to a waiter nobody can renew or release.
   */
  cacheLockWaitLeaseMs?: number;
  /**
   * How often a node asks the others for their clocks (src/node/peer-clocks.ts): log time follows
   * the median of the nodes' clocks, so one clock that runs ahead ends no TTL or lease early.
   */
  clockProbeIntervalMs?: number;
  /**
   * Cache writes the leader proposes in one turn of its event loop share one log entry, up to
   * this many (1: an entry per write). Default 1024, the most a batch entry may hold.
   */
  cacheBatchCommandsMax?: number;
  /** Notifications one local listener may have unread before it gets HQL_LAGGED. */
  cacheListenerBufferMax?: number;
  /**
   * Their bytes (payload, channel and 64 each); beyond, HQL_LAGGED too. One notification is
   * always taken, however large.
   */
  cacheListenerBufferBytesMax?: number;
  /** Local listeners (and remote streams) on this node. */
  cacheListenersMax?: number;
  cacheKeyBytesMax?: number;
  cacheValueBytesMax?: number;
  cacheHolderIdBytesMax?: number;
  cacheEntriesPerCacheMax?: number;
  cacheCachesMax?: number;
  cacheBytesMax?: number;
  cacheLocksMax?: number;
  cacheLockWaitersPerKeyMax?: number;
  cacheNotificationsRingMax?: number;
  cacheNotificationsRingBytesMax?: number;
  cacheSessionsMax?: number;
  cacheSessionTtlMs?: number;
  cacheSessionResultsBytesMax?: number;
  cacheExpireBatchMax?: number;
}

/** The cache state machine's limits as config keys (config-keys.ts, cacheLimitKey). */
export type CacheLimitKey =
  | 'cacheKeyBytesMax'
  | 'cacheValueBytesMax'
  | 'cacheHolderIdBytesMax'
  | 'cacheEntriesPerCacheMax'
  | 'cacheCachesMax'
  | 'cacheBytesMax'
  | 'cacheLocksMax'
  | 'cacheLockWaitersPerKeyMax'
  | 'cacheNotificationsRingMax'
  | 'cacheNotificationsRingBytesMax'
  | 'cacheSessionsMax'
  | 'cacheSessionTtlMs'
  | 'cacheSessionResultsBytesMax'
  | 'cacheExpireBatchMax';

/** The integer settings that have a default (every one except `nodeId`). */
export type IntegerKey =
  | 'logsUntilSnapshot'
  | 'logBytesUntilSnapshot'
  | 'heartbeatIntervalMs'
  | 'electionTimeoutMs'
  | 'tickIntervalMs'
  | 'proposalTimeoutMs'
  | 'sessionProtectMs'
  | 'sqlSessionsMax'
  | 'readTimeoutMs'
  | 'queryTimeoutMs'
  | 'readThreads'
  | 'readThreadIdleMs'
  | 'threadYoungGenerationMb'
  | 'nodeThreadYoungGenerationMb'
  | 'threadOldGenerationMaxMb'
  | 'readQueueMax'
  | 'writesInflightMax'
  | 'queryRowsMax'
  | 'queryResultBytesMax'
  | 'writeRecursionRowsMax'
  | 'sqlValueBytesMax'
  | 'applyStallMs'
  | 'shutdownTimeoutMs'
  | 'inflightMessagesMax'
  | 'inflightBytesMax'
  | 'appendBytesMax'
  | 'uncommittedEntriesMax'
  | 'uncommittedBytesMax'
  | 'pendingReadsMax'
  | 'applyQueueEntriesMax'
  | 'entryBytesMax'
  | 'frameBytesMax'
  | 'healthCheckDelaySecs'
  | 'apiConnectionsMax'
  | 'apiRequestsInflightMax'
  | 'apiSendBufferBytesMax'
  | 'apiSendBufferTotalBytesMax'
  | 'apiReceiveBufferTotalBytesMax'
  | 'apiIdleTimeoutMs'
  | 'raftConnectionsMax'
  | 'unauthenticatedConnectionsMax'
  | 'handshakeTimeoutMs'
  | 'httpBodyTimeoutMs'
  | 'httpLingerBytesMax'
  | 'httpJsonDepthMax'
  | 'httpJsonValuesMax'
  | 'backupKeepDays'
  | 'backupKeepDaysLocal'
  | 'backupGzipLevel'
  | 'backupCronGapMinS'
  | 's3RequestTimeoutMs'
  | 's3RetryDeadlineMs'
  | 'backupS3UploadStaleHours'
  | 'cacheExpireIntervalMs'
  | 'cacheLockWaitLeaseMs'
  | 'clockProbeIntervalMs'
  | 'cacheBatchCommandsMax'
  | 'cacheListenerBufferMax'
  | 'cacheListenerBufferBytesMax'
  | 'cacheListenersMax'
  | CacheLimitKey;

/** A host without brackets (`::1`, not `[::1]`), ready for `net.connect` / `server.listen`. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ResolvedNode {
  readonly id: NodeId;
  /** As written in the config. */
  readonly addrRaft: string;
  readonly addrApi: string;
  readonly raft: HostPort;
  readonly api: HostPort;
}

export interface ResolvedPaths {
  /** `<dataDir>/logs`: the Raft log of the SQL group. */
  readonly logsDir: string;
  /** `<dataDir>/state_machine/db` */
  readonly dbDir: string;
  /** `<dataDir>/state_machine/db/<filenameDb>` */
  readonly dbFile: string;
  /** `<dataDir>/state_machine/snapshots` */
  readonly snapshotsDir: string;
  /** `<dataDir>/state_machine/backups`: the local backup target. */
  readonly backupsDir: string;
  /** `<dataDir>/logs_cache`: the Raft log of the cache group (with `cacheStorageDisk`). */
  readonly cacheLogsDir: string;
  /** `<dataDir>/state_machine/cache_snapshots` (with `cacheStorageDisk`). */
  readonly cacheSnapshotsDir: string;
}

export interface ResolvedNodeConfig extends Readonly<Record<IntegerKey, number>> {
  readonly nodeId: NodeId;
  /** Sorted by id. */
  readonly nodes: readonly ResolvedNode[];
  /** This node's own entry of `nodes`. */
  readonly self: ResolvedNode;
  /** Absolute; null on a cache-only node that keeps its cache in memory (it writes no file). */
  readonly dataDir: string | null;
  readonly filenameDb: string;
  /** Null exactly when `dataDir` is. */
  readonly paths: ResolvedPaths | null;
  readonly secretRaft: string;
  readonly secretApi: string;
  /** Bind address of the Raft server: `listenAddrRaft` (or this node's host) and this node's Raft port. */
  readonly listenRaft: HostPort;
  readonly listenApi: HostPort;
  readonly learnerOnly: boolean;
  readonly tls: { readonly raft: TlsSetting | null; readonly api: TlsSetting | null };
  readonly logStatements: boolean;
  readonly checkDatabaseAtStart: boolean;
  /** Schedule, encryption keys and S3 target of backups (retention: `backupKeepDays*`). */
  readonly backup: ResolvedBackupConfig;
  readonly dashboard: ResolvedDashboardConfig;
  readonly cacheStorageDisk: boolean;
  readonly sqlite: boolean;
  /** `heartbeatIntervalMs / tickIntervalMs`, for the Raft core (which counts ticks). */
  readonly heartbeatIntervalTicks: number;
  /** `electionTimeoutMs / tickIntervalMs`; the core randomizes the timeout in [t, 2t). */
  readonly electionTimeoutTicks: number;
}

/** A node with a data directory: every node but a cache-only one that keeps its cache in memory. */
export type DiskNodeConfig = ResolvedNodeConfig & {
  readonly dataDir: string;
  readonly paths: ResolvedPaths;
};

/** A node that runs the SQL group (`sqlite = true`): it always has a data directory. */
export type SqlNodeConfig = DiskNodeConfig & { readonly sqlite: true };
