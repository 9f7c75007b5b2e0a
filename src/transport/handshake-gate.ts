/**
 * Bounds the connections of one listening port that have not authenticated yet. Before its
 * handshake a connection is anyone's: it gets a short deadline, counted from the TCP accept (a
 * TLS handshake, an HTTP upgrade and the secret handshake all fall inside it), and at most
 * `pendingMax` of them exist at once, apart from the authenticated ones, so strangers can fill
 * neither memory nor the port's connection cap.
 *
 * A full gate closes its oldest pending connection to make room, rather than refusing the new
 * one: idle connections held open by a stranger then cannot shut real clients out (a real client
 * authenticates within a round trip or two, long before it becomes the oldest), and under a
 * flood of new connections refusing would shut them out just the same. Only a connection pending
 * for `graceMs` is closed so: a burst of real clients (300 HTTP requests opened at once) arrives
 * faster than their first bytes are read, and closing the oldest at each accept reset most of them
 * before their requests were looked at (found by an outside probe: 236 of 300). Connections
 * younger than that may exceed `pendingMax` for `graceMs`; the port's connection cap bounds them.
 *
 *   server.on('connection', (socket) => gate.accept(socket));
 *   …handshake succeeded on `socket` (or the TLS socket over it): gate.admit(socket);
 *
 * A TLS server hands the application a TLS socket wrapping the accepted TCP socket, and Node
 * offers no public link between the two: connections are identified by their address pair
 * (local and remote address and port), which both sockets report and which no two open
 * connections of one listener share.
 */
import type { Socket } from 'node:net';
import type { Timers } from './timers.js';

export type GateCloseReason = 'deadline' | 'evicted';

/**
 * How long a pending connection is safe from being closed to make room: a fifth of the
 * handshake deadline (`handshake_timeout_ms`), at most 1 s (the default deadline, 5 s, gives
 * 1 s): time enough for a real client's first round trip on a loaded node, short against the
 * deadline that bounds a stranger.
 */
export function evictionGraceMs(handshakeTimeoutMs: number): number {
  return Math.min(handshakeTimeoutMs / 5, EVICTION_GRACE_MS_MAX);
}

const EVICTION_GRACE_MS_MAX = 1_000;

export interface HandshakeGateOptions {
  /** Connections accepted and not yet authenticated, at most. */
  readonly pendingMax: number;
  /** From TCP accept to authenticated. */
  readonly timeoutMs: number;
  /** A pending connection is closed to make room only once it has waited this long (< timeoutMs). */
  readonly graceMs: number;
  readonly timers: Timers;
  /**
   * The port's connection cap and how many connections are open on it now (authenticated or
   * not). Near the cap the oldest pending connections are closed even within their grace: the
   * grace let a flood of strangers' young connections fill the port, and the listener then
   * refused real clients outright (found from outside: 5 of 5 new clients shut out while 50
   * loops opened connections).
   */
  readonly port?: { readonly connectionsMax: number; openConnections(): number };
}

/** Connection slots of a port kept free for new connections (HandshakeGateOptions.port). */
export function portHeadroom(connectionsMax: number): number {
  return Math.max(1, Math.min(64, Math.floor(connectionsMax / 16)));
}

interface Pending {
  readonly socket: Socket;
  /** Its grace, then its deadline. */
  timer: unknown;
  /** Pending for graceMs: may be closed to make room. */
  mature: boolean;
  /** How the owner closes this connection (so it can log why); default: destroy the socket. */
  close: ((reason: GateCloseReason, detail: string) => void) | null;
}

export class HandshakeGate {
  /** In accept order: the first entry is the oldest. */
  private readonly pending = new Map<string, Pending>();
  private evictedCount = 0;
  private expiredCount = 0;

  constructor(private readonly o: HandshakeGateOptions) {}

  /** Connections accepted and not yet authenticated. */
  get size(): number {
    return this.pending.size;
  }

  /** Connections closed because the gate was full / because their deadline passed (since start). */
  get evicted(): number {
    return this.evictedCount;
  }

  get expired(): number {
    return this.expiredCount;
  }

  /** A TCP connection was accepted: it is pending until `admit`, its deadline or its close. */
  accept(socket: Socket): void {
    const key = connectionKey(socket);
    if (key === null || this.pending.has(key)) {
      // Already closed (no address), or a duplicate that cannot be told apart: not served.
      socket.destroy();
      return;
    }
    const entry: Pending = { socket, timer: null, mature: false, close: null };
    entry.timer = this.o.timers.setTimeout(() => {
      entry.mature = true;
      entry.timer = this.o.timers.setTimeout(() => {
        this.expiredCount++;
        this.expire(key, 'deadline', `no completed handshake within ${this.o.timeoutMs} ms`);
      }, this.o.timeoutMs - this.o.graceMs);
      this.makeRoom();
    }, this.o.graceMs);
    this.pending.set(key, entry);
    socket.once('close', () => {
      if (this.pending.get(key) === entry) this.forget(key, entry);
    });
    this.makeRoom(key);
  }

  /**
   * Closes the oldest pending connections while more than pendingMax wait, as long as the oldest
   * has had its grace (accept order is age order: when the oldest is young, all are). Bounded:
   * each turn removes one.
   */
  private makeRoom(accepted: string | null = null): void {
    while (this.pending.size > this.o.pendingMax) {
      const oldest = this.pending.entries().next();
      if (oldest.done || !oldest.value[1].mature) break;
      this.evictedCount++;
      this.expire(
        oldest.value[0],
        'evicted',
        `more than ${this.o.pendingMax} unauthenticated connections: the oldest is closed`,
      );
    }
    const port = this.o.port;
    if (port === undefined) return;
    const limit = port.connectionsMax - portHeadroom(port.connectionsMax);
    // A closed socket leaves the port's count when its close event runs, later: count here.
    // Bounded: each turn closes one pending connection.
    for (let closed = 0; this.pending.size > 0 && port.openConnections() - closed >= limit; closed++) {
      const victim = this.silentFirst(accepted);
      if (victim === null) return;
      this.evictedCount++;
      this.expire(
        victim,
        'evicted',
        `the port is near its ${port.connectionsMax} connections: the oldest unauthenticated one is closed`,
      );
    }
  }

  /**
   * The oldest pending connection that has sent nothing yet, else the oldest. A real client
   * speaks within a round trip of its accept; a flood of connections that never speak kept the
   * port at its cap, and on a loaded node a real client's handshake took longer than the flood
   * took to make it the oldest: it was closed mid-handshake, and connect() failed (found under
   * load: "peer ended the connection" while 4,000 strangers connected per second). A stranger
   * that sends a byte is still bounded by its deadline. The connection just accepted has had
   * no time to speak: it is not taken for silent (it was closed at once, ahead of older ones
   * that had spoken, when no other was silent). The scan stops at the first silent one, which
   * is the oldest entry under such a flood; at most the pending connections.
   */
  private silentFirst(accepted: string | null): string | null {
    let oldest: string | null = null;
    for (const [key, entry] of this.pending) {
      oldest ??= key;
      if (entry.socket.bytesRead === 0 && key !== accepted) return key;
    }
    return oldest;
  }

  /**
   * Routes the expiry of the pending connection `socket` belongs to through `close`, so its
   * owner can close it with a logged reason. No effect once it is admitted or gone.
   */
  onExpire(socket: Socket, close: (reason: GateCloseReason, detail: string) => void): void {
    const entry = this.lookup(socket);
    if (entry !== null) entry.close = close;
  }

  /** The connection `socket` belongs to authenticated: it leaves the gate (deadline off, not counted). */
  admit(socket: Socket): void {
    const key = connectionKey(socket);
    const entry = key === null ? undefined : this.pending.get(key);
    if (key !== null && entry !== undefined) this.forget(key, entry);
  }

  /** Whether the connection `socket` belongs to is still waiting to authenticate. */
  isPending(socket: Socket): boolean {
    return this.lookup(socket) !== null;
  }

  /** Stops every deadline (the owner closes the sockets). */
  close(): void {
    for (const [key, entry] of this.pending) this.forget(key, entry);
  }

  private lookup(socket: Socket): Pending | null {
    const key = connectionKey(socket);
    return key === null ? null : (this.pending.get(key) ?? null);
  }

  private expire(key: string, reason: GateCloseReason, detail: string): void {
    const entry = this.pending.get(key);
    if (entry === undefined) return;
    this.forget(key, entry);
    if (entry.close === null) entry.socket.destroy();
    else entry.close(reason, detail);
  }

  private forget(key: string, entry: Pending): void {
    this.o.timers.clearTimeout(entry.timer);
    this.pending.delete(key);
  }
}

/** The address pair of an open connection; null once the socket no longer has one. */
function connectionKey(socket: Socket): string | null {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (remoteAddress === undefined || remotePort === undefined) return null;
  return `${localAddress ?? ''}|${localPort ?? ''}|${remoteAddress}|${remotePort}`;
}
