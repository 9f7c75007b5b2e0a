/**
 * The API port of a node: HTTP for humans and tools (health, readiness, Prometheus metrics, JSON
 * execute / query / txn / batch authenticated by the `X-API-SECRET` header), and an upgrade to the
 * persistent binary protocol (api-codec.ts) used by remote clients and by other nodes (followers
 * forwarding writes to the leader, joining nodes).
 *
 * Before it authenticates, a connection is a stranger's and costs little: it is one of at most
 * `unauthenticatedConnectionsMax` (the oldest is closed to make room, see HandshakeGate), it must
 * authenticate within `handshakeTimeoutMs` of its TCP accept, and an upgraded connection may send
 * only handshake-sized frames until its handshake succeeds. A remote client proves `secret_api`
 * under id 0; a node proves `secret_raft` under its own id, which must be one of the cluster's
 * `nodes`: holding secret_api does not let a client pass for a node (docs/ARCHITECTURE.md,
 * "Security").
 */

import { timingSafeEqual } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  maxHeaderSize,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  allowLinger,
  type BodyLimits,
  bodyArriving,
  closeIfBodyUnread,
  HTTP_BODY_TIMEOUT_MS_DEFAULT,
  HTTP_LINGER_BYTES_MAX_DEFAULT,
  HttpBodyError,
  readBody,
  readJsonObject,
  readJsonObjectOf,
  sendBodyError,
  sendError,
  sendJson,
  sendMethodNotAllowed,
} from '../http/http-body.js';
import { onlyFields } from '../http/request-fields.js';
import { type RequestTarget, requestTarget } from '../http/request-target.js';
import { whenAborted } from '../lib/abort.js';
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import { httpStatusOf } from '../lib/http-status.js';
import { LogThrottle, STRANGER_LOG_MS } from '../lib/log-throttle.js';
import {
  type ApiErrorBody,
  type ApiEvent,
  type ApiRequest,
  apiRequestIdOf,
  decodeApiRequest,
  encodeApiMessage,
  GOAWAY_PENDING_MAX,
} from '../protocol/api-codec.js';
import { encodeFrame } from '../protocol/frame.js';
import { HANDSHAKE_FRAME_BYTES_MAX } from '../protocol/handshake.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { API_UPGRADE_PROTOCOL, REMOTE_CLIENT_ID } from '../transport/api-connection.js';
import { authenticateServer } from '../transport/authenticate.js';
import { readPemFile } from '../transport/bounded-file.js';
import { FramedConnection } from '../transport/framed-connection.js';
import { evictionGraceMs, HandshakeGate, portHeadroom } from '../transport/handshake-gate.js';
import { selfSignedCertificate } from '../transport/self-signed.js';
import { realTimers, type Timers } from '../transport/timers.js';
import { checkTlsMaterial, tlsKeyName } from '../transport/tls-material.js';
import { type ListenRequest, StreamRequests } from './api-stream-requests.js';
import { type CacheHttpOps, isCacheRoute, serveCacheHttp } from './cache-http.js';
import { InFlight } from './in-flight.js';
import type { ListenStream } from './listen-stream.js';

export interface ApiHandler {
  /**
   * A request of the binary protocol. `signal` aborts when the connection closes: a read that
   * nobody will receive is stopped (writes are not: once proposed, they run to their outcome).
   */
  handle(request: ApiRequest, from: number, signal: AbortSignal): Promise<unknown>;
  /** `/health`: ok when the node is a member and knows a leader. */
  health(): { ok: boolean; body: Record<string, unknown> };
  /**
   * `/ready`: ok once start() has completed and the node could serve a write now (a member that
   * knows a leader, its group running, its apply not stuck); else a `reason`.
   */
  ready(): { ok: boolean; reason?: string };
  metricsText(): Promise<string>;
  /** JSON routes that are not plain protocol requests (they prepare commands on this node). */
  json(
    route: 'execute' | 'query' | 'txn' | 'batch',
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<unknown>;
  /**
   * `listen` of the binary protocol: a stream of the cache group's notifications, pushed on the
   * connection (api-stream-requests.ts). Absent: the op is refused.
   */
  listen?(request: ListenRequest, from: number, signal: AbortSignal): Promise<ListenStream>;
  /** The cache routes of HTTP (`/cache/…`, `/notify`, `/listen`; cache-http.ts). Absent: 404. */
  readonly cache?: CacheHttpOps;
}

export interface ApiServerOptions {
  readonly host: string;
  readonly port: number;
  readonly nodeId: number;
  /** `secret_api`: what remote clients prove (handshake id 0, or the `X-API-SECRET` header). */
  readonly secret: string;
  /** `secret_raft`: what a cluster node proves when it connects under its own id. */
  readonly nodeSecret: string;
  /** This node's cluster id, or null before it has one: a node of another cluster is refused. */
  readonly clusterId?: () => string | null;
  /** The ids of the cluster's nodes: the only non-zero ids a handshake may claim. */
  readonly nodeIds: readonly number[];
  readonly tls?: { certFile: string; keyFile: string } | 'self-signed';
  readonly frameBytesMax: number;
  readonly jsonBodyBytesMax: number;
  /**
   * How long a request body may take to arrive (`http_body_timeout_ms`); later is 408
   * HQL_TIMEOUT and the connection is closed. Default HTTP_BODY_TIMEOUT_MS_DEFAULT (30 s).
   */
  readonly bodyTimeoutMs?: number;
  /**
   * How much of a body an authenticated HTTP connection still reads, and drops, when its answer
   * comes before the body's end (a 413) and closes it (`http_linger_bytes_max`; within
   * `bodyTimeoutMs`), so the client sees the answer rather than a reset. Default
   * HTTP_LINGER_BYTES_MAX_DEFAULT (64 MiB).
   */
  readonly lingerBytesMax?: number;
  /** How deep a JSON body may nest (`http_json_depth_max`). Default HTTP_JSON_DEPTH_MAX_DEFAULT. */
  readonly jsonDepthMax?: number;
  /** How many values a JSON body may hold (`http_json_values_max`). Default HTTP_JSON_VALUES_MAX_DEFAULT. */
  readonly jsonValuesMax?: number;
  /** Open connections, authenticated or not (every TCP connection counts). */
  readonly connectionsMax: number;
  /**
   * Requests of one connection served at once: beyond, its socket is not read until answers
   * went out (a client cannot queue unbounded work). Default 1024.
   */
  readonly requestsInflightMax?: number;
  /**
   * Bytes of answers queued for one connection that does not read them: beyond, the connection
   * is closed (`slow-consumer`). One answer may be larger. Default 256 MiB.
   */
  readonly sendBufferBytesMax?: number;
  /**
   * Bytes of answers queued for all connections together: a connection whose own backlog is
   * over SEND_BACKLOG_CHECK_BYTES while the total is beyond this is closed (`slow-consumer`).
   * Default 1 GiB.
   */
  readonly sendBufferTotalBytesMax?: number;
  /**
   * Bytes of unfinished frames over all binary connections (each may hold up to frameBytesMax of
   * one): past it, the connection holding the largest is closed. Default 256 MiB.
   */
  readonly receiveBufferTotalBytesMax?: number;
  /** Connections not yet authenticated; must be below `connectionsMax`. */
  readonly unauthenticatedConnectionsMax: number;
  /** From TCP accept to authenticated (TLS, HTTP upgrade and handshake included). */
  readonly handshakeTimeoutMs: number;
  /**
   * An authenticated binary connection from which nothing arrived for this long (not even a
   * `ping`: clients send one every few seconds on a silent connection) is closed, so the
   * half-open connections of vanished clients do not pile up (`api_idle_timeout_ms`). Checked
   * every quarter of it. Default API_IDLE_TIMEOUT_MS_DEFAULT; 0 never closes.
   */
  readonly idleTimeoutMs?: number;
  /** The wall clock `ping` answers with (peer-clocks.ts); Date.now by default. */
  readonly wallMs?: () => number;
  readonly handler: ApiHandler;
  readonly logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  readonly timers?: Timers;
  /** More HTTP routes under a path prefix: the dashboard (src/dashboard), when it is enabled. */
  readonly routes?: HttpRoutes;
}

/**
 * Routes served under `prefix` (and `prefix/…`) instead of the API's own. `admit` marks the
 * request's connection authenticated (it proved a session), so the unauthenticated bound and
 * deadline no longer apply to it.
 */
export interface HttpRoutes {
  readonly prefix: string;
  serve(req: IncomingMessage, res: ServerResponse, admit: () => void): Promise<void>;
}

export interface ApiServerStatus {
  /** Every TCP connection open on the port, HTTP ones included (what api_connections_max bounds). */
  readonly connections: number;
  /** Upgraded (binary protocol) connections, authenticated or still in their handshake. */
  readonly streams: number;
  /** Connections accepted and not yet authenticated (HTTP or upgraded). */
  readonly unauthenticated: number;
  /** Bytes held for incomplete frames over every upgraded connection. */
  readonly frameBytesBuffered: number;
  /** Unauthenticated connections closed to make room / at their deadline, since start. */
  readonly unauthenticatedEvicted: number;
  readonly unauthenticatedExpired: number;
  /** Authenticated connections closed after `idleTimeoutMs` of silence, since start. */
  readonly idleClosed: number;
  /** Connections closed because unfinished frames passed `receiveBufferTotalBytesMax`, since start. */
  readonly receiveEvicted: number;
}

/** Default `idleTimeoutMs`: well above a client's keepalive interval (5 s) and timeout (15 s). */
export const API_IDLE_TIMEOUT_MS_DEFAULT = 60_000;

/** The methods of each fixed route of onHttp (the Allow header of a 405). */
const API_ROUTE_METHODS: ReadonlyMap<string, string> = new Map([
  ['/health', 'GET, HEAD'],
  ['/ready', 'GET, HEAD'],
  ['/metrics', 'GET'],
  ['/backup', 'POST'],
  ['/remove-node', 'POST'],
  ['/execute', 'POST'],
  ['/query', 'POST'],
  ['/txn', 'POST'],
  ['/batch', 'POST'],
]);

/** What the idle sweep knows of an authenticated connection. */
interface StreamActivity {
  bytesSeen: number;
  heardAtMs: number;
  readonly flow: StreamFlow;
}

export class ApiServer {
  private server: Server | null = null;
  private readonly streams = new Set<FramedConnection>();
  /** Authenticated binary connections, watched for silence (`idleTimeoutMs`). */
  private readonly activity = new Map<FramedConnection, StreamActivity>();
  /** Remote clients' binary connections and the cluster id their handshake told them (null: none). */
  private readonly clientClusterIds = new Map<FramedConnection, string | null>();
  /** HTTP requests being served (close() waits for them), SSE streams apart (it cuts those). */
  private readonly httpRequests = new InFlight();
  /** The HTTP requests being served (not SSE), for close(): those still uploading are refused. */
  private readonly httpServing = new Map<IncomingMessage, ServerResponse>();
  private readonly sseStreams = new Set<ServerResponse>();
  /**
   * Per HTTP connection: the bytes it had sent when its last request was answered, or
   * HEAD_IN_SERVICE while one is served; more bytes since mean a request head is arriving.
   */
  private readonly headsServed = new WeakMap<Socket, number>();
  /**
   * HTTP requests of one connection are served one at a time, in order: a pipelined request
   * waits until the answer before it has been handed to the connection (`finish`). Per socket:
   * when the last request queued is answered, and how many wait.
   */
  private readonly httpQueues = new WeakMap<
    Socket,
    { tail: Promise<void>; waiting: number; closed: boolean }
  >();
  private idleSweep: unknown = null;
  /** Connections closed for silence, since start. */
  private idleClosed = 0;
  private receiveEvicted = 0;
  private readonly strangerLog = new LogThrottle(STRANGER_LOG_MS, () => performance.now());
  private readonly secret: Uint8Array;
  private readonly nodeSecret: Uint8Array;
  private readonly gate: HandshakeGate;

  constructor(private readonly o: ApiServerOptions) {
    assert(
      o.unauthenticatedConnectionsMax >= 1 && o.unauthenticatedConnectionsMax < o.connectionsMax,
      'unauthenticatedConnectionsMax must leave room for authenticated connections',
    );
    this.secret = new TextEncoder().encode(o.secret);
    this.nodeSecret = new TextEncoder().encode(o.nodeSecret);
    this.gate = new HandshakeGate({
      pendingMax: o.unauthenticatedConnectionsMax,
      timeoutMs: o.handshakeTimeoutMs,
      graceMs: evictionGraceMs(o.handshakeTimeoutMs),
      timers: o.timers ?? realTimers,
      port: { connectionsMax: o.connectionsMax, openConnections: () => this.tcpConnections },
    });
  }

  /** TCP connections open on the port (HTTP and binary alike). */
  private tcpConnections = 0;

  status(): ApiServerStatus {
    let frameBytesBuffered = 0;
    for (const c of this.streams) frameBytesBuffered += c.bufferedBytes;
    return {
      connections: this.tcpConnections,
      streams: this.streams.size,
      unauthenticated: this.gate.size,
      frameBytesBuffered,
      unauthenticatedEvicted: this.gate.evicted,
      unauthenticatedExpired: this.gate.expired,
      idleClosed: this.idleClosed,
      receiveEvicted: this.receiveEvicted,
    };
  }

  private get idleTimeoutMs(): number {
    return this.o.idleTimeoutMs ?? API_IDLE_TIMEOUT_MS_DEFAULT;
  }

  /**
   * Closes the authenticated connections that sent nothing for `idleTimeoutMs`. Any byte counts
   * (bytesRead); a connection whose requests wait for room (its socket is paused by flow
   * control) is busy, not silent.
   */
  private sweepIdle(): void {
    this.idleSweep = null;
    const idleMs = this.idleTimeoutMs;
    if (this.server === null || idleMs <= 0) return;
    // Monotonic: a wall-clock jump must not look like silence.
    const now = performance.now();
    for (const [conn, a] of this.activity) {
      const read = conn.socket.bytesRead;
      if (read !== a.bytesSeen || a.flow.backlogged) {
        a.bytesSeen = read;
        a.heardAtMs = now;
        continue;
      }
      if (now - a.heardAtMs >= idleMs) {
        this.idleClosed++;
        conn.close({
          code: 'closed',
          detail: `nothing received for ${Math.round(now - a.heardAtMs)} ms (api_idle_timeout_ms ${idleMs})`,
        });
      }
    }
    const timers = this.o.timers ?? realTimers;
    this.idleSweep = timers.setTimeout(() => this.sweepIdle(), Math.max(10, Math.floor(idleMs / 4)));
    (this.idleSweep as { unref?: () => void }).unref?.();
  }

  /** A request head has begun to arrive on `socket` and no request of it is being served. */
  private headArriving(socket: Socket): boolean {
    const served = this.headsServed.get(socket) ?? 0;
    return served !== HEAD_IN_SERVICE && socket.bytesRead > served && socket.writable;
  }

  /** errorBody, and an error that is not a HiqliteError (a bug) is logged with its stack. */
  private errorBody(e: unknown): ApiErrorBody {
    if (!(e instanceof HiqliteError))
      this.o.logger?.warn(
        { err: e instanceof Error ? e.stack : String(e) },
        'internal error serving a request',
      );
    return errorBody(e);
  }

  async start(): Promise<{ host: string; port: number }> {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.headsServed.set(req.socket, HEAD_IN_SERVICE);
      res.once('close', () => this.headsServed.set(req.socket, req.socket.bytesRead));
      // Pipelined requests (sent before the answers before them were read) wait for those answers:
      // served at once, a client that sends many and reads none made the node hold every answer
      // in memory (found from outside: 1,500 pipelined GETs of a 1 MB value on one connection took
      // a node from 190 MB to 2.7 GB). So a connection holds one answer at a time, and at most
      // api_requests_inflight_max requests wait; beyond, the connection is closed.
      const socket = req.socket;
      const answered = new Promise<void>((resolve) => {
        res.once('finish', resolve);
        res.once('close', resolve);
      });
      const queue = this.httpQueues.get(socket);
      if (queue === undefined) {
        this.httpQueues.set(socket, { tail: answered, waiting: 0, closed: false });
        serve(req, res);
        return;
      }
      // The requests parsed after the close are dropped without a word (one warning a connection).
      if (queue.closed || socket.destroyed) return;
      const waitingMax = this.o.requestsInflightMax ?? 1024;
      if (queue.waiting >= waitingMax) {
        queue.closed = true;
        this.o.logger?.warn(
          { remote: socket.remoteAddress, waiting: queue.waiting },
          `an HTTP client sent more than ${waitingMax} pipelined requests (api_requests_inflight_max) without reading the answers: its connection is closed`,
        );
        socket.destroy();
        return;
      }
      const ahead = queue.tail;
      queue.tail = answered;
      queue.waiting++;
      void ahead.then(() => {
        queue.waiting--;
        if (socket.destroyed) return;
        this.headsServed.set(socket, HEAD_IN_SERVICE);
        serve(req, res);
      });
    };
    const serve = (req: IncomingMessage, res: ServerResponse) => {
      // Tracked until its response closes, for a graceful close(); an SSE stream never ends by itself.
      if (isSseRequest(req)) {
        // Each stream holds a connection for good: past the port's cap less its headroom, a new
        // one is refused, so that streams never fill the port (found from outside: 1,500 SSE
        // listeners took every connection, and /health and new clients were refused).
        const streamsMax = sseStreamsMax(this.o.connectionsMax);
        if (this.sseStreams.size >= streamsMax) {
          closeIfBodyUnread(res);
          res.shouldKeepAlive = false;
          return sendError(
            res,
            503,
            'HQL_OVERLOADED',
            `${this.sseStreams.size} notification streams are open on this port, as many as api_connections_max (${this.o.connectionsMax}) leaves room for: listen over the binary protocol (connect()), which carries many listeners per connection`,
          );
        }
        this.sseStreams.add(res);
        res.once('close', () => this.sseStreams.delete(res));
      } else {
        this.httpRequests.enter();
        this.httpServing.set(req, res);
        res.once('close', () => {
          this.httpServing.delete(req);
          this.httpRequests.leave();
        });
      }
      this.onHttp(req, res).catch((e: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { ok: false, error: this.errorBody(e) });
      });
    };
    let server: Server;
    if (this.o.tls === undefined) server = createHttpServer(onRequest);
    else {
      const pem =
        this.o.tls === 'self-signed'
          ? await selfSignedCertificate()
          : {
              certPem: readPemFile(this.o.tls.certFile, tlsKeyName('api', 'certFile')).toString('utf8'),
              keyPem: readPemFile(this.o.tls.keyFile, tlsKeyName('api', 'keyFile')).toString('utf8'),
            };
      checkTlsMaterial('api', { cert: pem.certPem, key: pem.keyPem });
      server = createHttpsServer(
        {
          cert: pem.certPem,
          key: pem.keyPem,
          // As on the Raft port (tls-material.ts): TLS 1.3 only, and no longer for the TLS
          // handshake than for the whole authentication.
          minVersion: 'TLSv1.3',
          handshakeTimeout: this.o.handshakeTimeoutMs,
        },
        onRequest,
      );
    }
    server.maxConnections = this.o.connectionsMax;
    // Every TCP connection (under TLS: before its TLS handshake) starts unauthenticated.
    server.on('connection', (socket: Socket) => {
      this.tcpConnections++;
      socket.once('close', () => this.tcpConnections--);
      this.gate.accept(socket);
      // Plain HTTP: a request whose head is still arriving at the deadline is answered 408 (it
      // was a bare close); an idle connection is just closed. Under TLS this socket carries the
      // TLS records, where nothing can be written in clear.
      if (this.o.tls === undefined)
        this.gate.onExpire(socket, (_why, detail) => {
          if (this.headArriving(socket)) answerHeadTimeout(socket, detail, this.o.bodyTimeoutMs);
          else socket.destroy();
        });
    });
    server.headersTimeout = 10_000;
    // Node's own bound on receiving a whole request: past the body deadline (http_body_timeout_ms),
    // which answers first with its typed error, so a longer deadline is not cut short here.
    server.requestTimeout = Math.max(
      60_000,
      server.headersTimeout + (this.o.bodyTimeoutMs ?? HTTP_BODY_TIMEOUT_MS_DEFAULT) + 5_000,
    );
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    server.on('clientError', (e: Error & { code?: string }, socket: Duplex) =>
      answerClientError(e, socket, this.o.bodyTimeoutMs ?? HTTP_BODY_TIMEOUT_MS_DEFAULT),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.sweepIdle();
    const a = server.address();
    return typeof a === 'object' && a !== null
      ? { host: a.address, port: a.port }
      : { host: this.o.host, port: this.o.port };
  }

  /**
   * Stops serving. Each binary connection stops taking requests (those that arrive are dropped
   * unprocessed; keepalives are still answered), waits at most `drainMs` for the answers of those
   * it is serving (not for lock waits, which may wait for hours), then sends a goaway naming the
   * requests still being served and closes: the client knows every other request it had sent and
   * got no answer for was never processed, and sends it elsewhere as new instead of reporting its
   * outcome unknown. HTTP likewise: no new connection is accepted, idle
   * ones close, the requests being served get their answers (at most `drainMs`; an SSE stream,
   * which never ends by itself, is cut at once: its client resumes elsewhere with Last-Event-ID),
   * then every connection left is closed.
   */
  async close(drainMs = 0): Promise<void> {
    this.gate.close();
    const timers = this.o.timers ?? realTimers;
    if (this.idleSweep !== null) timers.clearTimeout(this.idleSweep);
    this.idleSweep = null;
    const streams = [...this.streams];
    this.streams.clear();
    const server = this.server;
    this.server = null;
    // Stops accepting connections (and, Node 19+, closes the idle HTTP ones).
    const stopped =
      server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const res of this.sseStreams) res.destroy();
    // A request whose body is still arriving has not been processed (readBody has not returned):
    // answered so now, instead of waiting up to drainMs for a slow upload; its handler's read
    // of the body then fails and it processes nothing.
    for (const [req, res] of this.httpServing) {
      if (!bodyArriving(req) || res.headersSent) continue;
      sendError(res, 503, 'HQL_CLOSED', 'the node is shutting down: the request was not processed', {
        headers: { connection: 'close' },
        retryable: true,
      });
      res.once('finish', () => req.destroy());
    }
    await Promise.all([
      ...streams.map((c) => this.goAway(c, drainMs)),
      this.httpRequests.drained(drainMs, timers),
    ]);
    server?.closeAllConnections();
    await stopped;
  }

  private async goAway(conn: FramedConnection, drainMs: number): Promise<void> {
    const a = this.activity.get(conn);
    if (a === undefined || conn.closed) {
      // Not authenticated yet: it sent no request that could have been served.
      conn.close({ code: 'closed', detail: 'node shutting down' });
      return;
    }
    a.flow.beginGoAway();
    await a.flow.served(drainMs, this.o.timers ?? realTimers);
    if (conn.closed) return;
    // More still served than a goaway may list (api_requests_inflight_max set that high): no
    // goaway; the client then takes every unanswered request as maybe processed, as before.
    const pending = a.flow.servingIds();
    if (pending.length <= GOAWAY_PENDING_MAX)
      conn.write(encodeFrame(encodeApiMessage({ goaway: true, pending })));
    conn.close({ code: 'closed', detail: 'node shutting down' }, { flush: true });
  }

  // ---------------------------------------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    if ((req.headers.upgrade ?? '').toLowerCase() !== API_UPGRADE_PROTOCOL) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    if (this.streams.size >= this.o.connectionsMax) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    // A connection that authenticated an HTTP request with X-API-SECRET must still run the
    // handshake once upgraded: it is unauthenticated again until then.
    if (!this.gate.isPending(socket)) this.gate.accept(socket);
    socket.setNoDelay(true);
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${API_UPGRADE_PROTOCOL}\r\n\r\n`,
    );
    // Until the handshake succeeds a frame may be no larger than a handshake frame: a stranger
    // cannot make the node buffer frameBytesMax per connection.
    const gone = new AbortController();
    let authenticated = false;
    const conn = new FramedConnection(socket, HANDSHAKE_FRAME_BYTES_MAX, (reason) => {
      gone.abort();
      this.streams.delete(conn);
      this.activity.delete(conn);
      // Closed by the client before it proved anything: a client of another hiqlite version
      // hangs up on this node's challenge (its own error names both versions), as in an upgrade
      // of the nodes before their clients. Said once per STRANGER_LOG_MS, counting the rest.
      if (!authenticated && (reason.code === 'peer-closed' || reason.code === 'socket-error')) {
        const closedEarly = this.strangerLog.admit('handshake-closed');
        if (closedEarly !== null)
          this.o.logger?.info(
            { remote: conn.remote, ...(closedEarly > 0 ? { suppressedBefore: closedEarly } : {}) },
            "an API connection closed during the handshake, before the client proved who it is: a client of another hiqlite version (it hangs up on this node's challenge; its error names both versions), or a client of another protocol",
          );
        return;
      }
      // A failed handshake is anyone's to cause: one line per STRANGER_LOG_MS, counting the rest.
      const suppressed = reason.code === 'handshake' ? this.strangerLog.admit('handshake') : 0;
      if (
        suppressed !== null &&
        (reason.code === 'protocol' ||
          reason.code === 'handshake' ||
          reason.code === 'slow-consumer' ||
          reason.code === 'overloaded')
      ) {
        this.o.logger?.warn(
          {
            remote: conn.remote,
            reason: reason.detail,
            ...(suppressed > 0 ? { suppressedBefore: suppressed } : {}),
          },
          'API connection closed',
        );
      }
    });
    this.streams.add(conn);
    conn.onBufferGrowth(() => this.boundReceived());
    this.gate.onExpire(socket, (_why, detail) => conn.close({ code: 'handshake', detail }));
    authenticateServer(
      conn,
      {
        secretFor: (clientId) => (clientId === REMOTE_CLIENT_ID ? this.secret : this.nodeSecret),
        purpose: 'api',
        localId: this.o.nodeId,
        ...(this.o.clusterId === undefined ? {} : { clusterId: this.o.clusterId }),
        accepts: (clientId, channel) =>
          channel === 0 &&
          clientId !== this.o.nodeId &&
          (clientId === REMOTE_CLIENT_ID || this.o.nodeIds.includes(clientId)),
      },
      (result) => {
        if (result instanceof Error) {
          conn.close({ code: 'handshake', detail: result.message }, { flush: true });
          return;
        }
        this.gate.admit(socket);
        authenticated = true;
        if (result.clientId === REMOTE_CLIENT_ID && !conn.closed) {
          this.clientClusterIds.set(conn, this.o.clusterId?.() ?? null);
          whenAborted(gone.signal, () => this.clientClusterIds.delete(conn));
        }
        conn.setFrameBytesMax(this.o.frameBytesMax);
        const inflightMax = this.o.requestsInflightMax ?? 1024;
        const flow = new StreamFlow(conn, inflightMax, this.o.sendBufferBytesMax ?? 256 * 1024 * 1024, () =>
          this.sendBacklogOverBudget(),
        );
        const requests = new StreamRequests(conn, this.o.handler, (e) => this.errorBody(e), inflightMax);
        // Every request being served listens to the connection's end (cancellable): up to
        // inflightMax of them, as many lock requests waiting (their own budget, StreamFlow), and
        // this one. Node warns of a leak past 10 listeners by default, which a busy client's
        // connection passes in normal work.
        setMaxListeners(2 * inflightMax + 1, gone.signal);
        if (!conn.closed)
          this.activity.set(conn, { bytesSeen: conn.socket.bytesRead, heardAtMs: performance.now(), flow });
        whenAborted(gone.signal, () => requests.closeAll());
        conn.onFrame((payload) =>
          this.onStreamFrame(conn, flow, requests, result.clientId, payload, gone.signal),
        );
      },
    );
    if (head.length > 0) socket.unshift(head);
  }

  /**
   * Tells every remote client's binary connection `event` (ApiEvent) of the node's own accord,
   * in order with the answers sent before it; a connection going away gets nothing more.
   */
  tellClients(event: ApiEvent): void {
    const frame = encodeFrame(encodeApiMessage(event));
    for (const conn of this.clientClusterIds.keys()) {
      const a = this.activity.get(conn);
      if (conn.closed || a === undefined || a.flow.goingAway) continue;
      conn.write(frame);
    }
  }

  /**
   * Closes the remote clients' connections whose handshake told another cluster id than the
   * node's now (none: they connected while it started), so that they connect again and learn it.
   * Called once the node has started.
   */
  closeClientsOfOtherClusters(): void {
    const now = this.o.clusterId?.() ?? null;
    for (const [conn, told] of this.clientClusterIds) {
      if (told === now) continue;
      this.clientClusterIds.delete(conn);
      conn.close({
        code: 'closed',
        detail: `the node joined cluster ${now ?? '(none)'} after this connection was opened: connect again`,
      });
    }
  }

  /**
   * Keeps the bytes of unfinished frames over all binary connections within
   * `receiveBufferTotalBytesMax`, closing the connections holding the most: a client that sends
   * most of a large frame and stops is the one to go, and every other keeps its requests. Asked
   * only by a connection whose unfinished frame passed RECEIVE_CHECK_BYTES.
   */
  private boundReceived(): void {
    const max = this.o.receiveBufferTotalBytesMax ?? 256 * 1024 * 1024;
    let total = 0;
    for (const c of this.streams) total += c.bufferedBytes;
    // Bounded: each round closes a connection that held bytes.
    while (total > max) {
      let largest: FramedConnection | null = null;
      for (const c of this.streams)
        if (largest === null || c.bufferedBytes > largest.bufferedBytes) largest = c;
      if (largest === null || largest.bufferedBytes === 0) return;
      const held = largest.bufferedBytes;
      const detail = `unfinished frames of all API connections held ${total} bytes, more than ${max} (api_receive_buffer_total_bytes_max); this connection's held the most (${held})`;
      this.receiveEvicted++;
      largest.close({ code: 'overloaded', detail });
      total -= held;
    }
  }

  /**
   * Whether the answers queued for all binary connections together exceed
   * `sendBufferTotalBytesMax`. Asked only by a connection whose own backlog is large, so the
   * sum over connections is rare work.
   */
  private sendBacklogOverBudget(): string | null {
    const max = this.o.sendBufferTotalBytesMax ?? 1024 * 1024 * 1024;
    let total = 0;
    for (const conn of this.activity.keys()) total += conn.socket.writableLength;
    return total > max
      ? `${total} bytes of answers wait for API clients that do not read them, more than ${max} (api_send_buffer_total_bytes_max)`
      : null;
  }

  private onStreamFrame(
    conn: FramedConnection,
    flow: StreamFlow,
    requests: StreamRequests,
    from: number,
    payload: Uint8Array,
    signal: AbortSignal,
  ): void {
    let req: ApiRequest;
    try {
      req = decodeApiRequest(payload);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      // A request with a readable id but wrong fields (or an op this node does not know) is
      // answered with its typed error (HQL_PROTOCOL), and the connection goes on; a frame that is
      // not even that closes it (its requests could not be told apart).
      const id = apiRequestIdOf(payload);
      if (id === null) {
        conn.close({ code: 'protocol', detail: e.message, error: e });
        return;
      }
      if (flow.goingAway) return;
      const error = this.errorBody(e);
      flow.submit(() => flow.answer(null, encodeFrame(encodeApiMessage({ id, ok: false, error }))));
      return;
    }
    if (req.op === 'ping') {
      // Keepalive: answered here, at once, without work (its arrival already told the idle
      // sweep that the connection lives), with this node's wall clock (peer-clocks.ts).
      const id = req.id;
      const value = (this.o.wallMs ?? Date.now)();
      flow.answerNow(encodeFrame(encodeApiMessage({ id, ok: true, value })));
      return;
    }
    // Shutting down: a request that arrives now is dropped unprocessed (the goaway will tell the
    // client so); keepalives above are still answered, so a long drain does not look like death.
    if (flow.goingAway) return;
    // A lock request may wait for its turn as long as its waitMs (hours): it takes a slot of its
    // own budget, and beyond it is refused at once (HQL_OVERLOADED, retryable), never queued
    // behind the socket: 1,025 lock waits on one connection held every slot, the socket stopped
    // being read, and the connection's other requests and keepalive went unanswered until the
    // client gave up on all of them.
    const lane = req.op === 'cacheLock' ? 'wait' : 'request';
    if (lane === 'wait' && !flow.takeWait()) {
      const error = this.errorBody(
        new HiqliteError(
          'HQL_OVERLOADED',
          `more than ${flow.waitsMax} lock requests wait on one connection (api_requests_inflight_max)`,
          { retryable: true },
        ),
      );
      flow.answerNow(encodeFrame(encodeApiMessage({ id: req.id, ok: false, error })));
      return;
    }
    const run = () => {
      flow.serving(req.id);
      requests.serve(req, from, signal).then(
        ({ value, afterAnswer }) => {
          flow.answer(req.id, encodeFrame(encodeApiMessage({ id: req.id, ok: true, value })), lane);
          afterAnswer?.();
        },
        (e: unknown) =>
          flow.answer(
            req.id,
            encodeFrame(encodeApiMessage({ id: req.id, ok: false, error: this.errorBody(e) })),
            lane,
          ),
      );
    };
    if (lane === 'wait') run();
    else flow.submit(run);
  }

  private async onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: RequestTarget;
    try {
      url = requestTarget(req.url);
    } catch (e) {
      if (!(e instanceof HiqliteError)) throw e;
      return sendError(res, 400, e.code, e.message);
    }
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    const extra = this.o.routes;
    if (extra !== undefined && (url.pathname === extra.prefix || url.pathname.startsWith(`${extra.prefix}/`)))
      return extra.serve(req, res, () => this.admitHttp(req.socket));
    if (isCacheRoute(url.pathname)) {
      if (!this.authorized(req))
        return sendError(res, 401, 'HQL_UNAUTHORIZED', 'missing or wrong X-API-SECRET');
      this.admitHttp(req.socket);
      return serveCacheHttp(req, res, url, {
        ops: this.o.handler.cache,
        bodyLimits: this.bodyLimits(),
        errorBody: (e) => this.errorBody(e),
        statusFor,
        timers: this.o.timers ?? realTimers,
      });
    }
    switch (route) {
      case 'GET /health':
      case 'HEAD /health': {
        // HEAD: the same status and headers, no body (Node leaves it out), for checks that use it.
        const h = this.o.handler.health();
        return sendJson(res, h.ok ? 200 : 503, h.body);
      }
      case 'HEAD /ready':
      case 'GET /ready': {
        const r = this.o.handler.ready();
        return sendJson(res, r.ok ? 200 : 503, r.ok ? { ready: true } : { ready: false, reason: r.reason });
      }
      case 'GET /metrics': {
        const text = await this.o.handler.metricsText();
        closeIfBodyUnread(res);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
        return;
      }
      case 'POST /backup':
        // No body (or `{}`): takes a backup on the leader (the node forwards it) and answers its
        // description. Anything in the body or the query is refused: it was ignored, so a
        // request that meant something else (a target, a name) took a full backup as if plain.
        return this.serveOpRoute(req, res, url, '/backup', async (bytes) => {
          if (bytes.byteLength > 0)
            onlyFields(await readJsonObjectOf(bytes, this.bodyLimits()), [], '/backup');
          return { id: 0, op: 'backup' };
        });
      case 'POST /remove-node':
        // `{"nodeId": N}`: removes a node gone for good from the membership (removeNode), for
        // an operator with curl; answers the membership of both groups after it.
        return this.serveOpRoute(req, res, url, '/remove-node', async (bytes) => {
          const body = await readJsonObjectOf(bytes, this.bodyLimits());
          onlyFields(body, ['nodeId'], '/remove-node');
          if (typeof body.nodeId !== 'number' || !Number.isSafeInteger(body.nodeId) || body.nodeId < 1)
            throw new HiqliteError(
              'HQL_INVALID_PARAMS',
              `/remove-node: "nodeId" must be the id of a node (a whole number >= 1), got ${JSON.stringify(body.nodeId) ?? 'none'}`,
              { retryable: false },
            );
          return { id: 0, op: 'removeNode', nodeId: body.nodeId };
        });
      case 'POST /execute':
      case 'POST /query':
      case 'POST /txn':
      case 'POST /batch': {
        if (!this.authorized(req))
          return sendError(res, 401, 'HQL_UNAUTHORIZED', 'missing or wrong X-API-SECRET');
        this.admitHttp(req.socket);
        // `POST /query?consistency=linearizable` was a local read without a word.
        const jsonQuery = queryParamsRefused(url, url.pathname);
        if (jsonQuery !== null) {
          closeIfBodyUnread(res);
          return sendError(res, 400, 'HQL_INVALID_PARAMS', jsonQuery);
        }
        let body: Record<string, unknown>;
        try {
          body = await readJsonObject(req, this.bodyLimits());
        } catch (e) {
          if (e instanceof HttpBodyError) return sendBodyError(res, e);
          throw e;
        }
        // A client that hangs up before its answer: its read is stopped.
        const gone = new AbortController();
        res.once('close', () => {
          if (!res.writableFinished) gone.abort();
        });
        try {
          const value = await this.o.handler.json(
            route.slice(6) as 'execute' | 'query' | 'txn' | 'batch',
            body,
            gone.signal,
          );
          return sendJson(res, 200, { ok: true, value });
        } catch (e) {
          const err = this.errorBody(e);
          return sendJson(res, statusFor(err), { ok: false, error: err });
        }
      }
      default: {
        // A route that exists under another method: 405 with what it takes (a `GET /query` was
        // a 404, as if the route did not exist).
        const allow = API_ROUTE_METHODS.get(url.pathname);
        closeIfBodyUnread(res);
        if (allow !== undefined) return sendMethodNotAllowed(res, req.method ?? 'GET', url.pathname, allow);
        return sendError(res, 404, 'HQL_NOT_FOUND', `no route ${route}`);
      }
    }
  }

  private bodyLimits(): BodyLimits {
    return {
      bytesMax: this.o.jsonBodyBytesMax,
      bytesMaxKey: 'entry_bytes_max',
      ...(this.o.bodyTimeoutMs === undefined ? {} : { timeoutMs: this.o.bodyTimeoutMs }),
      ...(this.o.jsonDepthMax === undefined ? {} : { jsonDepthMax: this.o.jsonDepthMax }),
      ...(this.o.jsonValuesMax === undefined ? {} : { jsonValuesMax: this.o.jsonValuesMax }),
    };
  }

  /**
   * A JSON route that is one op of the binary protocol (`/backup`, `/remove-node`): the secret,
   * no query, a body that `parse` turns into the request (its problems are a 400), then the
   * handler's answer as `{ ok, value }` or `{ ok: false, error }`.
   */
  private async serveOpRoute(
    req: IncomingMessage,
    res: ServerResponse,
    url: RequestTarget,
    route: string,
    parse: (body: Buffer) => Promise<ApiRequest>,
  ): Promise<void> {
    if (!this.authorized(req))
      return sendError(res, 401, 'HQL_UNAUTHORIZED', 'missing or wrong X-API-SECRET');
    this.admitHttp(req.socket);
    const refused = queryParamsRefused(url, route);
    if (refused !== null) {
      closeIfBodyUnread(res);
      return sendError(res, 400, 'HQL_INVALID_PARAMS', refused);
    }
    let request: ApiRequest;
    try {
      request = await parse(await readBody(req, this.bodyLimits()));
    } catch (e) {
      if (e instanceof HttpBodyError) return sendBodyError(res, e);
      if (e instanceof HiqliteError) return sendError(res, 400, e.code, e.message);
      throw e;
    }
    try {
      const value = await this.o.handler.handle(request, REMOTE_CLIENT_ID, new AbortController().signal);
      return sendJson(res, 200, { ok: true, value });
    } catch (e) {
      const err = this.errorBody(e);
      return sendJson(res, statusFor(err), { ok: false, error: err });
    }
  }

  /** An HTTP request proved the secret: its connection is authenticated, and may linger (allowLinger). */
  private admitHttp(socket: Socket): void {
    this.gate.admit(socket);
    allowLinger(socket, {
      bytesMax: this.o.lingerBytesMax ?? HTTP_LINGER_BYTES_MAX_DEFAULT,
      timeoutMs: this.o.bodyTimeoutMs ?? HTTP_BODY_TIMEOUT_MS_DEFAULT,
    });
  }

  private authorized(req: IncomingMessage): boolean {
    const given = req.headers['x-api-secret'];
    if (typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.secret);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

/**
 * Why a route that takes its arguments in a JSON body refuses the request's query parameters,
 * or null when it has none. A long name is not echoed whole.
 */
function queryParamsRefused(url: RequestTarget, route: string): string | null {
  const names = [...new Set(url.searchParams.keys())];
  if (names.length === 0) return null;
  const shown = names.slice(0, 5).map((n) => JSON.stringify(n.length > 64 ? `${n.slice(0, 64)}…` : n));
  return `${route} takes no query parameters (got ${shown.join(', ')}${names.length > 5 ? ', …' : ''}): its arguments go in the JSON body`;
}

/**
 * A request Node's HTTP parser refused before any route saw it (a request line or headers over
 * `maxHeaderSize`, a malformed request, headers that took longer than `headersTimeout`): answered
 * with a typed JSON error, as a route would, and the connection closed. A client that went away
 * (or a socket that cannot be written) is just closed.
 */
function answerClientError(e: Error & { code?: string }, socket: Duplex, timeoutMs: number): void {
  const code = e.code ?? '';
  if (!socket.writable || code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, reason, errorCode, message] =
    code === 'HPE_HEADER_OVERFLOW'
      ? ([
          431,
          'Request Header Fields Too Large',
          'HQL_REQUEST_TOO_LARGE',
          `the request line and headers exceed ${maxHeaderSize} bytes`,
        ] as const)
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT'
        ? ([408, 'Request Timeout', 'HQL_TIMEOUT', 'the request headers did not arrive in time'] as const)
        : ([
            400,
            'Bad Request',
            'HQL_INVALID_PARAMS',
            `not a valid HTTP request (${code || e.message})`,
          ] as const);
  const body = JSON.stringify({ ok: false, error: { code: errorCode, message, retryable: false } });
  // A client that does not read its answer keeps the socket no longer than a body may take.
  writeClosingAnswer(socket, status, reason, body, timeoutMs);
}

/** headsServed: a request of the connection is being served. */
const HEAD_IN_SERVICE = -1;

/**
 * A request head still arriving when its connection's handshake deadline passed (a slow or
 * stalled client, or one trickling headers): 408 HQL_TIMEOUT, then the connection closes.
 */
function answerHeadTimeout(socket: Socket, detail: string, bodyTimeoutMs: number | undefined): void {
  const body = JSON.stringify({
    ok: false,
    error: {
      code: 'HQL_TIMEOUT',
      message: `the request did not arrive in time (${detail})`,
      retryable: false,
    },
  });
  writeClosingAnswer(socket, 408, 'Request Timeout', body, bodyTimeoutMs ?? HTTP_BODY_TIMEOUT_MS_DEFAULT);
}

/** Writes a whole HTTP/1.1 answer that closes its connection; a client that does not read it is cut off. */
function writeClosingAnswer(
  socket: Duplex,
  status: number,
  reason: string,
  body: string,
  timeoutMs: number,
): void {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), timeoutMs).unref();
}

export function errorBody(e: unknown): ApiErrorBody {
  if (e instanceof HiqliteError) {
    const extra = e as unknown as { leaderId?: number | null; info?: Record<string, unknown> };
    const details: Record<string, unknown> = {};
    if (extra.info !== undefined) {
      for (const k of ['sqliteCode', 'statementIndex', 'migrationId', 'limit'])
        if (extra.info[k] !== undefined) details[k] = extra.info[k];
    }
    return {
      code: e.code,
      message: e.message,
      retryable: e.retryable,
      ...(extra.leaderId === undefined ? {} : { leaderId: extra.leaderId }),
      ...(Object.keys(details).length > 0 ? { details } : {}),
    };
  }
  // Not a typed error: a bug. Said as such (not as a disk failure); the server logged its stack.
  return {
    code: 'HQL_INTERNAL',
    message: `internal error: ${e instanceof Error ? e.message : String(e)}`,
    retryable: false,
  };
}

/** The HTTP status of an error answer (src/lib/http-status.ts, the same on every HTTP surface). */
function statusFor(e: ApiErrorBody): number {
  return httpStatusOf(e.code);
}

export { REMOTE_CLIENT_ID };

/**
 * Notification streams a port keeps open at most: its cap less twice its headroom (portHeadroom):
 * one headroom the handshake gate keeps free for new connections (near the cap it closes the
 * newest strangers at once), the other for /health and clients to get in beside the streams.
 */
export function sseStreamsMax(connectionsMax: number): number {
  return Math.max(1, connectionsMax - 2 * portHeadroom(connectionsMax));
}

/** Whether `req` asks for the SSE stream of notifications (`GET /listen`, however its target is spelled). */
function isSseRequest(req: IncomingMessage): boolean {
  try {
    return requestTarget(req.url).pathname === '/listen';
  } catch {
    return false;
  }
}

/**
 * Flow control of one API connection: at most `inflightMax` of its requests are served at once;
 * the others wait here (at most what one read of the socket held: at the bound the socket is not
 * read, so TCP pushes back on the client). Lock requests, which wait for their turn, have a
 * budget of their own (`waitsMax`, as many) and are refused beyond it instead of pausing the
 * socket; keepalive answers take no slot. Answers waiting for a client that does not read them
 * are bounded too: beyond `sendBufferBytesMax` the connection closes (they would pile up in memory).
 */
/** A connection's backlog from which the total over all connections is checked. */
const SEND_BACKLOG_CHECK_BYTES = 1024 * 1024;

class StreamFlow {
  /** Requests of the 'request' lane being served (their slots). */
  private readonly inflight = new InFlight();
  private waits = 0;
  private readonly waiting: (() => void)[] = [];
  /** The requests being served (either lane), by id: how many with that id (a client may reuse one). */
  private readonly ids = new Map<number, number>();
  /** beginGoAway() was called: no request is started any more. */
  private stopped = false;

  constructor(
    private readonly conn: FramedConnection,
    private readonly inflightMax: number,
    private readonly sendBufferBytesMax: number,
    /** The reason all connections' backlog is over its budget, or null. */
    private readonly overBudget: () => string | null,
  ) {}

  /** Requests wait for room: the socket is not read, so silence is not the client's. */
  get backlogged(): boolean {
    return this.waiting.length > 0;
  }

  /** Lock requests that may wait on this connection at once. */
  get waitsMax(): number {
    return this.inflightMax;
  }

  /** Takes a slot for a lock request; false when `waitsMax` of them wait already. */
  takeWait(): boolean {
    if (this.waits >= this.waitsMax) return false;
    this.waits++;
    return true;
  }

  get goingAway(): boolean {
    return this.stopped;
  }

  /**
   * Shutting down: requests waiting for a slot are dropped unstarted, and those that arrive from
   * now on are dropped unread (never processed: the goaway tells the client so); the socket is
   * still read (keepalives are answered: a long drain is no silence), never paused again.
   */
  beginGoAway(): void {
    this.stopped = true;
    this.waiting.length = 0;
    this.conn.resume();
  }

  /** Resolves once no request of the 'request' lane is being served, or after `timeoutMs`. */
  async served(timeoutMs: number, timers: Timers): Promise<void> {
    await this.inflight.drained(timeoutMs, timers);
  }

  /** The ids of the requests being served (the goaway's `pending`). */
  servingIds(): number[] {
    return [...this.ids.keys()];
  }

  /** A request with this id starts being served. */
  serving(id: number): void {
    this.ids.set(id, (this.ids.get(id) ?? 0) + 1);
  }

  /** Runs `serve` now, or once fewer than `inflightMax` requests are being served. */
  submit(serve: () => void): void {
    if (this.inflight.size < this.inflightMax) {
      this.inflight.enter();
      serve();
      return;
    }
    if (this.waiting.length === 0) this.conn.pause();
    this.waiting.push(serve);
  }

  /** Writes an answer that holds no slot (a keepalive's, a refusal's), with the backlog's bounds. */
  answerNow(frame: Uint8Array): void {
    if (this.conn.closed || !this.roomFor()) return;
    this.conn.write(frame);
  }

  /**
   * The answer of a request of `lane` ('request': submit(), 'wait': takeWait()), served under
   * `id` (serving(); null: refused unread); frees its slot.
   */
  answer(id: number | null, frame: Uint8Array, lane: 'request' | 'wait' = 'request'): void {
    if (id !== null) {
      const n = this.ids.get(id) ?? 0;
      if (n <= 1) this.ids.delete(id);
      else this.ids.set(id, n - 1);
    }
    if (lane === 'wait') {
      this.waits--;
      this.answerNow(frame);
      return;
    }
    // The next request takes the slot before this one leaves it: served() does not wake between.
    if (!this.conn.closed && this.roomFor()) this.write(frame);
    this.inflight.leave();
  }

  private write(frame: Uint8Array): void {
    this.conn.write(frame);
    const next = this.waiting.shift();
    if (next !== undefined) {
      this.inflight.enter();
      next();
    }
    if (this.waiting.length === 0) this.conn.resume();
  }

  /** False (and the connection closed) when answers pile up for a client that does not read them. */
  private roomFor(): boolean {
    const backlog = this.conn.socket.writableLength;
    if (backlog > this.sendBufferBytesMax) {
      this.conn.close({
        code: 'slow-consumer',
        detail: `more than ${this.sendBufferBytesMax} bytes of answers wait for a client that does not read them`,
      });
      return false;
    }
    if (backlog > SEND_BACKLOG_CHECK_BYTES) {
      const over = this.overBudget();
      if (over !== null) {
        this.conn.close({ code: 'slow-consumer', detail: over });
        return false;
      }
    }
    return true;
  }
}
