/**
 * `connect(options)`: a client without a local replica. It keeps one authenticated, multiplexed
 * connection to one node of the cluster (the first reachable of `nodes`, failing over to the
 * next), sends its reads there and its writes through it (the node forwards them to the leader).
 * Writes carry a client session, so a write retried after a failure is applied once.
 * Connections, routing and retries: cluster-link.ts (shared with the proxy).
 */

import { randomBytes, randomInt } from 'node:crypto';
import { copyParams } from '../lib/copy-params.js';
import { HiqliteError } from '../lib/errors.js';
import type { ClusterMembership, QueryOptions } from '../node/hiqlite-node.js';
import type { BackupInfo } from '../node/node-features.js';
import { SessionPool } from '../node/session-pool.js';
import { SQL_BYTES_MAX } from '../protocol/api-codec.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import { CLIENT_SESSION_PREFIX } from '../sm/sql/client-proposal.js';
import type { CommandInput } from '../sm/sql/command.js';
import { prepareForProposal } from '../sm/sql/determinism.js';
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
import { ClientBase, type HiqliteClient, type Metrics, type Params } from './client.js';
import { ClusterLink, type LinkBody, type LinkKind } from './cluster-link.js';
import { checkConnectOptions } from './entry-options.js';
import { RemoteCacheOps } from './remote-cache.js';

export { parseApiAddress } from './api-address.js';

/** How long `backup()` waits: a large database takes minutes (the node's own limit is the same). */
const BACKUP_TIMEOUT_MS = 3_600_000;
/** What a remote `listen()` may hold unread, in bytes, unless `listenBufferBytesMax` says (as a node's `cache_listener_buffer_bytes_max`). */
const LISTEN_BUFFER_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

export interface ConnectOptions {
  /** API addresses, "host:port". */
  readonly nodes: readonly string[];
  readonly secretApi: string;
  /** TLS on the API port: true accepts a self-signed certificate (the handshake authenticates), or a CA file. */
  readonly tls?: boolean | { readonly caFile: string };
  /** Per request, including retries across leader changes. Default 10 s. */
  readonly requestTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Concurrent writes from this client. Default 4096 (SQL and cache writes each). */
  readonly writesMax?: number;
  /** Notifications a `listen()` may hold unread before it ends with HQL_LAGGED. Default 10000. */
  readonly listenBufferMax?: number;
  /**
   * Their bytes (payload, channel and 64 each) before it ends with HQL_LAGGED; one notification
   * is always taken, however large. Default 64 MiB.
   */
  readonly listenBufferBytesMax?: number;
  /**
   * How long a `listen()` tries to resume after its connection was lost (node killed, network),
   * before it fails with the last error. Default 30 s.
   */
  readonly listenResumeTimeoutMs?: number;
  /**
   * Dead-node detection: a connection from which nothing arrived for this long sends a `ping`.
   * Default 1000 (KEEPALIVE_INTERVAL_MS_DEFAULT); 0 turns the keepalive off.
   */
  readonly keepaliveIntervalMs?: number;
  /**
   * A connection from which nothing arrived for this long is closed as dead (its node vanished
   * without closing it: powered off, partitioned, frozen); requests on it fail HQL_UNAVAILABLE and
   * are retried, a listener resumes on another node. Default 4000 (KEEPALIVE_TIMEOUT_MS_DEFAULT).
   */
  readonly keepaliveTimeoutMs?: number;
}

/** The ClusterLink of connect(): no leader following (a node forwards writes), as it always was. */
export function linkFor(o: ConnectOptions): ClusterLink {
  return new ClusterLink({
    nodes: o.nodes,
    secretApi: o.secretApi,
    ...(o.tls === undefined ? {} : { tls: o.tls }),
    requestTimeoutMs: o.requestTimeoutMs ?? 10_000,
    connectTimeoutMs: o.connectTimeoutMs ?? 3000,
    followLeader: false,
    frameBytesMax: 64 * 1024 * 1024,
    inflightMax: 100_000,
    ...(o.keepaliveIntervalMs === undefined ? {} : { keepaliveIntervalMs: o.keepaliveIntervalMs }),
    ...(o.keepaliveTimeoutMs === undefined ? {} : { keepaliveTimeoutMs: o.keepaliveTimeoutMs }),
  });
}

/** The client over a ClusterLink: connect() builds one, the proxy one for its JSON routes. */
export class RemoteClient extends ClientBase {
  private readonly sessions: SessionPool;
  /** The cache primitives (remote-cache.ts): `db.cache()`, `db.counter()`, listen/notify, locks. */
  private readonly remoteCaches: RemoteCacheOps;

  constructor(
    private readonly link: ClusterLink,
    o: Pick<
      ConnectOptions,
      'writesMax' | 'listenBufferMax' | 'listenBufferBytesMax' | 'listenResumeTimeoutMs'
    > = {},
  ) {
    super();
    this.sessions = new SessionPool(
      `${CLIENT_SESSION_PREFIX}${randomBytes(16).toString('hex')}`,
      o.writesMax ?? 4096,
    );
    this.remoteCaches = new RemoteCacheOps(link, {
      writesMax: o.writesMax ?? 4096,
      listenBufferMax: o.listenBufferMax ?? 10_000,
      listenBufferBytesMax: o.listenBufferBytesMax ?? LISTEN_BUFFER_BYTES_MAX_DEFAULT,
      listenResumeTimeoutMs: o.listenResumeTimeoutMs ?? 30_000,
    });
    this.hideFields();
  }

  protected override describe(): Record<string, unknown> {
    return { nodes: this.link.addresses };
  }

  override cacheWrite(command: CacheCommand, options?: CacheCallOptions): Promise<CacheOutcome> {
    return this.remoteCaches.cacheWrite(command, options);
  }

  /** CacheOps.cacheRefounds: a node told this client its cache group was founded anew. */
  cacheRefounds(): number {
    return this.remoteCaches.cacheRefounds();
  }

  /** CacheOps.onCacheRefound. */
  onCacheRefound(hook: () => void): void {
    this.remoteCaches.onCacheRefound(hook);
  }

  /** CacheOps.cacheTokenFloor: the highest token floor of the cache group a node told this client. */
  cacheTokenFloor(): number {
    return this.remoteCaches.cacheTokenFloor();
  }

  /** CacheOps.watchHeldLocks. */
  watchHeldLocks(count: () => number): void {
    this.remoteCaches.watchHeldLocks(count);
  }

  override cacheRead(read: CacheRead, consistency: CacheConsistency): Promise<CacheReadValue> {
    return this.remoteCaches.cacheRead(read, consistency);
  }

  override cacheLock(request: LockRequest, signal?: AbortSignal): Promise<LockGrantInfo | null> {
    return this.remoteCaches.cacheLock(request, signal);
  }

  override cacheListen(channel: string | null): ListenSource {
    return this.remoteCaches.cacheListen(channel);
  }

  /** A replicated command, exactly once; its result (a failed statement is a result too). */
  writeCommand(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    return this.write(command);
  }

  protected async write(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    const { lane, seq } = this.sessions.acquire();
    try {
      const data = prepareForProposal(command, {
        nowMs: Date.now(),
        seed: randomInt(0, 2 ** 32),
        session: { clientId: lane.clientId, seq },
        // The node bounds a recursion's rows with its own write_recursion_rows_max.
        recursionRowsMax: Number.POSITIVE_INFINITY,
      });
      return (await this.call({ op: 'propose', group: 'sql', data }, 'write')) as {
        index: number;
        result: CommandResult;
      };
    } finally {
      this.sessions.release(lane);
    }
  }

  protected async read(sql: string, params: Params, options: QueryOptions): Promise<Row[]> {
    if (sql.length > SQL_BYTES_MAX)
      throw new HiqliteError(
        'HQL_REQUEST_TOO_LARGE',
        `query: the SQL text is ${sql.length} characters long, more than a request to a node carries (${SQL_BYTES_MAX})`,
        { retryable: false },
      );
    // The parameters as they are now: the request may wait for a connection (or be sent again)
    // after the caller reused its array or Buffer. Writes are encoded at the call already.
    let snapshot: Params;
    try {
      snapshot = copyParams(params);
    } catch (e) {
      throw new HiqliteError('HQL_INVALID_PARAMS', `query: a parameter cannot be sent (${String(e)})`, {
        retryable: false,
      });
    }
    // timeoutMs and signal stop the read on the node too (the request carries what is left of
    // the deadline; an abort cancels it): they were not passed on, so a read ran to the node's
    // query_timeout_ms whatever the caller asked, and an aborted one returned its rows.
    const consistency = options.consistency ?? 'local';
    return (await this.link.call(
      { op: 'query', sql, params: snapshot, consistency, minIndex: options.minIndex ?? 0 },
      {
        kind: 'read',
        route: consistency === 'linearizable' ? 'leader' : 'any',
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
    )) as Row[];
  }

  async metrics(...extra: []): Promise<Metrics> {
    noExtraArgs(extra, 'metrics', '()');
    return (await this.call({ op: 'metrics' }, 'other')) as Metrics;
  }

  /**
   * A backup on the leader; a large database takes minutes (deadline: BACKUP_TIMEOUT_MS). Sent
   * once: each request takes a whole backup, so the node's answer is final (HQL_S3, no leader:
   * said at once), and a connection lost after sending is HQL_OUTCOME_UNKNOWN. It was resent after
   * every retryable failure until the hour was over: with S3 down, a full backup every 12 s,
   * each kept in the leader's local folder, and the caller told nothing.
   */
  protected async takeBackup(): Promise<BackupInfo> {
    return (await this.link.call(
      // The deadline travels with the request, so a proxy on the way waits as long.
      { op: 'backup', timeoutMs: BACKUP_TIMEOUT_MS },
      { kind: 'once', route: 'leader', timeoutMs: BACKUP_TIMEOUT_MS },
    )) as BackupInfo;
  }

  /**
   * Any node takes it (each group's leader proposes the removal). Retried: a repeated removal
   * answers the same (a node already not a member is done).
   */
  protected async removeMember(nodeId: number, timeoutMs: number | undefined): Promise<ClusterMembership> {
    return (await this.link.call(
      { op: 'removeNode', nodeId },
      { kind: 'other', route: 'any', ...(timeoutMs === undefined ? {} : { timeoutMs }) },
    )) as ClusterMembership;
  }

  protected async awaitHealthy(options: { timeoutMs?: number }): Promise<void> {
    const deadline = performance.now() + healthTimeoutArg(options);
    for (;;) {
      try {
        const m = await this.metrics();
        if (m.leaderId !== null) return;
      } catch (e) {
        if (!(e instanceof HiqliteError) || !e.retryable) throw e;
      }
      if (performance.now() > deadline)
        throw new HiqliteError('HQL_TIMEOUT', 'the cluster did not become healthy in time', {
          retryable: true,
        });
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    await this.beginClose();
    await this.link.close();
  }

  /** Connects to the first node that answers, for connect(): fails with every node's reason. */
  open(): Promise<void> {
    return this.link.open();
  }

  /**
   * One request within the client's deadline, retried where that is safe (cluster-link.ts).
   * Writes and linearizable reads are routed to the leader (which matters only on a link that
   * follows the leader).
   */
  private call(body: LinkBody, kind: LinkKind): Promise<unknown> {
    const toLeader = kind === 'write' || (body.op === 'query' && body.consistency === 'linearizable');
    return this.link.call(body, { kind, route: toLeader ? 'leader' : 'any' });
  }
}

/** `connect()` of the package (connect.ts loads this module at its first call). */
export async function connect(options: ConnectOptions): Promise<HiqliteClient> {
  checkConnectOptions(options);
  const client = new RemoteClient(linkFor(options), options);
  try {
    await client.open();
  } catch (e) {
    await client.close();
    throw e;
  }
  return client;
}
