/**
 * `hiqlite proxy`: a stateless process that speaks the API port's protocols (the binary client
 * protocol and the HTTP JSON API, served by the node's own ApiServer: same handshake, frames,
 * limits and routes) and forwards every request to the cluster through a ClusterLink that
 * follows the leader: writes and linearizable reads to the leader, other reads to any node
 * (op-routes.ts). Clients reach a cluster whose nodes they cannot reach, and `connect({ nodes:
 * [proxy] })` works unchanged.
 *
 * Exactly-once: a client's proposal is forwarded byte for byte, so its session and sequence
 * number reach the cluster unchanged; a retry (by the proxy after a leader change, or by the
 * client after losing the proxy) is answered by the state machine with the original result. The
 * proxy answers by the client's deadline (`timeoutMs` of the request, minus the time spent
 * here), and a write whose outcome it could not learn is HQL_OUTCOME_UNKNOWN, as from a node.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import type { LinkBody } from '../client/cluster-link.js';
import { ClusterLink } from '../client/cluster-link.js';
import { listenFailureReason } from '../client/listen-error.js';
import { RemoteClient } from '../client/remote.js';
import { HiqliteError } from '../lib/errors.js';
import { ApiServer } from '../node/api-server.js';
import { FRAME_HEADROOM_BYTES } from '../node/config/config-keys.js';
import { type JsonRoute, serveJsonRoute } from '../node/json-routes.js';
import type { ListenStream } from '../node/listen-stream.js';
import type { ApiRequest } from '../protocol/api-codec.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import { errorFromInfo } from '../sm/sql/errors.js';
import type { CommandResult } from '../sm/sql/result.js';
import type { Row } from '../sm/sql/values.js';
import { checkCaFile } from '../transport/tls-material.js';
import { routeOf } from './op-routes.js';
import type { ProxyConfig } from './proxy-config.js';
import { relayListen } from './relay-listen.js';

/**
 * The id a proxy's API port proves in the handshake. Clients name server 0 ("any"); the proxy
 * accepts no node ids (nodes never connect to it), so this id is never compared with a node's.
 */
export const PROXY_SERVER_ID = 0xffff_ffff;

/** How often the proxy asks the cluster for its leader (for /health and leader following). */
const LEADER_POLL_INTERVAL_MS = 1000;

interface ClusterView {
  readonly leaderId: number | null;
  readonly clusterId: string | null;
  readonly error: string | null;
}

/** What a lock request needs besides its wait: its acquire and, on a timeout, its cancel. */
const LOCK_PROPOSALS_MS = 10_000;

export class HiqliteProxy {
  private readonly link: ClusterLink;
  private readonly jsonClient: RemoteClient;
  private readonly api: ApiServer;
  private readonly registry = new Registry();
  private readonly requests: Counter<'op'>;
  private readonly failures: Counter<'code'>;
  private view: ClusterView = { leaderId: null, clusterId: null, error: 'not asked yet' };
  private poll: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly cfg: ProxyConfig,
    private readonly log: Logger,
  ) {
    const limit = (key: string): number => {
      const v = cfg.limits[key];
      if (v === undefined) throw new Error(`proxy config: no ${key}`);
      return v;
    };
    if (typeof cfg.tlsCluster === 'object') checkCaFile(cfg.tlsCluster.caFile, 'tls_cluster_ca');
    this.link = new ClusterLink({
      nodes: cfg.nodes,
      secretApi: cfg.secretApiCluster,
      tls: cfg.tlsCluster,
      requestTimeoutMs: limit('request_timeout_ms'),
      connectTimeoutMs: limit('connect_timeout_ms'),
      keepaliveIntervalMs: limit('keepalive_interval_ms'),
      keepaliveTimeoutMs: limit('keepalive_timeout_ms'),
      followLeader: true,
      // Answers from the cluster travel on to the client: what a node sends, the proxy takes.
      frameBytesMax: 64 * 1024 * 1024,
      inflightMax: limit('cluster_requests_inflight_max'),
      // Stateless: it follows its nodes into a new cluster (its clients keep no cluster id of it).
      onClusterChange: (from, to) =>
        log.warn(
          { from, to },
          `every node of this proxy is now of cluster ${to}, not ${from} (restored from a backup, or a cache-only cluster kept in memory founded anew): the proxy forwards to it`,
        ),
    });
    this.jsonClient = new RemoteClient(this.link, { writesMax: limit('json_writes_max') });
    this.requests = new Counter({
      name: 'hiqlite_proxy_requests_total',
      help: 'Requests received by the proxy, by op (JSON routes as json_<route>)',
      labelNames: ['op'],
      registers: [this.registry],
    });
    this.failures = new Counter({
      name: 'hiqlite_proxy_request_errors_total',
      help: 'Requests answered with an error, by error code',
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.api = new ApiServer({
      host: cfg.listen.host,
      port: cfg.listen.port,
      nodeId: PROXY_SERVER_ID,
      secret: cfg.secretApi,
      // No node id is accepted, so no node secret is ever checked: a random one.
      nodeSecret: randomBytes(32).toString('hex'),
      nodeIds: [],
      ...(cfg.tlsApi === null ? {} : { tls: cfg.tlsApi }),
      frameBytesMax: limit('frame_bytes_max'),
      jsonBodyBytesMax: limit('entry_bytes_max'),
      connectionsMax: limit('api_connections_max'),
      requestsInflightMax: limit('api_requests_inflight_max'),
      sendBufferBytesMax: limit('api_send_buffer_bytes_max'),
      sendBufferTotalBytesMax: limit('api_send_buffer_total_bytes_max'),
      receiveBufferTotalBytesMax: limit('api_receive_buffer_total_bytes_max'),
      idleTimeoutMs: limit('api_idle_timeout_ms'),
      unauthenticatedConnectionsMax: limit('unauthenticated_connections_max'),
      handshakeTimeoutMs: limit('handshake_timeout_ms'),
      bodyTimeoutMs: limit('http_body_timeout_ms'),
      lingerBytesMax: limit('http_linger_bytes_max'),
      jsonDepthMax: limit('http_json_depth_max'),
      jsonValuesMax: limit('http_json_values_max'),
      handler: {
        handle: (req, _from, signal) => this.counted(req.op, this.handle(req, signal)),
        health: () => this.health(),
        // Ready to forward: it knows the cluster's leader (as /health), as a node is ready when it
        // could serve a write (found from outside: 200 while every node was down).
        ready: () =>
          this.closed
            ? { ok: false, reason: 'closing' }
            : this.view.leaderId === null
              ? { ok: false, reason: this.view.error ?? 'no leader known' }
              : { ok: true },
        metricsText: () => this.registry.metrics(),
        json: (route, body, signal) => this.counted(`json_${route}`, this.json(route, body, signal)),
        listen: (req, _from, signal) =>
          this.counted('listen', this.relay(req.channel, req.afterSeq, signal)) as Promise<ListenStream>,
        cache: {
          write: (command) =>
            this.counted('http_cache_write', this.jsonClient.cacheWrite(command)) as Promise<CacheOutcome>,
          read: (read, consistency) =>
            this.counted('http_cache_read', this.jsonClient.cacheRead(read, consistency)),
          listen: (channel, afterSeq, signal) =>
            this.counted('http_listen', this.relay(channel, afterSeq, signal)) as Promise<ListenStream>,
        },
      },
      logger: log,
    });
    // What a node tells its clients of its own accord (ApiEvent: its in-memory cache group
    // founded anew, so the locks they hold are gone) reaches the clients behind this proxy too.
    this.link.onEvent((e) => this.api.tellClients(e));
    const status = () => this.api.status();
    new Gauge({
      name: 'hiqlite_proxy_api_streams',
      help: 'Binary-protocol connections of clients',
      registers: [this.registry],
      collect() {
        this.set(status().streams);
      },
    });
    const view = () => this.view;
    new Gauge({
      name: 'hiqlite_proxy_cluster_leader_known',
      help: '1 when the proxy knows the cluster leader',
      registers: [this.registry],
      collect() {
        this.set(view().leaderId === null ? 0 : 1);
      },
    });
  }

  /**
   * Connects to the cluster, then listens. A wrong cluster secret fails here (HQL_UNAUTHORIZED);
   * an unreachable cluster does not: the proxy serves, and its requests wait for the cluster
   * within their deadlines.
   */
  async start(): Promise<{ host: string; port: number }> {
    try {
      await this.link.open();
    } catch (e) {
      if (e instanceof HiqliteError && e.code === 'HQL_UNAUTHORIZED') {
        await this.link.close();
        throw new HiqliteError(
          'HQL_UNAUTHORIZED',
          `the cluster refused the proxy: secret_api_cluster (or secret_api) must be the cluster's secret_api (${e.message})`,
          { retryable: false, cause: e },
        );
      }
      this.log.warn({ err: (e as Error).message }, 'the cluster cannot be reached yet; serving anyway');
    }
    let bound: { host: string; port: number };
    try {
      bound = await this.api.start();
    } catch (e) {
      await this.link.close();
      const reason = listenFailureReason(e);
      if (reason === null) throw e;
      // Named as the node names its ports (found by an outside probe: a bare EADDRINUSE, no code).
      throw new HiqliteError(
        'HQL_IO',
        `the proxy cannot listen on ${this.cfg.listen.host}:${this.cfg.listen.port}: ${reason}. The port is the one of proxy_addr_api; the host is listen_addr_api if set, else the host of proxy_addr_api.`,
        { retryable: false, cause: e },
      );
    }
    this.schedulePoll(0);
    return bound;
  }

  /** How long close() waits for the requests it forwards: request_timeout_ms (their deadline). */
  get drainMs(): number {
    return this.cfg.limits.request_timeout_ms ?? 10_000;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poll !== null) clearTimeout(this.poll);
    this.poll = null;
    // Requests being forwarded get their answers (each ends by its deadline, at most
    // request_timeout_ms), then the goaway tells each client which ones the proxy never read.
    await this.api.close(this.drainMs);
    await this.polling;
    await this.link.close();
  }

  // ---------------------------------------------------------------------------------------------

  private async handle(req: ApiRequest, signal: AbortSignal): Promise<unknown> {
    const route = routeOf(req);
    if (!route.forward) {
      switch (route.answer) {
        case 'leader':
          return this.leaderAnswer(req, signal);
        case 'limits':
          return this.limitsAnswer();
        case 'refuse':
          throw new HiqliteError(
            'HQL_UNAUTHORIZED',
            `${req.op} is a request between cluster nodes: a proxy does not carry it`,
            { retryable: false },
          );
      }
    }
    const { id: _id, ...body } = req;
    return this.link.call(body as LinkBody, {
      kind: route.kind,
      route: route.route,
      timeoutMs: this.deadlineOf(req),
      signal,
    });
  }

  /**
   * The proxy is where its clients send leader work: it answers `leader` with its own address
   * (and the cluster's leader id), so a client that follows the leader keeps talking to it.
   */
  private async leaderAnswer(req: ApiRequest, signal: AbortSignal): Promise<unknown> {
    // The question as asked (a group's leader, when it names one).
    const { id: _id, ...question } = req;
    const v = (await this.link.call(question as LinkBody, {
      kind: 'other',
      route: 'any',
      timeoutMs: this.deadlineOf(req),
      signal,
    })) as { leaderId?: unknown; clusterId?: unknown };
    const leaderId = typeof v.leaderId === 'number' ? v.leaderId : null;
    return {
      leaderId,
      leaderApi: leaderId === null ? null : this.cfg.addrApi,
      member: false,
      clusterId: typeof v.clusterId === 'string' ? v.clusterId : null,
    };
  }

  /**
   * The cluster's command limit, and no more than fits in a frame to this proxy; the largest
   * frame this proxy takes (a client refuses a larger request instead of sending it).
   */
  private async limitsAnswer(): Promise<unknown> {
    const frameBytesMax = this.cfg.limits.frame_bytes_max ?? 0;
    const own = frameBytesMax - FRAME_HEADROOM_BYTES;
    const cluster = await this.link.commandBytesMax().catch(() => null);
    return {
      commandBytesMax: cluster === null ? own : Math.min(cluster, own),
      frameBytesMax,
      // The highest a node told it (a client connecting after the event learns it here).
      cacheTokenFloor: this.link.cacheTokenFloor(),
    };
  }

  /** A listener of a client, relayed from one node (relay-listen.ts). */
  private relay(
    channel: string | null,
    afterSeq: number | undefined,
    signal: AbortSignal,
  ): Promise<ListenStream> {
    return relayListen(this.link, {
      channel,
      ...(afterSeq === undefined ? {} : { afterSeq }),
      bufferMax: this.cfg.limits.cache_listener_buffer_max ?? 10_000,
      bufferBytesMax: this.cfg.limits.cache_listener_buffer_bytes_max ?? 64 * 1024 * 1024,
      timeoutMs: this.cfg.limits.request_timeout_ms ?? 10_000,
      signal,
    });
  }

  private json(route: JsonRoute, body: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    return serveJsonRoute(route, body, {
      writeOk: async (command) => {
        const out = await this.jsonClient.writeCommand(command);
        if (!out.result.ok) throw errorFromInfo(out.result.error);
        return out as { index: number; result: Extract<CommandResult, { ok: true }> };
      },
      query: async (sql, params, consistency) =>
        (await this.link.call(
          { op: 'query', sql, params, consistency, minIndex: 0 },
          { kind: 'read', route: consistency === 'linearizable' ? 'leader' : 'any', signal },
        )) as Row[],
    });
  }

  /**
   * The client's deadline (`timeoutMs` of its request), or `request_timeout_ms` when it gave
   * none. A client's deadline is kept as it is, however long: the nodes bound their own work, and
   * a client would wait for the cluster as long without a proxy.
   */
  private deadlineOf(req: ApiRequest): number {
    const given = (req as { timeoutMs?: unknown }).timeoutMs;
    if (typeof given === 'number') return given;
    // A lock wait lasts its waitMs (and its proposals), or without one until granted: the
    // client's connection closing or its cancel ends it (`signal`), never request_timeout_ms,
    // which would withdraw the waiter and send it to the back of the queue.
    if (req.op === 'cacheLock' && req.waitMs !== 0)
      return req.waitMs === undefined ? Number.POSITIVE_INFINITY : req.waitMs + LOCK_PROPOSALS_MS;
    return this.cfg.limits.request_timeout_ms ?? 10_000;
  }

  private async counted(op: string, work: Promise<unknown>): Promise<unknown> {
    this.requests.inc({ op });
    try {
      return await work;
    } catch (e) {
      const code = e instanceof HiqliteError ? e.code : 'HQL_INTERNAL';
      this.failures.inc({ code });
      // The client's secret was right; the proxy's own was refused by the cluster: an operator's
      // problem, said as such to the client and in the log.
      if (code === 'HQL_UNAUTHORIZED' && /handshake/.test((e as Error).message)) {
        this.log.error({ err: (e as Error).message }, 'the cluster refuses the proxy (secret_api_cluster)');
        throw new HiqliteError(
          'HQL_UNAVAILABLE',
          'the proxy cannot reach the cluster: the cluster refuses its secret (secret_api_cluster)',
          { retryable: true, cause: e },
        );
      }
      throw e;
    }
  }

  private health(): { ok: boolean; body: Record<string, unknown> } {
    const v = this.view;
    const ok = !this.closed && v.leaderId !== null;
    return {
      ok,
      body: {
        ok,
        role: 'proxy',
        leaderId: v.leaderId,
        clusterId: v.clusterId,
        ...(v.error === null ? {} : { error: v.error }),
      },
    };
  }

  private schedulePoll(delayMs: number): void {
    if (this.closed) return;
    this.poll = setTimeout(() => {
      this.poll = null;
      this.polling = this.pollLeader().finally(() => {
        this.polling = null;
        this.schedulePoll(LEADER_POLL_INTERVAL_MS);
      });
    }, delayMs);
  }

  private async pollLeader(): Promise<void> {
    try {
      const v = (await this.link.call(
        { op: 'leader' },
        { kind: 'other', route: 'any', timeoutMs: LEADER_POLL_INTERVAL_MS * 2 },
      )) as { leaderId?: unknown; clusterId?: unknown };
      const leaderId = typeof v.leaderId === 'number' ? v.leaderId : null;
      this.view = {
        leaderId,
        clusterId: typeof v.clusterId === 'string' ? v.clusterId : null,
        error: leaderId === null ? 'the cluster has no leader' : null,
      };
    } catch (e) {
      this.view = { leaderId: null, clusterId: null, error: e instanceof Error ? e.message : String(e) };
    }
  }
}
