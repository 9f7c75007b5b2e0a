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
 * flood of new connections refusing would shut them out just the same.
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

export interface HandshakeGateOptions {
  /** Connections accepted and not yet authenticated, at most. */
  readonly pendingMax: number;
  /** From TCP accept to authenticated. */
  readonly timeoutMs: number;
  readonly timers: Timers;
}

interface Pending {
  readonly socket: Socket;
  readonly timer: unknown;
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
    if (this.pending.size >= this.o.pendingMax) {
      const oldest = this.pending.keys().next();
      if (!oldest.done) {
        this.evictedCount++;
        this.expire(
          oldest.value,
          'evicted',
          `more than ${this.o.pendingMax} unauthenticated connections: the oldest is closed`,
        );
      }
    }
    const entry: Pending = {
      socket,
      timer: this.o.timers.setTimeout(() => {
        this.expiredCount++;
        this.expire(key, 'deadline', `no completed handshake within ${this.o.timeoutMs} ms`);
      }, this.o.timeoutMs),
      close: null,
    };
    this.pending.set(key, entry);
    socket.once('close', () => {
      if (this.pending.get(key) === entry) this.forget(key, entry);
    });
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
