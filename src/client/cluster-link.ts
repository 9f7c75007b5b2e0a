/**
 * The client side of a cluster, shared by the remote client (`connect()`) and the proxy
 * (`hiqlite proxy`): authenticated API connections to the cluster's nodes, and one request
 * carried to a final answer within its deadline, retried where that is safe.
 *
 * Routing. Every request goes to one "any" node: the first of `nodes` that answers, and the next
 * one when its connection fails or it answers that it cannot serve (HQL_UNAVAILABLE: stopped
 * serving, starting, or no leader reached; HQL_CLOSED: shutting down). A node forwards writes to
 * the leader itself. With
 * `followLeader`, requests routed to the leader (writes, linearizable reads) go straight to it:
 * its address is asked of a node (API op `leader`) when unknown, and forgotten when it answers
 * HQL_NOT_LEADER or its connection fails. A proxy answers `leader` with its own address, so a
 * client behind a proxy keeps talking to the proxy.
 *
 * Retries (what kind of request decides):
 * - `write`: a proposal that carries a client session. Resent, unchanged, after a failure or a
 *   leader change: the state machine answers a duplicate with the original result. If no attempt
 *   got a final answer after one may have reached the log, the caller gets HQL_OUTCOME_UNKNOWN
 *   (retryable=false: repeating it as a new write could apply it twice), never a retryable
 *   timeout.
 * - `read`: resent after a retryable failure, except HQL_TIMEOUT (the node stopped it at the
 *   deadline; sending it again would only run the same work once more).
 * - `other`: resent after a retryable failure (metrics, limits, leader).
 * - `once`: an op this side does not know the effect of: sent at most once. An answer, error or
 *   not, is returned as it is; a connection lost after sending is HQL_OUTCOME_UNKNOWN.
 */
import { raceAbort } from '../lib/abort.js';
import { abortedError, HiqliteError, outcomeUnknown } from '../lib/errors.js';
import { retryHasTime } from '../lib/retry-budget.js';
import { answerWithinMs, remoteError } from '../node/hiqlite-node.js';
import { commandTooLargeError } from '../node/raft-group.js';
import {
  API_EVENT_CACHE_TOKEN_FLOOR,
  type ApiEvent,
  type ApiPush,
  type ApiRequest,
  type ApiResponse,
} from '../protocol/api-codec.js';
import { ApiConnection, REMOTE_CLIENT_ID, wasNotProcessed } from '../transport/api-connection.js';
import { parseApiAddress } from './api-address.js';
import { TIMEOUT_MS_MAX } from './args.js';

/** Read through a call: TypeScript narrows `signal.aborted` from an earlier check as if it could not change. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** A call or listen whose `signal` fired before it was answered. */
function callerWentAway(): HiqliteError {
  // Retryable as every HQL_ABORTED (docs/ERRORS.md): the caller may ask again; this call's own
  // retries stop on the signal, not on the flag.
  return abortedError('the caller went away');
}

export type LinkKind = 'write' | 'read' | 'other' | 'once';
export type LinkRoute = 'any' | 'leader';

/** A request without its id (the connection numbers it). */
export type LinkBody = ApiRequest extends infer R ? (R extends ApiRequest ? Omit<R, 'id'> : never) : never;

export interface ClusterLinkOptions {
  /** API addresses ("host:port" or http(s):// URLs). At least one. */
  readonly nodes: readonly string[];
  readonly secretApi: string;
  /** TLS: true accepts a self-signed certificate (the handshake authenticates), or a CA file. */
  readonly tls?: boolean | { readonly caFile: string };
  /** Deadline of a request that is given none, retries included. */
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Send requests routed to the leader to the leader's own connection. */
  readonly followLeader: boolean;
  /** Largest frame accepted from a node. */
  readonly frameBytesMax: number;
  /** Requests in flight on one connection; beyond, HQL_OVERLOADED. */
  readonly inflightMax: number;
  /** Keepalive of every connection (api-connection.ts); defaults there. */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /**
   * Set for a link that holds no data of its own (the proxy): once every node it was given is of
   * another cluster than the one it knew (a cluster restored from a backup, or an in-memory
   * cache-only one founded anew), it follows them there and calls this; without it such a link
   * refuses them (HQL_CLUSTER_MISMATCH: a client's reads and writes were of the old cluster).
   */
  readonly onClusterChange?: (from: string, to: string) => void;
}

interface NodeLink {
  readonly conn: ApiConnection;
  /** The largest command the node takes (API op `limits`), or null if it did not say. */
  readonly commandBytesMax: number | null;
}

/** Leader addresses learned beyond `nodes` (a node's config may spell them differently). */
const LEARNED_ADDRESSES_MAX = 16;
/**
 * After a connection attempt to an address failed, the calls of this client do not dial it again
 * for this long, doubled at each failure in a row up to RECONNECT_BACKOFF_MS_MAX (they fail at
 * once with that failure, and retry or go to the next node). Found from outside: a client holding
 * 100 locks while its node flapped dialled it about 50 times a second, one attempt per renewal.
 */
const RECONNECT_BACKOFF_MS_MIN = 50;
const RECONNECT_BACKOFF_MS_MAX = 1000;
/** How long after a connection closed a client holding locks connects again (keepConnectedWhile). */
const RECONNECT_AFTER_CLOSE_MS = 200;
/** Errors of a node that stopped or broke, as opposed to the outcome of a command (retryOrThrow). */
const NODE_FAILURES: ReadonlySet<string> = new Set(['HQL_IO', 'HQL_CORRUPTION', 'HQL_INTERNAL']);

/**
 * A node's answers that say it cannot serve now, whatever the request: it stopped serving, is
 * starting, reaches no leader (HQL_UNAVAILABLE), or is shutting down (HQL_CLOSED). The next
 * attempt goes to another node (avoid).
 */
const NODE_CANNOT_SERVE: ReadonlySet<string> = new Set(['HQL_UNAVAILABLE', 'HQL_CLOSED']);

export class ClusterLink {
  private readonly conns = new Map<string, Promise<NodeLink>>();
  /** The "any" node's address, or null to pick the next one of `nodes`. */
  private anyAddr: string | null = null;
  private next = 0;
  /** The leader's address per Raft group (a node runs more than one, each with its own leader). */
  private readonly leaderAddrs = new Map<string, string>();
  private readonly leaderAsks = new Map<string, Promise<string | null>>();
  private closed = false;
  /**
   * Calls under way that close() lets end (each within its own deadline), so that a write that
   * reached the log gets its outcome rather than HQL_OUTCOME_UNKNOWN (found from outside: writes
   * in flight at a remote client's close() were applied and reported unknown). Lock waits are not
   * among them: close() ends those.
   */
  private readonly running = new Set<Promise<unknown>>();
  /**
   * Fired by close(): ends the calls that have no outcome to wait for (reads, metrics, waits),
   * stopped on their node too. Found in the test suite: a client closed during a long read
   * waited for the read's whole deadline (100 s) before close() returned.
   */
  private readonly closing = new AbortController();
  /**
   * The cluster this client belongs to: the id of the first node that had one. A node of another
   * cluster (restored from a backup apart from the others, a nodes list naming two clusters) is
   * never used: its history is not this client's (found from outside: a write acknowledged by a
   * node restored alone was missing from the next read, served by the old cluster).
   */
  private clusterId: string | null = null;
  /**
   * The configured nodes found to be of another cluster (since they last were of this one).
   * Once every one is, no retry can help: calls fail at once instead of retrying to their
   * deadline (found from outside: after a full restart of an in-memory cluster, every call hung
   * 10-20 s before it failed).
   */
  private readonly mismatched = new Set<string>();
  /** Told each event a node of this cluster tells its connection (ApiEvent). */
  private readonly eventHooks = new Set<(e: ApiEvent) => void>();
  /**
   * The highest token floor of the cache group a node told this client (ApiEvent
   * `cacheTokenFloor`, or the `limits` answer at each connect): a held lock with a lower token
   * was granted by a group founded before, and is gone. Only a raise is passed to onEvent's hooks.
   */
  private tokenFloor = 0;
  /** While true, a closed connection is opened again soon (keepConnectedWhile). */
  private keepConnected: () => boolean = () => false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  /** The last failed connection attempt per address, while it is not dialled again (linkTo). */
  private readonly connectFailures = new Map<string, { failures: number; untilMs: number; error: unknown }>();

  constructor(private readonly o: ClusterLinkOptions) {
    if (o.nodes.length === 0)
      throw new HiqliteError('HQL_INVALID_CONFIG', 'connect: nodes must list at least one API address', {
        retryable: false,
      });
    for (const addr of o.nodes) parseApiAddress(addr);
  }

  /**
   * Calls `hook` with each event a node tells this client of its own accord (ApiEvent: its cache
   * group founded anew), from whichever connection it came; returns the unsubscribe.
   */
  onEvent(hook: (e: ApiEvent) => void): () => void {
    this.eventHooks.add(hook);
    return () => this.eventHooks.delete(hook);
  }

  /** The highest cache token floor a node told this client (0: none told). */
  cacheTokenFloor(): number {
    return this.tokenFloor;
  }

  /**
   * While `holds()` (the client holds locks), a connection to a node that closes is opened again
   * RECONNECT_AFTER_CLOSE_MS later rather than at the next call: the node reached says its token
   * floor at connect, so a node restarted into a cache group founded anew tells the client soon
   * that its locks are gone (else it learned at its next renewal, a third of the lease later).
   * One reconnection at a time, within the link's request deadline; none once close() began.
   */
  keepConnectedWhile(holds: () => boolean): void {
    this.keepConnected = holds;
  }

  /** The node addresses this link was given (what a client shows of itself: no secret). */
  get addresses(): readonly string[] {
    return this.o.nodes;
  }

  /** The largest command the node of the "any" route takes, or null when unknown. */
  async commandBytesMax(): Promise<number | null> {
    return (await this.connection('any')).link.commandBytesMax;
  }

  /**
   * Connects to the first node that takes it, trying each in turn: one node that refuses the
   * secret (a node whose secret_api differs, another service on that port) does not keep the
   * client from the others. Fails with every node's reason: HQL_UNAUTHORIZED when a node
   * refused the secret (no retry helps), else HQL_UNAVAILABLE.
   */
  async open(): Promise<void> {
    const reasons: string[] = [];
    let refused: HiqliteError | null = null;
    for (let i = 0; i < this.o.nodes.length; i++) {
      try {
        await this.connection('any');
        return;
      } catch (e) {
        // A node of another hiqlite version (HQL_PROTOCOL) refuses the client for good too.
        if (e instanceof HiqliteError && (e.code === 'HQL_UNAUTHORIZED' || e.code === 'HQL_PROTOCOL'))
          refused ??= e;
        reasons.push(e instanceof Error ? e.message : String(e));
      }
    }
    if (refused !== null) {
      throw new HiqliteError(refused.code, `connect: no node took the client: ${reasons.join('; ')}`, {
        retryable: false,
        cause: refused,
      });
    }
    throw new HiqliteError('HQL_UNAVAILABLE', `connect: no node could be reached: ${reasons.join('; ')}`, {
      retryable: true,
    });
  }

  async close(): Promise<void> {
    // Bounded: each call ends by its own deadline, and no call starts once the client's close()
    // began (client.ts refuses them), so the set only shrinks.
    this.closing.abort();
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    while (this.running.size > 0) await Promise.all([...this.running]);
    this.closed = true;
    const all = [...this.conns.values()];
    this.conns.clear();
    for (const p of all) (await p.catch(() => null))?.conn.close();
  }

  /**
   * One request, answered within `timeoutMs` (default `requestTimeoutMs`): its value, or the
   * node's error as a HiqliteError. `signal` stops the retries (the caller is gone).
   */
  call(
    body: LinkBody,
    o: { kind: LinkKind; route: LinkRoute; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<unknown> {
    const p = this.endsAtClose(body, o.kind) ? this.attemptsUntilClose(body, o) : this.attempts(body, o);
    if (body.op !== 'cacheLock' && !this.closed) {
      const settled = p.then(
        () => undefined,
        () => undefined,
      );
      this.running.add(settled);
      void settled.then(() => this.running.delete(settled));
    }
    return p;
  }

  /**
   * Reads, metrics and limits end at once at close(), stopped on their node too; writes, membership
   * changes and one-off commands (a backup) run to their outcome, each within its deadline.
   */
  private endsAtClose(body: LinkBody, kind: LinkKind): boolean {
    return kind === 'read' || body.op === 'metrics' || body.op === 'limits';
  }

  private async attemptsUntilClose(
    body: LinkBody,
    o: { kind: LinkKind; route: LinkRoute; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<unknown> {
    const signal =
      o.signal === undefined ? this.closing.signal : AbortSignal.any([o.signal, this.closing.signal]);
    try {
      return await this.attempts(body, { ...o, signal });
    } catch (e) {
      if (this.closing.signal.aborted && !isAborted(o.signal))
        throw new HiqliteError('HQL_CLOSED', 'the client was closed while the call was under way', {
          retryable: false,
        });
      throw e;
    }
  }

  private async attempts(
    body: LinkBody,
    o: { kind: LinkKind; route: LinkRoute; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<unknown> {
    const timeoutMs = o.timeoutMs ?? this.o.requestTimeoutMs;
    const deadline = performance.now() + timeoutMs;
    let last: HiqliteError | null = null;
    let maybeApplied = false;
    // Throws what ends the call; otherwise remembers the failure for the next attempt.
    const retryOrThrow = (e: unknown): void => {
      if (!(e instanceof HiqliteError)) throw e;
      if (e.code === 'HQL_ABORTED' && isAborted(o.signal)) throw ended(e);
      if (o.kind === 'read' && e.code === 'HQL_TIMEOUT') throw e;
      if (o.kind === 'write' && e.code === 'HQL_OUTCOME_UNKNOWN') maybeApplied = true;
      // A node that stopped or broke is no outcome of a write an earlier attempt may have put
      // in the log (a command's own error, a final outcome, is never one of these codes).
      else if (!e.retryable && maybeApplied && NODE_FAILURES.has(e.code))
        throw outcomeUnknown(`an earlier attempt may be in the log, then ${e.message}`, e);
      else if (!e.retryable) throw e;
      last = e;
    };
    // The call ends without an answer (closed, aborted): a write an earlier attempt may have put
    // in the log has an unknown outcome, not a refusal (found from outside: writes in flight at
    // close() said HQL_CLOSED, and half were applied).
    const ended = (e: HiqliteError): HiqliteError =>
      o.kind === 'write' && maybeApplied
        ? outcomeUnknown(
            `${e.message} before the write's outcome was known (an attempt may be in the log)`,
            last ?? e,
          )
        : e;
    // The slowest answer of this call: a retry is sent only while an answer can still come in time.
    let slowestMs = 0;
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      if (attempt > 0) {
        const pauseMs = Math.min(
          500,
          20 * 2 ** Math.min(attempt - 1, 5),
          Math.max(0, deadline - performance.now()),
        );
        await raceAbort(new Promise((r) => setTimeout(r, pauseMs)), o.signal, callerWentAway).catch(
          (e: HiqliteError) => {
            throw ended(e);
          },
        );
        if (performance.now() >= deadline) break;
        // Too little time left for an answer: end with the last one (lib/retry-budget.ts).
        if (last !== null && !retryHasTime(deadline - performance.now(), slowestMs, maybeApplied)) break;
      }
      // Once close() began, no new attempt: close() waits for the answers to requests sent, not
      // for retries to the call's deadline (found in the test suite: a client closed while its
      // only node was down took the whole deadline, 20 s, to close).
      if (this.closed || (attempt > 0 && this.closing.signal.aborted))
        throw ended(new HiqliteError('HQL_CLOSED', 'the client is closed', { retryable: false }));
      if (o.signal?.aborted === true) throw ended(callerWentAway());
      let sent = false;
      let answer: { addr: string; r: ApiResponse };
      try {
        // An abort ends a wait for a connection at once (nothing was sent for this attempt).
        const { addr, link } = await raceAbort(
          this.connectionBy(deadline, o.route, groupOf(body)),
          o.signal,
          callerWentAway,
        );
        // Refused here, at once: a command over the node's frame limit would only get the
        // connection closed, and its outcome would look unknown.
        if (
          body.op === 'propose' &&
          link.commandBytesMax !== null &&
          body.data.byteLength > link.commandBytesMax
        )
          throw commandTooLargeError(body.data.byteLength, link.commandBytesMax);
        const remaining = Math.max(1, deadline - performance.now());
        const request =
          o.kind === 'write' || o.kind === 'read' || 'timeoutMs' in body
            ? ({ ...body, timeoutMs: answerWithinMs(remaining) } as LinkBody)
            : body;
        sent = true;
        // A write runs to its outcome once sent; anything else is stopped on the node too.
        const stop = o.kind === 'write' ? undefined : o.signal;
        const sentAt = performance.now();
        answer = { addr, r: await link.conn.request(request, remaining, stop) };
        slowestMs = Math.max(slowestMs, performance.now() - sentAt);
      } catch (e) {
        if (!sent && isAborted(o.signal)) throw ended(callerWentAway());
        // Sent, and no answer: a write may be in the log. Unless the connection says the node
        // never processed it (closed before it was written, or the node's goaway did not list it).
        const mayHaveRun = sent && !wasNotProcessed(e);
        if (mayHaveRun && o.kind === 'once' && e instanceof HiqliteError)
          throw outcomeUnknown(
            `the connection failed after the request was sent (${e.message})`,
            e,
            // Said of what it is (found from outside: a backup whose leader was killed was "the write").
            `the ${body.op} request may or may not have been carried out`,
          );
        if (mayHaveRun && o.kind === 'write') maybeApplied = true;
        retryOrThrow(e);
        continue;
      }
      if (answer.r.ok) return answer.r.value;
      const error = remoteError(answer.r.error);
      if (error.code === 'HQL_NOT_LEADER') this.forgetLeader(groupOf(body), answer.addr);
      if (NODE_CANNOT_SERVE.has(error.code)) this.avoid(answer.addr);
      // A read any node can serve goes to the next one while this one is overloaded (found by an
      // outside probe: local reads through a proxy kept asking the one node whose read queue was
      // full, while the others answered in 2 ms).
      if (
        error.code === 'HQL_OVERLOADED' &&
        o.kind === 'read' &&
        o.route === 'any' &&
        this.anyAddr === answer.addr
      )
        this.anyAddr = null;
      // An op of unknown effect: the node's answer is final, whatever it is.
      if (o.kind === 'once') throw error;
      retryOrThrow(error);
    }
    if (o.kind === 'write' && maybeApplied)
      throw outcomeUnknown(`no final answer within ${timeoutMs} ms (last: ${lastMessage(last)})`, last);
    throw (
      last ??
      new HiqliteError('HQL_TIMEOUT', `no answer within ${timeoutMs} ms`, {
        retryable: o.kind !== 'write',
      })
    );
  }

  /**
   * Opens a listener on the "any" node (connection failures and retryable refusals are retried
   * within `timeoutMs`, default `requestTimeoutMs`): resolves with where its stream starts
   * (`afterSeq`) and a handle. `onPush` gets the node's pushes; `onLost` is called once if the
   * connection closes while the listener is open (the caller resumes it, with `afterSeq`).
   */
  async listen(
    body: { readonly channel: string | null; readonly afterSeq?: number },
    onPush: (p: ApiPush) => void,
    onLost: (e: HiqliteError) => void,
    o: {
      timeoutMs?: number;
      signal?: AbortSignal;
      /** Retryable codes a node's answer ends the attempts with (a new listener: HQL_OVERLOADED). */
      finalCodes?: ReadonlySet<string>;
    } = {},
  ): Promise<{ afterSeq: number; stop(): Promise<void> }> {
    const timeoutMs = o.timeoutMs ?? this.o.requestTimeoutMs;
    const deadline = performance.now() + timeoutMs;
    let last: HiqliteError | null = null;
    // Until the request is sent, an abort ends the attempts at once (a listener closed while no
    // node was reachable waited for a connect timeout): no node can have registered it. Once
    // sent, the node's answer is waited for, so a node that registered it is told to drop it.
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      if (attempt > 0)
        await raceAbort(
          new Promise((r) => setTimeout(r, Math.min(500, 20 * 2 ** Math.min(attempt - 1, 5)))),
          o.signal,
          callerWentAway,
        );
      if (this.closed) throw new HiqliteError('HQL_CLOSED', 'the client is closed', { retryable: false });
      if (o.signal?.aborted === true) throw callerWentAway();
      let addr: string | null = null;
      try {
        const any = await raceAbort(this.connectionBy(deadline, 'any'), o.signal, callerWentAway);
        addr = any.addr;
        const conn = any.link.conn;
        const sent = conn.listen(
          { op: 'listen', ...body },
          Math.max(1, Math.min(deadline - performance.now(), this.o.requestTimeoutMs)),
          onPush,
        );
        const r = await sent.answer;
        if (!r.ok) throw remoteError(r.error);
        const value = r.value as { afterSeq?: unknown };
        const afterSeq = typeof value.afterSeq === 'number' ? value.afterSeq : (body.afterSeq ?? 0);
        let open = true;
        const lost = () => {
          if (!open) return;
          open = false;
          unwatch();
          onLost(
            new HiqliteError('HQL_UNAVAILABLE', 'the connection of a listener closed', { retryable: true }),
          );
        };
        const unwatch = conn.onClose(lost);
        if (conn.closed) queueMicrotask(lost);
        return {
          afterSeq,
          stop: () => {
            if (!open) return Promise.resolve();
            open = false;
            unwatch();
            return conn.unlisten(sent.sub, this.o.requestTimeoutMs);
          },
        };
      } catch (e) {
        if (!(e instanceof HiqliteError) || !e.retryable || o.finalCodes?.has(e.code) === true) throw e;
        if (addr !== null && NODE_CANNOT_SERVE.has(e.code)) this.avoid(addr);
        last = e;
      }
    }
    throw (
      last ??
      new HiqliteError('HQL_TIMEOUT', `no listener opened within ${timeoutMs} ms`, { retryable: true })
    );
  }

  // ---------------------------------------------------------------------------------------------

  private forgetLeader(group: string, addr: string): void {
    if (this.leaderAddrs.get(group) === addr) this.leaderAddrs.delete(group);
  }

  /**
   * The node at `addr` answered that it cannot serve now (NODE_CANNOT_SERVE: stopped serving,
   * starting, shutting down, or behind a partition). The next attempt goes to the next node, and
   * to this one as a leader no more; its connection stays open for later turns.
   */
  private avoid(addr: string): void {
    if (this.anyAddr === addr) this.anyAddr = null;
    for (const [group, leader] of this.leaderAddrs) if (leader === addr) this.leaderAddrs.delete(group);
  }

  /**
   * connection() within a call's `deadline` (performance.now()): a node that takes the TCP
   * connection and never answers its handshake (frozen, or too busy) held a call until
   * connectTimeoutMs, past the call's own deadline (found from outside: 3 s for a call of 1 s).
   * The connection attempt goes on for the calls after it (it is shared); this call ends
   * HQL_UNAVAILABLE, retryable, nothing sent.
   */
  private connectionBy(
    deadline: number,
    route: LinkRoute,
    group?: string,
  ): Promise<{ addr: string; link: NodeLink }> {
    const leftMs = Math.max(0, deadline - performance.now());
    const p = this.connection(route, group);
    // A call without a deadline (a lock wait without waitMs) waits as connection() does: a timer
    // beyond 2^31-1 ms fires at once.
    if (leftMs > TIMEOUT_MS_MAX) return p;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const addr = this.anyAddr;
        // The calls after this one go to the next node (the connection attempt goes on).
        this.anyAddr = null;
        reject(
          new HiqliteError(
            'HQL_UNAVAILABLE',
            `no connection within the call's deadline (waited the ${Math.round(leftMs)} ms it left${addr === null ? '' : ` for ${addr}`}; the next call asks the next node)`,
            { retryable: true },
          ),
        );
      }, leftMs);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  /** The connection a request of `route` goes to: the leader's when known and followed, else the "any" node's. */
  private async connection(route: LinkRoute, group = 'sql'): Promise<{ addr: string; link: NodeLink }> {
    if (route === 'leader' && this.o.followLeader) {
      const addr = await this.leaderAddress(group);
      if (addr !== null) {
        try {
          return { addr, link: await this.linkTo(addr) };
        } catch (e) {
          if (e instanceof HiqliteError && e.code === 'HQL_UNAUTHORIZED') throw e;
          // The leader's address as its node knows it may not be reachable from here: the
          // "any" node forwards.
          this.forgetLeader(group, addr);
        }
      }
    }
    if (this.anyAddr === null) {
      this.anyAddr = this.o.nodes[this.next % this.o.nodes.length] as string;
      this.next++;
    }
    const addr = this.anyAddr;
    try {
      return { addr, link: await this.linkTo(addr) };
    } catch (e) {
      if (this.anyAddr === addr) this.anyAddr = null;
      throw e;
    }
  }

  /** The group leader's API address, asked of the "any" node when unknown; null when it knows none. */
  private leaderAddress(group: string): Promise<string | null> {
    const known = this.leaderAddrs.get(group);
    if (known !== undefined) return Promise.resolve(known);
    const asking = this.leaderAsks.get(group);
    if (asking !== undefined) return asking;
    const ask = (async () => {
      const { link } = await this.connection('any');
      // The sql group's leader is asked without naming the group (nodes before groups know only it).
      const question = (group === 'sql' ? { op: 'leader' } : { op: 'leader', group }) as LinkBody;
      const r = await link.conn.request(question, this.o.connectTimeoutMs);
      const api = r.ok ? (r.value as { leaderApi?: unknown }).leaderApi : null;
      if (typeof api !== 'string') return null;
      try {
        parseApiAddress(api);
      } catch {
        return null;
      }
      const known = this.o.nodes.includes(api) || this.conns.has(api);
      if (!known && this.conns.size >= this.o.nodes.length + LEARNED_ADDRESSES_MAX) return null;
      this.leaderAddrs.set(group, api);
      return api;
    })();
    this.leaderAsks.set(group, ask);
    const forget = () => {
      if (this.leaderAsks.get(group) === ask) this.leaderAsks.delete(group);
    };
    ask.then(forget, forget);
    return ask.catch(() => null);
  }

  /** The open connection to `addr`, or a new one (with the node's limits, once per connection). */
  private linkTo(addr: string): Promise<NodeLink> {
    const existing = this.conns.get(addr);
    if (existing !== undefined) return existing;
    const failed = this.connectFailures.get(addr);
    if (failed !== undefined && performance.now() < failed.untilMs) return Promise.reject(failed.error);
    const { host, port, tls } = parseApiAddress(addr);
    const useTls = this.o.tls ?? (tls === true ? true : undefined);
    const connectTimeoutMs = this.o.connectTimeoutMs;
    const p = ApiConnection.open({
      host,
      port,
      secret: this.o.secretApi,
      localId: REMOTE_CLIENT_ID,
      ...(useTls === undefined ? {} : { tls: useTls }),
      connectTimeoutMs,
      frameBytesMax: this.o.frameBytesMax,
      inflightMax: this.o.inflightMax,
      ...(this.o.keepaliveIntervalMs === undefined
        ? {}
        : { keepaliveIntervalMs: this.o.keepaliveIntervalMs }),
      ...(this.o.keepaliveTimeoutMs === undefined ? {} : { keepaliveTimeoutMs: this.o.keepaliveTimeoutMs }),
      // close() stops an attempt under way (it waited for a host that never answered, up to
      // connectTimeoutMs: found from outside).
      signal: this.closing.signal,
    }).then(async (conn): Promise<NodeLink> => {
      const theirs = conn.serverClusterId;
      if (theirs !== null && this.clusterId !== null && theirs !== this.clusterId) {
        this.mismatched.add(addr);
        const everyNode = this.o.nodes.every((a) => this.mismatched.has(a));
        if (!(everyNode && this.o.onClusterChange !== undefined)) {
          conn.close();
          throw otherCluster(addr, theirs, this.clusterId, everyNode);
        }
        // A link that holds no data of its own (the proxy) follows its nodes into the cluster
        // they all form now (found from outside: a proxy of a cache-only in-memory cluster that
        // was founded anew answered every call HQL_CLUSTER_MISMATCH until it was restarted).
        this.o.onClusterChange(this.clusterId, theirs);
        this.clusterId = null;
        this.mismatched.clear();
      }
      if (theirs !== null) {
        this.clusterId = theirs;
        this.mismatched.delete(addr);
      }
      conn.onEvent((e) => {
        if (e.event === API_EVENT_CACHE_TOKEN_FLOOR) this.raiseTokenFloor(e.floor);
        else for (const hook of this.eventHooks) hook(e);
      });
      // A node that does not know the request: no limit known.
      const r = await conn.request({ op: 'limits' }, connectTimeoutMs, this.closing.signal).catch(() => null);
      const limits =
        r?.ok === true
          ? (r.value as { commandBytesMax?: unknown; frameBytesMax?: unknown; cacheTokenFloor?: unknown })
          : {};
      const frame = limits.frameBytesMax;
      if (typeof frame === 'number' && Number.isSafeInteger(frame) && frame > 0)
        conn.setPeerFrameBytesMax(frame);
      // The node's cache token floor, as if it had sent the event (a node restarted into a group
      // founded anew says it at connect once it applied that group's state; ApiEvent).
      this.raiseTokenFloor(limits.cacheTokenFloor);
      const max = limits.commandBytesMax;
      return { conn, commandBytesMax: typeof max === 'number' ? max : null };
    });
    this.conns.set(addr, p);
    const drop = () => {
      if (this.conns.get(addr) !== p) return;
      this.conns.delete(addr);
      if (this.anyAddr === addr) this.anyAddr = null;
      for (const [group, leader] of this.leaderAddrs) if (leader === addr) this.leaderAddrs.delete(group);
    };
    p.then(
      () => this.connectFailures.delete(addr),
      (error: unknown) => {
        const failures = (this.connectFailures.get(addr)?.failures ?? 0) + 1;
        const backoffMs = Math.min(RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_MIN * 2 ** (failures - 1));
        this.connectFailures.set(addr, { failures, untilMs: performance.now() + backoffMs, error });
      },
    );
    p.then((l) => {
      if (this.closed) l.conn.close();
      l.conn.onClose(() => {
        drop();
        if (!this.closing.signal.aborted) this.reconnectSoon();
      });
    }, drop);
    return p;
  }

  /** A token floor a node told (validated here, the one place): hooks hear a raise only. */
  private raiseTokenFloor(floor: unknown): void {
    if (typeof floor !== 'number' || !Number.isSafeInteger(floor) || floor <= this.tokenFloor) return;
    this.tokenFloor = floor;
    for (const hook of this.eventHooks) hook({ event: API_EVENT_CACHE_TOKEN_FLOOR, floor });
  }

  /** A connection closed: keepConnectedWhile. */
  private reconnectSoon(): void {
    if (this.reconnectTimer !== null || this.closing.signal.aborted || !this.keepConnected()) return;
    this.reconnectTimer = setTimeout(() => {
      this.call({ op: 'limits' }, { kind: 'other', route: 'any' })
        // Over a connection that was open already, the answer says it (a new one says it too).
        .then((v) => this.raiseTokenFloor((v as { cacheTokenFloor?: unknown } | null)?.cacheTokenFloor))
        .catch(() => {})
        .finally(() => {
          this.reconnectTimer = null;
        });
    }, RECONNECT_AFTER_CLOSE_MS);
    this.reconnectTimer.unref();
  }
}

/**
 * HQL_CLUSTER_MISMATCH: the node at `addr` belongs to another cluster than this client's. Retryable
 * for the link (the next node may be of the client's cluster); the last error of a call when none is.
 */
function otherCluster(addr: string, theirs: string, ours: string, everyNode: boolean): HiqliteError {
  const which = everyNode
    ? `every node this client was given is now of cluster ${theirs}, and this client belongs to cluster ${ours}: the cluster it knew is gone`
    : `${addr} is a node of cluster ${theirs}, but this client belongs to cluster ${ours}: not used`;
  return new HiqliteError(
    'HQL_CLUSTER_MISMATCH',
    `${which} (a cluster restored from a backup, or one whose nodes all keep their state in memory, cache_storage_disk = false, restarted as a whole; a node restored apart from the others; a nodes list naming nodes of two clusters). A new cluster is not the old one: its data and notifications are not what this client saw. Connect a new client to it`,
    { retryable: !everyNode },
  );
}

/** The Raft group a request is for (`group` of propose, leader, …); sql when it names none. */
function groupOf(body: LinkBody): string {
  // The cache ops are the cache group's work: its leader serves linearizable reads and locks.
  if (body.op === 'cacheRead' || body.op === 'cacheLock') return 'cache';
  const group = (body as { group?: unknown }).group;
  return typeof group === 'string' ? group : 'sql';
}

function lastMessage(last: HiqliteError | null): string {
  return last === null ? 'none' : last.message;
}
