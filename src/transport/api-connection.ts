/**
 * The client side of the API protocol: one persistent, authenticated, multiplexed connection to
 * a node's API port. Used by remote clients (`connect()`) and by nodes (followers forwarding
 * writes to the leader, joining nodes). The connection starts as an HTTP request upgraded to
 * `hiqlite-api`, then the mutual handshake (purpose 'api'; a client proves secret_api, a node
 * proves secret_raft under its own id), then length-prefixed msgpack frames (api-codec.ts).
 * Until the handshake succeeds only handshake-sized frames are accepted from the server.
 */

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { whenAborted } from '../lib/abort.js';
import { abortedError, HiqliteError } from '../lib/errors.js';
import {
  type ApiEvent,
  type ApiGoAway,
  type ApiPush,
  type ApiRequest,
  type ApiResponse,
  decodeApiServerMessage,
  encodeApiMessage,
} from '../protocol/api-codec.js';
import { encodeFrame } from '../protocol/frame.js';
import { HANDSHAKE_FRAME_BYTES_MAX } from '../protocol/handshake.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { authenticateClient } from './authenticate.js';
import { readPemFile } from './bounded-file.js';
import { FramedConnection } from './framed-connection.js';

export const API_UPGRADE_PROTOCOL = 'hiqlite-api';
export const API_UPGRADE_PATH = '/v1/stream';
/** Client id used in the handshake by clients that are not cluster nodes. */
export const REMOTE_CLIENT_ID = 0;
/** Server id a client uses when it does not know which node it reaches. */
export const ANY_SERVER_ID = 0;

export interface ApiConnectionOptions {
  readonly host: string;
  readonly port: number;
  /** secret_api for a remote client; secret_raft for a node (the server checks the one of the id claimed). */
  readonly secret: string;
  /** This side's node id, or REMOTE_CLIENT_ID. */
  readonly localId: number;
  /** A node's cluster id (nodes only): a node of another cluster is refused. */
  readonly clusterId?: () => string | null;
  readonly serverId?: number;
  /** TLS: true accepts a self-signed certificate (the handshake authenticates), or a CA file. */
  readonly tls?: boolean | { readonly caFile: string };
  readonly connectTimeoutMs: number;
  readonly frameBytesMax: number;
  /** Requests in flight on this connection; beyond it requests are refused (HQL_OVERLOADED). */
  readonly inflightMax: number;
  /**
   * Dead-peer detection: after this long without a byte from the node, the connection sends a
   * `ping` (the node answers it, whatever else it is doing). 0 turns the keepalive off. Default
   * KEEPALIVE_INTERVAL_MS_DEFAULT.
   */
  readonly keepaliveIntervalMs?: number;
  /**
   * After this long without a byte from the node, the connection is closed as dead (a node that
   * vanished without a FIN or RST: powered off, partitioned, frozen), which fails its requests
   * HQL_UNAVAILABLE and makes its users reconnect (a listener resumes on another node). Default
   * KEEPALIVE_TIMEOUT_MS_DEFAULT; at least `keepaliveIntervalMs`.
   */
  readonly keepaliveTimeoutMs?: number;
  /**
   * Ends the attempt at once (its owner closes: a client's close() waited for a connection to a
   * host that never answered, up to connectTimeoutMs). The connection once open is not watched.
   */
  readonly signal?: AbortSignal;
}

/** The longest delay a timer holds (a longer one would fire at once). */
const TIMER_MS_MAX = 2 ** 31 - 1;

/** Default `keepaliveIntervalMs`: an idle connection sends a ping this often. */
export const KEEPALIVE_INTERVAL_MS_DEFAULT = 1_000;
/**
 * Default `keepaliveTimeoutMs`: a node silent this long is taken as gone. A few election
 * timeouts: with 15 s, writes through a frozen leader (SIGSTOP, a VM paused) stalled 10–15 s
 * though the others elected a new leader in under 2 s (found by an outside probe); a write
 * in flight then ends unknown and is retried on the new leader under its session.
 */
export const KEEPALIVE_TIMEOUT_MS_DEFAULT = 4_000;

type Body = ApiRequest extends infer R ? (R extends ApiRequest ? Omit<R, 'id'> : never) : never;

export class ApiConnection {
  private readonly pending = new Map<
    number,
    { resolve: (r: ApiResponse) => void; reject: (e: Error) => void }
  >();
  /** Listeners' push handlers, by the id of their `listen` request. */
  private readonly pushes = new Map<number, (p: ApiPush) => void>();
  private nextId = 1;
  private closedError: HiqliteError | null = null;
  private readonly closeWatchers = new Set<() => void>();
  private readonly eventWatchers = new Set<(e: ApiEvent) => void>();
  /** Keepalive: the node's bytes seen so far, when that count last grew, the pending check. */
  private bytesSeen = 0;
  /** performance.now(): a wall-clock jump must not look like silence. */
  private heardAtMs = performance.now();
  private pinging = false;
  private keepaliveTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * The largest frame the node takes (its `frame_bytes_max`, from the `limits` op), or null when
   * not known. A request larger is refused here, never sent: sent, the node closed the
   * connection at its header, and the client retried it on every node until its deadline, then
   * said HQL_UNAVAILABLE, retryable (found by an outside probe: a 17 MiB query parameter).
   */
  private peerFrameBytesMax: number | null = null;
  private constructor(
    private readonly conn: FramedConnection,
    private readonly inflightMax: number,
    private readonly keepalive: { readonly intervalMs: number; readonly timeoutMs: number } | null,
    /**
     * The node's cluster id as its handshake proved it (null: it belongs to none yet, a node still
     * joining). A client stays with the cluster it first reached (cluster-link.ts).
     */
    readonly serverClusterId: string | null,
  ) {
    this.bytesSeen = conn.socket.bytesRead;
    this.checkAlive();
  }

  /**
   * Pings a connection that has been silent for `intervalMs`, closes one silent for `timeoutMs`.
   * Any byte from the node counts (bytesRead), so a large answer that takes long to arrive is
   * not taken for silence.
   */
  private checkAlive(): void {
    this.keepaliveTimer = null;
    const k = this.keepalive;
    if (k === null || this.closedError !== null) return;
    const now = performance.now();
    const read = this.conn.socket.bytesRead;
    if (read !== this.bytesSeen) {
      this.bytesSeen = read;
      this.heardAtMs = now;
    }
    const silentMs = now - this.heardAtMs;
    if (silentMs >= k.timeoutMs) {
      this.conn.close({
        code: 'closed',
        detail: `keepalive: nothing from the node for ${Math.round(silentMs)} ms (keepaliveTimeoutMs ${k.timeoutMs})`,
      });
      return;
    }
    if (silentMs >= k.intervalMs && !this.pinging) {
      this.pinging = true;
      // Any answer is a sign of life, an error too (a node of a version without `ping` answers
      // HQL_PROTOCOL and goes on); its arrival is what counts, through bytesRead.
      this.request({ op: 'ping' }, k.timeoutMs).then(
        () => {
          this.pinging = false;
        },
        () => {
          this.pinging = false;
        },
      );
    }
    // Next look: when a ping is due, or (a ping out) one interval on, to see its answer; never
    // past the dead line. Silence is measured from the look that first saw new bytes, so it is
    // never overstated: a dead node is detected within timeoutMs + intervalMs.
    const untilPing = k.intervalMs - silentMs;
    const untilDead = k.timeoutMs - silentMs;
    const waitMs = Math.min(untilPing > 0 ? untilPing : k.intervalMs, untilDead);
    this.keepaliveTimer = setTimeout(() => this.checkAlive(), Math.max(1, waitMs));
    // The keepalive alone does not keep a process alive.
    this.keepaliveTimer.unref?.();
  }

  static async open(o: ApiConnectionOptions): Promise<ApiConnection> {
    const socket = await upgrade(o);
    // The server refuses a failed handshake with a bare `refuse` frame (the same whatever
    // failed, so a prober learns nothing), then closes: authenticateClient reports it. A close
    // without it (the node went down mid-handshake) is no refusal: worth a retry.
    // What a refusal may mean: a node is also refused by a node whose `nodes` list lacks it
    // (found from outside: a node missing from one node's list was told "wrong secret_raft?").
    const causes =
      o.localId === REMOTE_CLIENT_ID
        ? 'wrong secret_api?'
        : `wrong secret_raft, or node ${o.localId} is not in that node's nodes list?`;
    return new Promise<ApiConnection>((resolve, reject) => {
      let api: ApiConnection | null = null;
      let settled = false;
      // Our own deadline: the node did not answer in time (stopped, overloaded), which says
      // nothing about the secret. It is not a refusal.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        conn.close({ code: 'handshake', detail: `no handshake answer within ${o.connectTimeoutMs} ms` });
      }, o.connectTimeoutMs);
      let unwatch = () => {};
      const conn = new FramedConnection(socket, HANDSHAKE_FRAME_BYTES_MAX, (reason) => {
        clearTimeout(timer);
        unwatch();
        if (!settled) {
          settled = true;
          const refused = !timedOut && reason.code === 'handshake';
          reject(
            refused
              ? new HiqliteError(
                  'HQL_UNAUTHORIZED',
                  `${o.host}:${o.port} refused the API handshake (${causes})`,
                  {
                    retryable: false,
                  },
                )
              : unavailable(`${o.host}:${o.port}: ${reason.detail}`),
          );
        }
        api?.onClosed(reason.detail);
      });
      // upgrade() paused the socket so no frame is lost before the decoder is attached.
      conn.resume();
      unwatch = whenAborted(o.signal, () =>
        conn.close({ code: 'closed', detail: 'the connection attempt was stopped (the client closed)' }),
      );
      authenticateClient(
        conn,
        {
          secret: new TextEncoder().encode(o.secret),
          purpose: 'api',
          localId: o.localId,
          ...(o.clusterId === undefined ? {} : { clusterId: o.clusterId }),
          serverId: o.serverId ?? ANY_SERVER_ID,
          channel: 0,
        },
        (error, serverClusterId) => {
          clearTimeout(timer);
          unwatch();
          if (error !== null) {
            settled = true;
            conn.close({ code: 'handshake', detail: error.message });
            // Another version is no secret problem (found by an outside probe: an upgrade's
            // clients were told "wrong secret_api?", and the reason was two causes down).
            const otherVersion = / speaks handshake version /.test(error.reason);
            reject(
              new HiqliteError(
                otherVersion ? 'HQL_PROTOCOL' : 'HQL_UNAUTHORIZED',
                `API handshake with ${o.host}:${o.port} failed (${otherVersion ? error.reason : causes})`,
                {
                  retryable: false,
                  cause: error,
                },
              ),
            );
            return;
          }
          settled = true;
          conn.setFrameBytesMax(o.frameBytesMax);
          const intervalMs = o.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS_DEFAULT;
          const timeoutMs = Math.max(intervalMs, o.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS_DEFAULT);
          api = new ApiConnection(
            conn,
            o.inflightMax,
            intervalMs > 0 ? { intervalMs, timeoutMs } : null,
            serverClusterId,
          );
          conn.onFrame((payload) => api?.onFrame(payload));
          resolve(api);
        },
      );
    });
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** The node's frame_bytes_max, as its `limits` answer says (see peerFrameBytesMax). */
  setPeerFrameBytesMax(bytes: number): void {
    this.peerFrameBytesMax = bytes;
  }

  onClose(fn: () => void): () => void {
    this.closeWatchers.add(fn);
    return () => this.closeWatchers.delete(fn);
  }

  /** `fn` gets each event the node tells of its own accord (ApiEvent), known or not. */
  onEvent(fn: (e: ApiEvent) => void): () => void {
    this.eventWatchers.add(fn);
    return () => this.eventWatchers.delete(fn);
  }

  /**
   * Sends a request; resolves with the response (success or error body), rejects if the
   * connection fails. `signal`: the caller gives up: the request is rejected with HQL_ABORTED at
   * once and the node is asked to stop serving it (`cancel`).
   */
  request(body: Body, timeoutMs: number, signal?: AbortSignal): Promise<ApiResponse> {
    return this.send(body, timeoutMs, signal).answer;
  }

  /**
   * Sends a `listen` request: `onPush` gets the frames the node pushes for it (from before the
   * answer arrives) until `unlisten(sub)` or the connection's close (`onClose`).
   */
  listen(
    body: Extract<Body, { op: 'listen' }>,
    timeoutMs: number,
    onPush: (p: ApiPush) => void,
  ): { sub: number; answer: Promise<ApiResponse> } {
    const sent = this.send(body, timeoutMs, undefined, onPush);
    return { sub: sent.id, answer: sent.answer };
  }

  /**
   * Stops the pushes of a listen: forgets its handler and tells the node (best effort); resolves
   * when the node answered (it dropped the listener), the connection failed, or after `timeoutMs`.
   */
  unlisten(sub: number, timeoutMs: number): Promise<void> {
    if (!this.pushes.delete(sub) || this.closedError !== null) return Promise.resolve();
    return this.send({ op: 'unlisten', sub }, timeoutMs).answer.then(
      () => {},
      () => {},
    );
  }

  private send(
    body: Body,
    timeoutMs: number,
    signal?: AbortSignal,
    onPush?: (p: ApiPush) => void,
  ): { id: number; answer: Promise<ApiResponse> } {
    const id = this.nextId++;
    return { id, answer: this.sendAs(id, body, timeoutMs, signal, onPush) };
  }

  private sendAs(
    id: number,
    body: Body,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    onPush: ((p: ApiPush) => void) | undefined,
  ): Promise<ApiResponse> {
    if (this.closedError !== null) return Promise.reject(notProcessed(this.closedError));
    if (signal?.aborted === true) return Promise.reject(requestAborted());
    if (this.pending.size >= this.inflightMax) {
      return Promise.reject(
        new HiqliteError(
          'HQL_OVERLOADED',
          `more than ${this.inflightMax} requests in flight on one connection`,
          {
            retryable: true,
          },
        ),
      );
    }
    // Encoded first: a request msgpack cannot carry (a map of more than 65,535 keys) is the
    // caller's, refused as such and never sent (it escaped as msgpackr's plain Error, after its
    // deadline timer was set).
    let frame: Uint8Array;
    try {
      const message = encodeApiMessage({ ...body, id } as ApiRequest);
      const max = this.peerFrameBytesMax;
      if (max !== null && message.byteLength > max) {
        return Promise.reject(
          new RequestNotProcessedError(
            'HQL_REQUEST_TOO_LARGE',
            `the ${body.op} request is ${message.byteLength} bytes encoded, more than the node takes in one (frame_bytes_max = ${max}): send less per request`,
            { retryable: false },
          ),
        );
      }
      frame = encodeFrame(message);
    } catch (e) {
      return Promise.reject(
        new RequestNotProcessedError(
          'HQL_INVALID_PARAMS',
          `the request cannot be encoded: ${e instanceof Error ? e.message : String(e)}`,
          { retryable: false },
        ),
      );
    }
    return new Promise<ApiResponse>((resolve, reject) => {
      let stopListening = () => {};
      const onAbort = () => {
        if (!this.pending.delete(id)) return;
        clearTimeout(timer);
        this.pushes.delete(id);
        reject(requestAborted());
        if (this.closedError === null) this.send({ op: 'cancel', target: id }, 10_000).answer.catch(() => {});
      };
      // No deadline (Infinity, or beyond what a timer can hold): the request waits for its answer,
      // the connection's close or the caller's signal.
      const timer =
        timeoutMs > TIMER_MS_MAX
          ? undefined
          : setTimeout(() => {
              if (this.pending.delete(id)) {
                stopListening();
                this.pushes.delete(id);
                reject(
                  new HiqliteError('HQL_TIMEOUT', `no answer within ${Math.round(timeoutMs)} ms`, {
                    retryable: true,
                  }),
                );
                // Nobody waits for the answer any more: the node stops serving it (a lock wait is
                // withdrawn rather than granted to nobody; a write runs to its outcome anyway).
                if (this.closedError === null)
                  this.send({ op: 'cancel', target: id }, 10_000).answer.catch(() => {});
              }
            }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          stopListening();
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          stopListening();
          reject(e);
        },
      });
      // Not aborted before (checked above): from now on.
      stopListening = whenAborted(signal, onAbort);
      if (onPush !== undefined) this.pushes.set(id, onPush);
      this.conn.write(frame);
    });
  }

  close(): void {
    this.conn.close({ code: 'closed', detail: 'closed by this side' });
  }

  private onFrame(payload: Uint8Array): void {
    let r: ApiResponse | ApiPush | ApiGoAway | ApiEvent;
    try {
      r = decodeApiServerMessage(payload);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.conn.close({ code: 'protocol', detail: e.message, error: e });
      return;
    }
    if ('goaway' in r) {
      this.onGoAway(r.pending);
      return;
    }
    if ('event' in r) {
      for (const fn of this.eventWatchers) fn(r);
      return;
    }
    if ('push' in r) {
      // A push for a listener already stopped is dropped.
      this.pushes.get(r.push)?.(r);
      return;
    }
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    p.resolve(r);
  }

  /**
   * The node shuts down and closes this connection: the requests it did not list as still being
   * served were never read by it, so never processed. They fail as not processed (the caller may
   * send them elsewhere as new); the listed ones fail as the connection's close fails them (their
   * outcome is not known), and so does the rest of the connection.
   */
  private onGoAway(pending: readonly number[]): void {
    const serving = new Set(pending);
    for (const [id, p] of this.pending) {
      if (serving.has(id)) continue;
      this.pending.delete(id);
      p.reject(
        new RequestNotProcessedError(
          'HQL_CLOSED',
          'the node is shutting down; the request was not processed',
          {
            retryable: true,
          },
        ),
      );
    }
    this.conn.close({ code: 'closed', detail: 'the node is shutting down (goaway)' });
  }

  private onClosed(detail: string): void {
    if (this.closedError !== null) return;
    if (this.keepaliveTimer !== null) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = null;
    this.closedError = unavailable(`API connection closed: ${detail}`);
    for (const [, p] of this.pending) p.reject(this.closedError);
    this.pending.clear();
    this.pushes.clear();
    this.eventWatchers.clear();
    for (const fn of this.closeWatchers) fn();
  }
}

/**
 * A request this connection did not deliver to a node that processes it: refused before it was
 * written (the connection had closed), or not read by a node that said so when it went away
 * (goaway). Sending it again, to this node or another, cannot apply it twice.
 */
export class RequestNotProcessedError extends HiqliteError {}

function notProcessed(e: HiqliteError): RequestNotProcessedError {
  return new RequestNotProcessedError(e.code, e.message, { retryable: e.retryable });
}

/** Whether `e` says its request was never processed (RequestNotProcessedError). */
export function wasNotProcessed(e: unknown): boolean {
  return e instanceof RequestNotProcessedError;
}

function requestAborted(): HiqliteError {
  return abortedError('the request was aborted by its caller');
}

function unavailable(message: string): HiqliteError {
  return new HiqliteError('HQL_UNAVAILABLE', message, { retryable: true });
}

/** Opens the socket and performs the HTTP upgrade; resolves with the raw socket. */
function upgrade(o: ApiConnectionOptions): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket: Socket =
      o.tls === undefined || o.tls === false
        ? netConnect({ host: o.host, port: o.port })
        : tlsConnect({
            host: o.host,
            port: o.port,
            // As on the Raft port: TLS 1.3 is what the handshake's channel binding is specified against.
            minVersion: 'TLSv1.3',
            // Self-signed mode: the certificate is not verified; the handshake, bound to this
            // TLS session's keying material, authenticates the server.
            rejectUnauthorized: o.tls !== true,
            ...(o.tls === true ? {} : { ca: readPemFile(o.tls.caFile, 'tls.caFile') }),
          });
    socket.setNoDelay(true);
    const timer = setTimeout(() => fail(new Error('connect timed out')), o.connectTimeoutMs);
    let buffered = Buffer.alloc(0);
    let unwatch = () => {};
    const fail = (e: Error) => {
      clearTimeout(timer);
      unwatch();
      socket.destroy();
      reject(
        new HiqliteError('HQL_UNAVAILABLE', `cannot reach ${o.host}:${o.port}: ${e.message}`, {
          retryable: true,
          cause: e,
        }),
      );
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // 0x15 / 0x16: a TLS alert or handshake record where an HTTP answer was expected.
      if (plain && (buffered[0] === 0x15 || buffered[0] === 0x16)) {
        fail(new Error('the node answered with TLS: connect with tls: true'));
        return;
      }
      // A node's Raft port speaks first: a frame holding its handshake challenge (u32 length,
      // 0x01, "HQLT"), where an API port answers the upgrade request with HTTP.
      if (
        buffered.length >= 9 &&
        buffered[4] === 0x01 &&
        buffered.subarray(5, 9).toString('latin1') === 'HQLT'
      ) {
        fail(new Error("this is a node's Raft port (addr_raft), not its API port: connect to its addr_api"));
        return;
      }
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buffered.length > 8192) fail(new Error('oversized HTTP upgrade response'));
        return;
      }
      const head = buffered.subarray(0, end).toString('latin1');
      const rest = buffered.subarray(end + 4);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onEarlyClose);
      clearTimeout(timer);
      unwatch();
      if (!/^HTTP\/1\.1 101 /.test(head)) {
        const status = head.split('\r\n')[0] ?? '';
        socket.destroy();
        const unauthorized = status.includes(' 401 ') || status.includes(' 403 ');
        reject(
          new HiqliteError(
            unauthorized ? 'HQL_UNAUTHORIZED' : 'HQL_UNAVAILABLE',
            `API upgrade refused: ${status}`,
            {
              retryable: !unauthorized,
            },
          ),
        );
        return;
      }
      socket.pause();
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const plain = o.tls === undefined || o.tls === false;
    // A TLS node closes a plain connection (or answers it with a TLS alert) without an HTTP
    // answer: say so rather than wait for the connect timeout.
    const onEarlyClose = () =>
      fail(
        new Error(
          plain
            ? 'the node closed the connection without answering (does it use TLS? connect with tls: true; or it had no room for another connection)'
            : 'the node closed the connection during the TLS handshake (does it use TLS? or it had no room for another connection)',
        ),
      );
    const onError = (e: Error) =>
      fail(
        plain || !/wrong version number|packet length too long/i.test(e.message)
          ? e
          : new Error(`${e.message} (the node does not speak TLS: connect without tls)`),
      );
    socket.on('error', onError);
    socket.once('close', onEarlyClose);
    socket.on('data', onData);
    unwatch = whenAborted(o.signal, () =>
      fail(new Error('the connection attempt was stopped (the client closed)')),
    );
    socket.once(o.tls === undefined || o.tls === false ? 'connect' : 'secureConnect', () => {
      socket.write(
        `GET ${API_UPGRADE_PATH} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nConnection: Upgrade\r\nUpgrade: ${API_UPGRADE_PROTOCOL}\r\n\r\n`,
      );
    });
  });
}
