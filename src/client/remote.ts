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
import { answerWithinMs, remoteError } from '../node/hiqlite-node.js';
import { commandTooLargeError } from '../node/raft-group.js';
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
  /** The largest command the connected node takes (learned when connecting), or null. */
  private commandBytesMax: number | null = null;

  constructor(private readonly o: ConnectOptions) {
    super();
    if (o.nodes.length === 0)
      throw new HiqliteError('HQL_INVALID_CONFIG', 'connect: nodes must list at least one API address', {
        retryable: false,
      });
    for (const addr of o.nodes) parseApiAddress(addr);
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
      return (await this.call({ op: 'propose', group: 'sql', data }, 'write')) as {
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
      'read',
    )) as Row[];
  }

  async metrics(): Promise<Metrics> {
    return (await this.call({ op: 'metrics' }, 'other')) as Metrics;
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
   * One request within the client's deadline, retried on another connection or after a leader
   * change when that is safe. A write carries a session, so resending it cannot apply it twice;
   * if no attempt got a final answer after one may have reached the log, the caller gets
   * HQL_OUTCOME_UNKNOWN (retryable=false: repeating the call as a new write could apply it
   * twice), never a retryable timeout. A read that timed out is not sent again: the node stopped
   * it at the deadline, and sending it again would only run the same work once more.
   */
  private async call(body: Body, kind: 'write' | 'read' | 'other'): Promise<unknown> {
    const deadline = Date.now() + this.timeoutMs;
    let last: HiqliteError | null = null;
    let maybeApplied = false;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      if (this.closed) throw new HiqliteError('HQL_CLOSED', 'the client is closed', { retryable: false });
      try {
        const conn = await this.connection();
        // Refused here, at once: a command over the node's frame limit would only get the
        // connection closed, and its outcome would look unknown.
        if (
          body.op === 'propose' &&
          this.commandBytesMax !== null &&
          body.data.byteLength > this.commandBytesMax
        )
          throw commandTooLargeError(body.data.byteLength, this.commandBytesMax);
        const remaining = Math.max(1, deadline - Date.now());
        const request =
          body.op === 'query' || body.op === 'propose'
            ? { ...body, timeoutMs: answerWithinMs(remaining) }
            : body;
        let r: Awaited<ReturnType<ApiConnection['request']>>;
        try {
          r = await conn.request(request, remaining);
        } catch (e) {
          // Sent, and no answer: the write may be in the log.
          if (kind === 'write') maybeApplied = true;
          throw e;
        }
        if (r.ok) return r.value;
        throw remoteError(r.error);
      } catch (e) {
        if (!(e instanceof HiqliteError)) throw e;
        if (kind === 'read' && e.code === 'HQL_TIMEOUT') throw e;
        if (kind === 'write' && e.code === 'HQL_OUTCOME_UNKNOWN') maybeApplied = true;
        else if (!e.retryable) throw e;
        last = e;
      }
      const pauseMs = Math.min(500, 20 * 2 ** Math.min(attempt, 5), Math.max(0, deadline - Date.now()));
      await new Promise((r) => setTimeout(r, pauseMs));
    }
    if (kind === 'write' && maybeApplied) {
      throw new HiqliteError(
        'HQL_OUTCOME_UNKNOWN',
        `the write may or may not have been applied: no final answer within ${this.timeoutMs} ms (last: ${last?.message ?? 'none'})`,
        { retryable: false, cause: last },
      );
    }
    throw (
      last ??
      new HiqliteError('HQL_TIMEOUT', `no answer within ${this.timeoutMs} ms`, {
        retryable: kind !== 'write',
      })
    );
  }

  /** Connects to the first node that answers, for connect(): fails with every node's reason. */
  async open(): Promise<void> {
    const reasons: string[] = [];
    for (let i = 0; i < this.o.nodes.length; i++) {
      try {
        await this.connection();
        return;
      } catch (e) {
        if (e instanceof HiqliteError && e.code === 'HQL_UNAUTHORIZED') throw e;
        reasons.push(e instanceof Error ? e.message : String(e));
      }
    }
    throw new HiqliteError('HQL_UNAVAILABLE', `connect: no node could be reached: ${reasons.join('; ')}`, {
      retryable: true,
    });
  }

  private connection(): Promise<ApiConnection> {
    if (this.conn !== null) return this.conn;
    const addr = this.o.nodes[this.next % this.o.nodes.length] as string;
    this.next++;
    const { host, port, tls } = parseApiAddress(addr);
    const useTls = this.o.tls ?? (tls === true ? true : undefined);
    const connectTimeoutMs = this.o.connectTimeoutMs ?? 3000;
    const p = ApiConnection.open({
      host,
      port,
      secret: this.o.secretApi,
      localId: REMOTE_CLIENT_ID,
      ...(useTls === undefined ? {} : { tls: useTls }),
      connectTimeoutMs,
      frameBytesMax: 64 * 1024 * 1024,
      inflightMax: 100_000,
    }).then(async (c) => {
      // The node's limits, once per connection (a node that does not know the request: none).
      const r = await c.request({ op: 'limits' }, connectTimeoutMs).catch(() => null);
      const max = r?.ok === true ? (r.value as { commandBytesMax?: unknown }).commandBytesMax : undefined;
      this.commandBytesMax = typeof max === 'number' ? max : null;
      return c;
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

/**
 * A node's API address in the forms users paste: "host:port", "[::1]:port", or a URL
 * ("http://127.0.0.1:8200", "https://db.example:8200/"), as `hiqlite dev` prints it. An https
 * URL asks for TLS.
 */
export function parseApiAddress(addr: string): { host: string; port: number; tls: boolean | null } {
  let text = addr.trim();
  let tls: boolean | null = null;
  const scheme = /^([a-z]+):\/\//i.exec(text);
  if (scheme !== null) {
    const name = (scheme[1] as string).toLowerCase();
    if (name !== 'http' && name !== 'https')
      throw invalidAddress(addr, `has scheme "${name}://"; use host:port, http:// or https://`);
    tls = name === 'https';
    text = text.slice(scheme[0].length).replace(/\/+$/, '');
    if (text.includes('/')) throw invalidAddress(addr, 'has a path; give only the host and port');
  }
  const parsed = parseHostPort(text);
  if (!parsed.ok) throw invalidAddress(addr, parsed.reason);
  return { host: parsed.value.host, port: parsed.value.port, tls };
}

function invalidAddress(addr: string, reason: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_CONFIG', `connect: "${addr}" ${reason}`, { retryable: false });
}

/**
 * Connects a remote client to a running cluster. Resolves once one node of `nodes` accepted
 * the connection and the secret; rejects at once on a wrong secret, and with every node's
 * reason (refused, timed out, TLS expected, …) when none can be reached.
 */
export async function connect(options: ConnectOptions): Promise<HiqliteClient> {
  const client = new RemoteClient(options);
  try {
    await client.open();
  } catch (e) {
    await client.close();
    throw e;
  }
  return client;
}
