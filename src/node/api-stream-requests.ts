/**
 * The requests of one binary API connection that outlive a plain request/answer: every request
 * in flight can be cancelled by the client (`cancel`: its handler's signal fires, so a lock
 * waiter is withdrawn and a read stopped), and `listen` opens a subscription whose notifications
 * are pushed on the connection (`ApiPush` frames tagged with the listen request's id) until
 * `unlisten`, its end (`lagged`, `end`) or the connection's close.
 *
 * Bounds: a connection holds at most `listensMax` subscriptions (`api_requests_inflight_max`;
 * HQL_OVERLOADED beyond); each subscription holds at most `cache_listener_buffer_max`
 * notifications not yet written plus one batch, and writes only what the socket takes
 * (listen-pump.ts), so a client that does not read gets HQL_LAGGED, never unbounded memory.
 */
import { whenAborted } from '../lib/abort.js';
import { HiqliteError } from '../lib/errors.js';
import { type ApiPush, type ApiRequest, encodeApiMessage } from '../protocol/api-codec.js';
import { encodeFrame } from '../protocol/frame.js';
import type { FramedConnection } from '../transport/framed-connection.js';
import type { ListenPump, ListenSink } from './listen-pump.js';
import { pumpListen } from './listen-pump.js';
import type { ListenStream } from './listen-stream.js';

export type ListenRequest = Extract<ApiRequest, { op: 'listen' }>;

export interface StreamRequestHandler {
  handle(request: ApiRequest, from: number, signal: AbortSignal): Promise<unknown>;
  /** Opens a listen stream; absent: `listen` is refused. */
  listen?(request: ListenRequest, from: number, signal: AbortSignal): Promise<ListenStream>;
}

export interface Served {
  readonly value: unknown;
  /** Runs right after the answer was written (a listen's pushes follow its answer). */
  readonly afterAnswer?: () => void;
}

export class StreamRequests {
  private readonly inflight = new Map<number, AbortController>();
  private readonly pumps = new Map<number, ListenPump>();
  private listensOpening = 0;
  /** The wait for the socket's next 'drain' (or close) that the listens' pumps share. */
  private drainWait: Promise<void> | null = null;

  constructor(
    private readonly conn: FramedConnection,
    private readonly handler: StreamRequestHandler,
    private readonly errorBody: (e: unknown) => import('../protocol/api-codec.js').ApiErrorBody,
    private readonly listensMax: number,
  ) {}

  /** Subscriptions open on this connection. */
  get listens(): number {
    return this.pumps.size;
  }

  async serve(req: ApiRequest, from: number, connection: AbortSignal): Promise<Served> {
    switch (req.op) {
      case 'cancel': {
        const c = this.inflight.get(req.target);
        c?.abort();
        return { value: { cancelled: c !== undefined } };
      }
      case 'unlisten': {
        const p = this.pumps.get(req.sub);
        p?.stop();
        this.pumps.delete(req.sub);
        return { value: { closed: p !== undefined } };
      }
      case 'listen':
        return this.openListen(req, from, connection);
      default:
        return {
          value: await this.cancellable(req.id, connection, (s) => this.handler.handle(req, from, s)),
        };
    }
  }

  /** Stops every subscription (the connection closed). */
  closeAll(): void {
    for (const p of this.pumps.values()) p.stop();
    this.pumps.clear();
    for (const c of this.inflight.values()) c.abort();
  }

  private async openListen(req: ListenRequest, from: number, connection: AbortSignal): Promise<Served> {
    const listen = this.handler.listen;
    if (listen === undefined)
      throw new HiqliteError('HQL_INVALID_PARAMS', 'this server has no listeners', { retryable: false });
    if (this.pumps.has(req.id) || this.inflight.has(req.id))
      throw new HiqliteError('HQL_INVALID_PARAMS', `request id ${req.id} is in use on this connection`, {
        retryable: false,
      });
    if (this.pumps.size + this.listensOpening >= this.listensMax) {
      throw new HiqliteError(
        'HQL_OVERLOADED',
        `more than ${this.listensMax} listeners on one connection (api_requests_inflight_max)`,
        { retryable: true },
      );
    }
    this.listensOpening++;
    let stream: ListenStream;
    try {
      stream = await this.cancellable(req.id, connection, (s) => listen.call(this.handler, req, from, s));
    } finally {
      this.listensOpening--;
    }
    if (this.conn.closed) {
      stream.close();
      throw new HiqliteError('HQL_CLOSED', 'the connection closed', { retryable: true });
    }
    return {
      value: { afterSeq: stream.afterSeq },
      afterAnswer: () => {
        const pump = pumpListen(stream, this.sink(req.id));
        this.pumps.set(req.id, pump);
        void pump.done.then(() => {
          if (this.pumps.get(req.id) === pump) this.pumps.delete(req.id);
        });
      },
    };
  }

  /** Runs `work` with a signal that fires on `cancel` of this request id or the connection's close. */
  private async cancellable<T>(
    id: number,
    connection: AbortSignal,
    work: (s: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const c = new AbortController();
    const stopListening = whenAborted(connection, () => c.abort());
    // A client reusing the id of a request in flight can no longer cancel the first one.
    const own = !this.inflight.has(id);
    if (own) this.inflight.set(id, c);
    try {
      return await work(c.signal);
    } finally {
      stopListening();
      if (own && this.inflight.get(id) === c) this.inflight.delete(id);
    }
  }

  /**
   * Resolves at the connection's next 'drain' or its close. Every listen of the connection waits
   * here when the socket is full: one pair of socket listeners serves them all (one pair per
   * listen made Node warn of a listener leak past ten listens).
   */
  private drained(): Promise<void> {
    const conn = this.conn;
    if (conn.closed) return Promise.resolve();
    if (this.drainWait === null) {
      const done = () => {
        conn.socket.off('drain', done);
        conn.socket.off('close', done);
        this.drainWait = null;
        resolve();
      };
      let resolve = () => {};
      this.drainWait = new Promise<void>((r) => {
        resolve = r;
      });
      conn.socket.once('drain', done);
      conn.socket.once('close', done);
    }
    return this.drainWait;
  }

  private sink(sub: number): ListenSink {
    const conn = this.conn;
    const send = (m: ApiPush): boolean => conn.write(encodeFrame(encodeApiMessage(m)));
    return {
      items: (batch) => send({ push: sub, items: batch }),
      lagged: (missed) => void send({ push: sub, lagged: missed }),
      failed: (e) => void send({ push: sub, end: this.errorBody(e) }),
      drained: () => this.drained(),
      get writable() {
        return !conn.socket.writableNeedDrain;
      },
      get closed() {
        return conn.closed;
      },
    };
  }
}
