/**
 * The table of configuration keys: camelCase name, TOML name (as in the Rust project), value
 * kind, default and range. The validator, the TOML loader and docs/CONFIGURATION.md follow it;
 * a test checks that every key here is documented.
 */
import { SESSION_PROTECT_CONFIG_MIN_MS, SESSION_PROTECT_MS_MAX } from '../../lib/client-session.js';
import { CACHE_LIMIT_BOUNDS, type CacheLimits, DEFAULT_CACHE_LIMITS } from '../../sm/cache/options.js';
import { SQLITE_LENGTH_MAX, VALUE_BYTES_MAX_MIN } from '../../sm/sql/command.js';
import {
  NODE_THREAD_YOUNG_GENERATION_MB_DEFAULT,
  OLD_GENERATION_MAX_MB_DEFAULT,
  YOUNG_GENERATION_MB_DEFAULT,
} from '../../sm/sql/worker-client.js';
import type { ResolvedNodeConfig } from './config.js';
import type { CacheLimitKey, IntegerKey, NodeConfig } from './config-types.js';

/**
 * Bounds of a lock waiter's wait lease (`cache_lock_wait_lease_ms`); a proposal naming one
 * outside them is refused (CacheGroup's checkProposal), so no wait lease outlives an hour.
 */
export const LOCK_WAIT_LEASE_MS_BOUNDS = [300, 3_600_000] as const;

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const FILENAME_DB_DEFAULT = 'hiqlite.db';
/** Secrets shorter than this are guessable offline from one captured handshake. */
export const SECRET_CHARS_MIN = 16;
/** Node ids travel as unsigned 32-bit integers; 0 is reserved. */
export const NODE_ID_MAX = 2 ** 32 - 1;
/** Members of one cluster (voters and learners); bounds every per-node loop and map. */
export const NODES_MAX = 1000;
/**
 * Room for the framing and message header around the payload of one AppendEntries: a message
 * always carries at least one whole entry, so a frame must hold the largest entry plus this.
 */
export const FRAME_HEADROOM_BYTES = 64 * KiB;

export interface IntegerSetting {
  readonly key: IntegerKey;
  readonly toml: string;
  readonly default: number;
  /** Inclusive bounds. */
  readonly min: number;
  readonly max: number;
}

/** Every integer setting with a default. Cross-key rules live in config-resolve.ts. */
export const INTEGER_SETTINGS: readonly IntegerSetting[] = [
  { key: 'logsUntilSnapshot', toml: 'logs_until_snapshot', default: 10_000, min: 1, max: 100_000_000 },
  {
    key: 'logBytesUntilSnapshot',
    toml: 'log_bytes_until_snapshot',
    default: 256 * MiB,
    min: KiB,
    max: 64 * GiB,
  },
  // The Rust project's defaults: heartbeat 500 ms, election timeout 1500 ms (randomized up to 3000).
  { key: 'tickIntervalMs', toml: 'tick_interval_ms', default: 100, min: 1, max: 10_000 },
  { key: 'heartbeatIntervalMs', toml: 'heartbeat_interval_ms', default: 500, min: 1, max: 60_000 },
  { key: 'electionTimeoutMs', toml: 'election_timeout_ms', default: 1500, min: 1, max: 600_000 },
  { key: 'proposalTimeoutMs', toml: 'proposal_timeout_ms', default: 10_000, min: 1, max: 3_600_000 },
  // Exactly-once sessions the SQL group remembers (replicated state: the same on every node).
  { key: 'sqlSessionsMax', toml: 'sql_sessions_max', default: 10_000, min: 1, max: 10_000_000 },
  // The most a client session (exactly-once retries) is protected for (lib/client-session.ts);
  // unset, at least proposal_timeout_ms plus the margin (config-resolve.ts). Never below what a
  // client's default deadline (10 s) and the margin need.
  {
    key: 'sessionProtectMs',
    toml: 'session_protect_ms',
    default: 300_000,
    min: SESSION_PROTECT_CONFIG_MIN_MS,
    max: SESSION_PROTECT_MS_MAX,
  },
  { key: 'readTimeoutMs', toml: 'read_timeout_ms', default: 10_000, min: 1, max: 3_600_000 },
  // Reads for other processes run on read threads and are interrupted at this limit.
  { key: 'queryTimeoutMs', toml: 'query_timeout_ms', default: 10_000, min: 1, max: 3_600_000 },
  { key: 'readThreads', toml: 'read_threads', default: 2, min: 1, max: 64 },
  // A read thread costs about 12 MB resident: it ends after this long without a read (0: never).
  { key: 'readThreadIdleMs', toml: 'read_thread_idle_ms', default: 30_000, min: 0, max: 86_400_000 },
  // V8 young generation of the SQLite writer and the read threads (worker-client.ts).
  {
    key: 'threadYoungGenerationMb',
    toml: 'thread_young_generation_mb',
    default: YOUNG_GENERATION_MB_DEFAULT,
    min: 1,
    max: 1024,
  },
  // V8 young generation of the node's own thread (start()'s default thread: 'worker').
  {
    key: 'nodeThreadYoungGenerationMb',
    toml: 'node_thread_young_generation_mb',
    default: NODE_THREAD_YOUNG_GENERATION_MB_DEFAULT,
    min: 1,
    max: 1024,
  },
  // V8 old generation limit of each thread hiqlite starts (worker-client.ts).
  {
    key: 'threadOldGenerationMaxMb',
    toml: 'thread_old_generation_max_mb',
    default: OLD_GENERATION_MAX_MB_DEFAULT,
    min: 0,
    max: 1_048_576,
  },
  { key: 'readQueueMax', toml: 'read_queue_max', default: 1024, min: 1, max: 1_000_000 },
  // Writes of the node's own application in flight (client sessions), SQL and cache each.
  { key: 'writesInflightMax', toml: 'writes_inflight_max', default: 4096, min: 1, max: 1_000_000 },
  { key: 'queryRowsMax', toml: 'query_rows_max', default: 1_000_000, min: 1, max: 1_000_000_000 },
  {
    key: 'queryResultBytesMax',
    toml: 'query_result_bytes_max',
    default: 64 * 1024 * 1024,
    min: 1024,
    max: 2 * 1024 * 1024 * 1024,
  },
  // Rows a recursive CTE of a write being proposed may make (its LIMIT plus OFFSET).
  {
    key: 'writeRecursionRowsMax',
    toml: 'write_recursion_rows_max',
    default: 10_000_000,
    min: 1,
    max: 1_000_000_000_000,
  },
  // The largest string, blob or row a write (stamped into it, applied alike on every replica) or a
  // read on a read thread may make or read.
  {
    key: 'sqlValueBytesMax',
    toml: 'sql_value_bytes_max',
    default: 32 * MiB,
    min: VALUE_BYTES_MAX_MIN,
    max: SQLITE_LENGTH_MAX,
  },
  // /health turns 503 when one apply batch takes longer than this (a write that does not end).
  { key: 'applyStallMs', toml: 'apply_stall_ms', default: 30_000, min: 1, max: 86_400_000 },
  // Shutdown waits this long for the entry being applied, then interrupts it.
  { key: 'shutdownTimeoutMs', toml: 'shutdown_timeout_ms', default: 10_000, min: 1, max: 3_600_000 },
  { key: 'inflightMessagesMax', toml: 'inflight_messages_max', default: 64, min: 1, max: 65_536 },
  { key: 'inflightBytesMax', toml: 'inflight_bytes_max', default: 16 * MiB, min: 1, max: GiB },
  { key: 'appendBytesMax', toml: 'append_bytes_max', default: MiB, min: 1, max: 256 * MiB },
  { key: 'uncommittedEntriesMax', toml: 'uncommitted_entries_max', default: 10_000, min: 1, max: 10_000_000 },
  { key: 'uncommittedBytesMax', toml: 'uncommitted_bytes_max', default: 64 * MiB, min: 1, max: 4 * GiB },
  // Per group: linearizable reads waiting for the leader's confirmation on this node.
  { key: 'pendingReadsMax', toml: 'pending_reads_max', default: 100_000, min: 1, max: 10_000_000 },
  // Per group: committed entries queued for the state machine before the node stops taking
  // more from the Raft core (it resumes as the queue drains).
  {
    key: 'applyQueueEntriesMax',
    toml: 'apply_queue_entries_max',
    default: 100_000,
    min: 1,
    max: 10_000_000,
  },
  // One entry must fit in one 64 MiB log segment and, with its header, in one frame.
  { key: 'entryBytesMax', toml: 'entry_bytes_max', default: 8 * MiB, min: KiB, max: 32 * MiB },
  // A frame also carries snapshot chunks of 1 MiB: 2 MiB leaves room for them.
  { key: 'frameBytesMax', toml: 'frame_bytes_max', default: 16 * MiB, min: 2 * MiB, max: GiB },
  { key: 'healthCheckDelaySecs', toml: 'health_check_delay_secs', default: 30, min: 0, max: 86_400 },
  // Connections per port. Each costs a socket and its buffers; the unauthenticated ones are
  // anyone's and bounded apart, below both caps, so strangers cannot take the authenticated
  // connections' room.
  { key: 'apiConnectionsMax', toml: 'api_connections_max', default: 1024, min: 2, max: 65_536 },
  { key: 'apiRequestsInflightMax', toml: 'api_requests_inflight_max', default: 1024, min: 1, max: 1_000_000 },
  {
    key: 'apiSendBufferBytesMax',
    toml: 'api_send_buffer_bytes_max',
    default: 256 * MiB,
    min: MiB,
    max: 16 * GiB,
  },
  // All API connections together: a thousand clients that stop reading must not each hold the
  // per-connection bound. Checked when a connection's own backlog passes 1 MiB.
  {
    key: 'apiSendBufferTotalBytesMax',
    toml: 'api_send_buffer_total_bytes_max',
    default: GiB,
    min: MiB,
    max: 64 * GiB,
  },
  // Unfinished frames of all API connections together: each connection may hold up to
  // frame_bytes_max of one, so a thousand that send most of a frame and stop held 16 GiB.
  // Checked when a connection's unfinished frame passes 1 MiB.
  {
    key: 'apiReceiveBufferTotalBytesMax',
    toml: 'api_receive_buffer_total_bytes_max',
    default: 256 * MiB,
    min: 2 * MiB,
    max: 64 * GiB,
  },
  // Above a client's keepalive (a ping after 5 s of silence, closed after 15 s): only a
  // connection whose client vanished goes silent this long.
  { key: 'apiIdleTimeoutMs', toml: 'api_idle_timeout_ms', default: 60_000, min: 0, max: 86_400_000 },
  { key: 'raftConnectionsMax', toml: 'raft_connections_max', default: 256, min: 2, max: 65_536 },
  {
    key: 'unauthenticatedConnectionsMax',
    toml: 'unauthenticated_connections_max',
    default: 64,
    min: 1,
    max: 65_535,
  },
  // From TCP accept to an authenticated connection (TLS, HTTP upgrade and secret handshake).
  { key: 'handshakeTimeoutMs', toml: 'handshake_timeout_ms', default: 5000, min: 1, max: 600_000 },
  // From an HTTP request's headers to the end of its body (JSON routes, cache routes, dashboard).
  { key: 'httpBodyTimeoutMs', toml: 'http_body_timeout_ms', default: 30_000, min: 1, max: 3_600_000 },
  // How much of a refused body an authenticated HTTP connection still reads before it closes.
  {
    key: 'httpLingerBytesMax',
    toml: 'http_linger_bytes_max',
    default: 64 * 1024 * 1024,
    min: 0,
    max: 4 * 1024 * 1024 * 1024,
  },
  // How deep arrays and objects may nest in an HTTP request's JSON body (checked before parsing).
  { key: 'httpJsonDepthMax', toml: 'http_json_depth_max', default: 128, min: 1, max: 10_000 },
  // How many values (arrays, objects, items) such a body may hold (the same scan).
  { key: 'httpJsonValuesMax', toml: 'http_json_values_max', default: 1_000_000, min: 1, max: 1_000_000_000 },
  // Backup retention, the Rust project's defaults. The newest backup is never deleted by it.
  { key: 'backupKeepDays', toml: 'backup_keep_days', default: 30, min: 1, max: 36_500 },
  { key: 'backupKeepDaysLocal', toml: 'backup_keep_days_local', default: 30, min: 1, max: 36_500 },
  // gzip level of backups: compression takes most of a backup's time (docs/BENCHMARKS.md).
  { key: 'backupGzipLevel', toml: 'backup_gzip_level', default: 1, min: 0, max: 9 },
  // A schedule whose runs come closer than this is refused: every backup is a whole copy of the
  // database, kept backup_keep_days, so a pattern firing every second fills the disk.
  { key: 'backupCronGapMinS', toml: 'backup_cron_gap_min_s', default: 60, min: 1, max: 86_400 },
  // One S3 request: until its answer's headers arrive, then again for every gap in its body.
  { key: 's3RequestTimeoutMs', toml: 's3_request_timeout_ms', default: 60_000, min: 100, max: 3_600_000 },
  // No retry of an S3 request starts after this long since its first attempt: with S3 hung, a
  // backup fails (HQL_S3 RequestDeadline) after about this plus one request's timeout.
  { key: 's3RetryDeadlineMs', toml: 's3_retry_deadline_ms', default: 300_000, min: 0, max: 86_400_000 },
  // Multipart uploads to S3 of a backup whose node died mid-upload are aborted after this long
  // (their parts are billed and invisible to list); younger ones may still be running elsewhere.
  {
    key: 'backupS3UploadStaleHours',
    toml: 'backup_s3_upload_stale_hours',
    default: 24,
    min: 1,
    max: 8760,
  },
  // How often a node asks the others for their clocks: log time follows their median.
  { key: 'clockProbeIntervalMs', toml: 'clock_probe_interval_ms', default: 2000, min: 100, max: 60_000 },
  // The cache group's runtime (the limits of its state machine follow).
  { key: 'cacheExpireIntervalMs', toml: 'cache_expire_interval_ms', default: 200, min: 1, max: 3_600_000 },
  // A lock waiter's wait lease in log time: the node it waits on renews it every third of this;
  // a waiter whose node died is skipped once it ran out (instead of being granted the lock).
  {
    key: 'cacheLockWaitLeaseMs',
    toml: 'cache_lock_wait_lease_ms',
    default: 10_000,
    min: LOCK_WAIT_LEASE_MS_BOUNDS[0],
    max: LOCK_WAIT_LEASE_MS_BOUNDS[1],
  },
  // Writes the leader proposes in one turn share a log entry, up to this many (1: one per entry).
  { key: 'cacheBatchCommandsMax', toml: 'cache_batch_commands_max', default: 1024, min: 1, max: 1024 },
  {
    key: 'cacheListenerBufferMax',
    toml: 'cache_listener_buffer_max',
    default: 10_000,
    min: 1,
    max: 10_000_000,
  },
  // Their bytes (payload, channel and 64 each): a reader that never reads holds at most this much.
  {
    key: 'cacheListenerBufferBytesMax',
    toml: 'cache_listener_buffer_bytes_max',
    default: 64 * 1024 * 1024,
    min: 1,
    max: 2 ** 40,
  },
  { key: 'cacheListenersMax', toml: 'cache_listeners_max', default: 10_000, min: 1, max: 1_000_000 },
  ...cacheLimitSettings(),
];

/**
 * The cache state machine's limits (src/sm/cache/options.ts) as `cache_*` keys: `keyBytesMax`
 * is `cacheKeyBytesMax` / `cache_key_bytes_max`. They decide the outcome of commands, so every
 * node of a cluster must use the same values.
 */
function cacheLimitSettings(): IntegerSetting[] {
  return (Object.keys(DEFAULT_CACHE_LIMITS) as Array<keyof CacheLimits>).map((name) => {
    const [min, max] = CACHE_LIMIT_BOUNDS[name];
    return {
      key: cacheLimitKey(name),
      toml: `cache_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`,
      default: DEFAULT_CACHE_LIMITS[name],
      min,
      max,
    };
  });
}

/** `keyBytesMax` → `cacheKeyBytesMax`. */
export function cacheLimitKey(name: keyof CacheLimits): CacheLimitKey {
  return `cache${name[0]?.toUpperCase()}${name.slice(1)}` as CacheLimitKey;
}

/** The cache limits of a node's configuration (they must be the same on every replica). */
export function cacheLimitsOf(cfg: ResolvedNodeConfig): Partial<CacheLimits> {
  return Object.fromEntries(
    (
      [
        'keyBytesMax',
        'valueBytesMax',
        'holderIdBytesMax',
        'entriesPerCacheMax',
        'cachesMax',
        'bytesMax',
        'locksMax',
        'lockWaitersPerKeyMax',
        'notificationsRingMax',
        'notificationsRingBytesMax',
        'sessionsMax',
        'sessionTtlMs',
        'sessionResultsBytesMax',
        'expireBatchMax',
      ] as const
    ).map((name) => [name, cfg[cacheLimitKey(name)]]),
  );
}

/** Every key `NodeConfig` accepts (unknown keys are an error). */
export const CONFIG_KEYS: ReadonlySet<keyof NodeConfig> = new Set<keyof NodeConfig>([
  'nodeId',
  'nodes',
  'dataDir',
  'secretRaft',
  'secretApi',
  'filenameDb',
  'listenAddrRaft',
  'listenAddrApi',
  'learnerOnly',
  'tls',
  'logStatements',
  'checkDatabaseAtStart',
  'passwordDashboard',
  'insecureCookie',
  'backupCron',
  'encKeys',
  'encKeyActive',
  's3Url',
  's3Bucket',
  's3Region',
  's3PathStyle',
  's3Key',
  's3Secret',
  's3Prefix',
  'cacheStorageDisk',
  'sqlite',
  ...INTEGER_SETTINGS.map((s) => s.key),
]);

export type TomlValueKind = 'integer' | 'boolean' | 'string' | 'strings' | 'nodes';

export interface TomlKey {
  readonly toml: string;
  readonly kind: TomlValueKind;
  /**
   * The camelCase path the value lands at (`nodeId`, `tls.raft.certFile`), or `tlsAuto` for
   * `tls_auto_certificates`, which becomes `'self-signed'` on each side without files.
   */
  readonly target: string;
  /** Other environment variables read for this key, after `HQL_<KEY>` (the Rust project's names). */
  readonly envAliases?: readonly string[];
}

export const TOML_KEYS: readonly TomlKey[] = [
  { toml: 'node_id', kind: 'integer', target: 'nodeId' },
  { toml: 'nodes', kind: 'nodes', target: 'nodes' },
  { toml: 'data_dir', kind: 'string', target: 'dataDir' },
  { toml: 'secret_raft', kind: 'string', target: 'secretRaft' },
  { toml: 'secret_api', kind: 'string', target: 'secretApi' },
  { toml: 'filename_db', kind: 'string', target: 'filenameDb' },
  { toml: 'listen_addr_raft', kind: 'string', target: 'listenAddrRaft' },
  { toml: 'listen_addr_api', kind: 'string', target: 'listenAddrApi' },
  { toml: 'learner_only', kind: 'boolean', target: 'learnerOnly' },
  { toml: 'log_statements', kind: 'boolean', target: 'logStatements' },
  { toml: 'check_database_at_start', kind: 'boolean', target: 'checkDatabaseAtStart' },
  { toml: 'password_dashboard', kind: 'string', target: 'passwordDashboard' },
  { toml: 'insecure_cookie', kind: 'boolean', target: 'insecureCookie' },
  { toml: 'backup_cron', kind: 'string', target: 'backupCron' },
  // The Rust project reads these two without the HQL_ prefix.
  { toml: 'enc_keys', kind: 'strings', target: 'encKeys', envAliases: ['ENC_KEYS'] },
  { toml: 'enc_key_active', kind: 'string', target: 'encKeyActive', envAliases: ['ENC_KEY_ACTIVE'] },
  { toml: 's3_url', kind: 'string', target: 's3Url' },
  { toml: 's3_bucket', kind: 'string', target: 's3Bucket' },
  { toml: 's3_region', kind: 'string', target: 's3Region' },
  { toml: 's3_path_style', kind: 'boolean', target: 's3PathStyle' },
  { toml: 's3_key', kind: 'string', target: 's3Key' },
  { toml: 's3_secret', kind: 'string', target: 's3Secret' },
  { toml: 's3_prefix', kind: 'string', target: 's3Prefix' },
  { toml: 'cache_storage_disk', kind: 'boolean', target: 'cacheStorageDisk' },
  { toml: 'sqlite', kind: 'boolean', target: 'sqlite' },
  { toml: 'tls_raft_cert', kind: 'string', target: 'tls.raft.certFile' },
  { toml: 'tls_raft_key', kind: 'string', target: 'tls.raft.keyFile' },
  { toml: 'tls_raft_ca', kind: 'string', target: 'tls.raft.caFile' },
  { toml: 'tls_api_cert', kind: 'string', target: 'tls.api.certFile' },
  { toml: 'tls_api_key', kind: 'string', target: 'tls.api.keyFile' },
  { toml: 'tls_api_ca', kind: 'string', target: 'tls.api.caFile' },
  { toml: 'tls_auto_certificates', kind: 'boolean', target: 'tlsAuto', envAliases: ['HQL_TLS_AUTO_CERTS'] },
  ...INTEGER_SETTINGS.map((s): TomlKey => ({ toml: s.toml, kind: 'integer', target: s.key })),
];

export function envName(tomlKey: string): string {
  return `HQL_${tomlKey.toUpperCase()}`;
}

/**
 * Keys of the Rust project's features this version does not have yet. A config written for the
 * Rust server still loads: each one present yields a warning, and is ignored.
 */
export const RUST_ONLY_KEYS: readonly string[] = [
  'node_id_from',
  'prepared_statement_cache_capacity',
  'read_pool_size',
  'log_sync',
  'wal_sync',
  'wal_size',
  'raft_config',
  'tls_raft_danger_tls_no_verify',
  'tls_api_danger_tls_no_verify',
  'secrets_file',
  'rate_limit_cache_rps',
  'rate_limit_cache_burst',
  'rate_limit_db_rps',
  'rate_limit_db_burst',
];

/** Environment variables of the Rust project that are not (yet) read here. */
export const RUST_ONLY_ENV: readonly string[] = [
  ...RUST_ONLY_KEYS.map(envName),
  'HQL_RL_CACHE_RPS',
  'HQL_RL_CACHE_BURST',
  'HQL_RL_DB_RPS',
  'HQL_RL_DB_BURST',
  'HQL_BACKUP_SKIP_VALIDATION',
  'HQL_DANGER_RAFT_STATE_RESET',
  'HQL_CHECK_WAL_INTEGRITY',
  'HQL_SPLIT_BRAIN_INTERVAL',
];
