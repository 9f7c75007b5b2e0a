/**
 * The API port of a node: HTTP for humans and tools (health, readiness, Prometheus metrics, JSON
 * execute / query / txn / batch authenticated by the `X-API-SECRET` header), and an upgrade to the
 * persistent binary protocol (api-codec.ts) used by remote clients and by followers forwarding
 * writes to the leader.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { HiqliteError } from '../lib/errors.js';
import {
  type ApiErrorBody,
  type ApiRequest,
  decodeApiRequest,
  encodeApiMessage,
} from '../protocol/api-codec.js';
import { encodeFrame } from '../protocol/frame.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { API_UPGRADE_PROTOCOL, REMOTE_CLIENT_ID } from '../transport/api-connection.js';
import { authenticateServer } from '../transport/authenticate.js';
import { FramedConnection } from '../transport/framed-connection.js';
import { selfSignedCertificate } from '../transport/self-signed.js';

export interface ApiHandler {
  /** A request of the binary protocol (or a JSON route mapped onto one). */
  handle(request: ApiRequest, from: number): Promise<unknown>;
  /** `/health`: ok when the node is a member and knows a leader. */
  health(): { ok: boolean; body: Record<string, unknown> };
  /** `/ready`: ok once start() has completed. */
  ready(): boolean;
  metricsText(): Promise<string>;
  /** JSON routes that are not plain protocol requests (they prepare commands on this node). */
  json(route: 'execute' | 'query' | 'txn' | 'batch', body: Record<string, unknown>): Promise<unknown>;
}

export interface ApiServerOptions {
  readonly host: string;
  readonly port: number;
  readonly nodeId: number;
  readonly secret: string;
  readonly tls?: { certFile: string; keyFile: string } | 'self-signed';
  readonly frameBytesMax: number;
  readonly jsonBodyBytesMax: number;
  readonly connectionsMax: number;
  readonly handshakeTimeoutMs: number;
  readonly handler: ApiHandler;
  readonly logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export class ApiServer {
  private server: Server | null = null;
  private readonly streams = new Set<FramedConnection>();
  private readonly secret: Uint8Array;

  constructor(private readonly o: ApiServerOptions) {
    this.secret = new TextEncoder().encode(o.secret);
  }

  async start(): Promise<{ host: string; port: number }> {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.onHttp(req, res).catch((e: unknown) => sendJson(res, 500, { error: errorBody(e) }));
    };
    let server: Server;
    if (this.o.tls === undefined) server = createHttpServer(onRequest);
    else {
      const pem =
        this.o.tls === 'self-signed'
          ? await selfSignedCertificate()
          : {
              certPem: readFileSync(this.o.tls.certFile, 'utf8'),
              keyPem: readFileSync(this.o.tls.keyFile, 'utf8'),
            };
      server = createHttpsServer({ cert: pem.certPem, key: pem.keyPem }, onRequest);
    }
    server.maxConnections = this.o.connectionsMax;
    server.headersTimeout = 10_000;
    server.requestTimeout = 60_000;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    server.on('clientError', (_e, socket) => socket.destroy());
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    return typeof a === 'object' && a !== null
      ? { host: a.address, port: a.port }
      : { host: this.o.host, port: this.o.port };
  }

  async close(): Promise<void> {
    for (const c of this.streams) c.close({ code: 'closed', detail: 'node shutting down' });
    this.streams.clear();
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
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
    socket.setNoDelay(true);
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${API_UPGRADE_PROTOCOL}\r\n\r\n`,
    );
    const conn = new FramedConnection(socket, this.o.frameBytesMax, (reason) => {
      this.streams.delete(conn);
      if (reason.code === 'protocol' || reason.code === 'handshake') {
        this.o.logger?.warn({ remote: conn.remote, reason: reason.detail }, 'API connection closed');
      }
    });
    this.streams.add(conn);
    const timer = setTimeout(
      () => conn.close({ code: 'handshake', detail: 'handshake timed out' }),
      this.o.handshakeTimeoutMs,
    );
    authenticateServer(
      conn,
      {
        secret: this.secret,
        purpose: 'api',
        localId: this.o.nodeId,
        accepts: (clientId, channel) => channel === 0 && clientId !== this.o.nodeId,
      },
      (result) => {
        clearTimeout(timer);
        if (result instanceof Error) {
          conn.close({ code: 'handshake', detail: result.message });
          return;
        }
        conn.onFrame((payload) => this.onStreamFrame(conn, result.clientId, payload));
      },
    );
    if (head.length > 0) socket.unshift(head);
  }

  private onStreamFrame(conn: FramedConnection, from: number, payload: Uint8Array): void {
    let req: ApiRequest;
    try {
      req = decodeApiRequest(payload);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      conn.close({ code: 'protocol', detail: e.message, error: e });
      return;
    }
    this.o.handler.handle(req, from).then(
      (value) => {
        if (!conn.closed) conn.write(encodeFrame(encodeApiMessage({ id: req.id, ok: true, value })));
      },
      (e: unknown) => {
        if (!conn.closed)
          conn.write(encodeFrame(encodeApiMessage({ id: req.id, ok: false, error: errorBody(e) })));
      },
    );
  }

  private async onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    switch (route) {
      case 'GET /health': {
        const h = this.o.handler.health();
        return sendJson(res, h.ok ? 200 : 503, h.body);
      }
      case 'GET /ready':
        return sendJson(res, this.o.handler.ready() ? 200 : 503, { ready: this.o.handler.ready() });
      case 'GET /metrics': {
        const text = await this.o.handler.metricsText();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
        return;
      }
      case 'POST /execute':
      case 'POST /query':
      case 'POST /txn':
      case 'POST /batch': {
        if (!this.authorized(req))
          return sendJson(res, 401, {
            error: { code: 'HQL_UNAUTHORIZED', message: 'missing or wrong X-API-SECRET' },
          });
        const body = await readJson(req, this.o.jsonBodyBytesMax);
        if (body === null)
          return sendJson(res, 400, {
            error: { code: 'HQL_INVALID_PARAMS', message: 'the body must be a JSON object' },
          });
        try {
          const value = await this.o.handler.json(
            route.slice(6) as 'execute' | 'query' | 'txn' | 'batch',
            body,
          );
          return sendJson(res, 200, { ok: true, value });
        } catch (e) {
          const err = errorBody(e);
          return sendJson(res, statusFor(err), { ok: false, error: err });
        }
      }
      default:
        return sendJson(res, 404, { error: { code: 'HQL_NOT_FOUND', message: `no route ${route}` } });
    }
  }

  private authorized(req: IncomingMessage): boolean {
    const given = req.headers['x-api-secret'];
    if (typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.secret);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

export function errorBody(e: unknown): ApiErrorBody {
  if (e instanceof HiqliteError) {
    const extra = e as unknown as { leaderId?: number | null; info?: Record<string, unknown> };
    const details: Record<string, unknown> = {};
    if (extra.info !== undefined) {
      for (const k of ['sqliteCode', 'statementIndex', 'migrationId'])
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
  return { code: 'HQL_IO', message: e instanceof Error ? e.message : String(e), retryable: false };
}

function statusFor(e: ApiErrorBody): number {
  switch (e.code) {
    case 'HQL_UNAUTHORIZED':
      return 401;
    case 'HQL_NOT_LEADER':
    case 'HQL_UNAVAILABLE':
    case 'HQL_OVERLOADED':
    case 'HQL_LEADERSHIP_TRANSFER':
      return 503;
    case 'HQL_TIMEOUT':
    case 'HQL_OUTCOME_UNKNOWN':
      return 504;
    case 'HQL_IO':
      return 500;
    default:
      return 400;
  }
}

/** JSON cannot carry bigint or bytes: bigint becomes a decimal string, bytes `{ "$blob": base64 }`. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Uint8Array) return { $blob: Buffer.from(v).toString('base64') };
    if (
      typeof v === 'object' &&
      v !== null &&
      (v as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((v as { data?: unknown }).data)
    ) {
      return { $blob: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = toJson(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, bytesMax: number): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > bytesMax) return null;
    chunks.push(chunk as Buffer);
  }
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export { REMOTE_CLIENT_ID };
