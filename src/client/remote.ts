/**
 * `connect(options)`: a client without a local replica. It keeps one authenticated, multiplexed
 * connection to one node of the cluster (the first reachable of `nodes`, failing over to the
 * next), sends its reads there and its writes through it (the node forwards them to the leader).
 * Writes carry a client session, so a write retried after a failure is applied once.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { HiqliteError } from '../lib/errors.js';
import { parseHostPort } from '../node/config/config-address.js';
import type { QueryOptions } from '../node/hiqlite-node.js';
import { remoteError } from '../node/hiqlite-node.js';
import { SessionPool } from '../node/session-pool.js';
import type { ApiRequest } from '../protocol/api-codec.js';
import { CLIENT_SESSION_PREFIX } from '../sm/sql/client-proposal.js';
import type { CommandInput } from '../sm/sql/command.js';
import { prepareForProposal } from '../sm/sql/determinism.js';
import type { CommandResult } from '../sm/sql/result.js';
import type { Row } from '../sm/sql/values.js';
import { ApiConnection, REMOTE_CLIENT_ID } from '../transport/api-connection.js';
import { ClientBase, type HiqliteClient, type Metrics, type Params } from './client.js';

export interface ConnectOptions {
  /** API addresses, "host:port". */
  readonly nodes: readonly string[];
  readonly secretApi: string;
  /** TLS on the API port: true accepts a self-signed certificate (the handshake authenticates), or a CA file. */
  readonly tls?: boolean | { readonly caFile: string };
  /** Per request, including retries across leader changes. Default 10 s. */
  readonly requestTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Concurrent writes from this client. Default 4096. */
  readonly writesMax?: number;
}

type Body = ApiRequest extends infer R ? (R extends ApiRequest ? Omit<R, 'id'> : never) : never;

class RemoteClient extends ClientBase {
  private conn: Promise<ApiConnection> | null = null;
  private next = 0;
  private closed = false;
  private readonly sessions: SessionPool;
  private readonly timeoutMs: number;

  constructor(private readonly o: ConnectOptions) {
    super();
    if (o.nodes.length === 0)
      throw new HiqliteError('HQL_INVALID_CONFIG', 'connect: nodes must list at least one API address', {
        retryable: false,
      });
    this.sessions = new SessionPool(
      `${CLIENT_SESSION_PREFIX}${randomBytes(16).toString('hex')}`,
      o.writesMax ?? 4096,
    );
    this.timeoutMs = o.requestTimeoutMs ?? 10_000;
  }

  protected async write(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    const { lane, seq } = this.sessions.acquire();
    try {
      const data = prepareForProposal(command, {
        nowMs: Date.now(),
        seed: randomInt(0, 2 ** 32),
        session: { clientId: lane.clientId, seq },
      });
      return (await this.call({ op: 'propose', group: 'sql', data }, true)) as {
        index: number;
        result: CommandResult;
      };
    } finally {
      this.sessions.release(lane);
    }
  }

  protected async read(sql: string, params: Params, options: QueryOptions): Promise<Row[]> {
    return (await this.call(
      {
        op: 'query',
        sql,
        params,
        consistency: options.consistency ?? 'local',
        minIndex: options.minIndex ?? 0,
      },
      false,
    )) as Row[];
  }

  async metrics(): Promise<Metrics> {
    return (await this.call({ op: 'metrics' }, false)) as Metrics;
  }

  async waitUntilHealthy(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      try {
        const m = await this.metrics();
        if (m.leaderId !== null) return;
      } catch (e) {
        if (!(e instanceof HiqliteError) || !e.retryable) throw e;
      }
      if (Date.now() > deadline)
        throw new HiqliteError('HQL_TIMEOUT', 'the cluster did not become healthy in time', {
          retryable: true,
        });
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.conn;
    this.conn = null;
    if (c !== null) (await c.catch(() => null))?.close();
  }

  /**
   * One request, retried on another connection or after a leader change when that is safe:
   * reads always, writes because they carry a session.
   */
  private async call(body: Body, isWrite: boolean): Promise<unknown> {
    const deadline = Date.now() + this.timeoutMs;
    let last: unknown = null;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      if (this.closed) throw new HiqliteError('HQL_CLOSED', 'the client is closed', { retryable: false });
      try {
        const conn = await this.connection();
        const r = await conn.request(body, Math.max(1, deadline - Date.now()));
        if (r.ok) return r.value;
        throw remoteError(r.error);
      } catch (e) {
        const retryable =
          e instanceof HiqliteError && (e.retryable || (isWrite && e.code === 'HQL_OUTCOME_UNKNOWN'));
        if (!retryable) throw e;
        last = e;
      }
      await new Promise((r) => setTimeout(r, Math.min(500, 20 * 2 ** Math.min(attempt, 5))));
    }
    throw last instanceof HiqliteError
      ? last
      : new HiqliteError('HQL_TIMEOUT', 'request timed out', { retryable: true, cause: last });
  }

  private connection(): Promise<ApiConnection> {
    if (this.conn !== null) return this.conn;
    const addr = this.o.nodes[this.next % this.o.nodes.length] as string;
    this.next++;
    const [host, port] = splitHostPort(addr);
    const p = ApiConnection.open({
      host,
      port,
      secret: this.o.secretApi,
      localId: REMOTE_CLIENT_ID,
      ...(this.o.tls === undefined ? {} : { tls: this.o.tls }),
      connectTimeoutMs: this.o.connectTimeoutMs ?? 3000,
      frameBytesMax: 64 * 1024 * 1024,
      inflightMax: 100_000,
    });
    this.conn = p;
    p.then(
      (c) =>
        c.onClose(() => {
          if (this.conn === p) this.conn = null;
        }),
      () => {
        if (this.conn === p) this.conn = null;
      },
    );
    return p;
  }
}

function splitHostPort(addr: string): [string, number] {
  const parsed = parseHostPort(addr);
  if (!parsed.ok)
    throw new HiqliteError('HQL_INVALID_CONFIG', `connect: "${addr}" ${parsed.reason}`, { retryable: false });
  return [parsed.value.host, parsed.value.port];
}

/** Connects a remote client to a running cluster. */
export async function connect(options: ConnectOptions): Promise<HiqliteClient> {
  const client = new RemoteClient(options);
  // Fail fast on a wrong secret; tolerate nodes that are down (the client fails over).
  await client.metrics().catch((e: unknown) => {
    if (e instanceof HiqliteError && e.code === 'HQL_UNAUTHORIZED') throw e;
  });
  return client;
}
