/**
 * A TCP proxy for one direction of one node-to-node link: a listener on 127.0.0.1 that forwards
 * every accepted connection to one target port. The fault suite puts one such proxy between each
 * ordered pair of nodes (m → n, Raft port and API port), so cutting or slowing m → n changes only
 * the connections that m opens towards n.
 *
 * Modes:
 *   - `pass`: forward bytes both ways, each chunk delayed by `delayMs` (order kept);
 *   - `refuse`: existing connections are reset; new ones are accepted and reset at once (the
 *     peer sees the connection fail immediately, like a port that refuses);
 *   - `blackhole`: existing connections freeze (bytes stay queued, nothing is delivered, nothing
 *     closes); new ones are accepted and held without an upstream connection (the peer sees a
 *     connection that never answers, like a silently dropping network).
 * Leaving `blackhole` either resumes the frozen connections (queued bytes arrive late, as TCP
 * would deliver them after a partition heals) or resets them (as TCP gives up after a long
 * partition); the caller decides, so the choice can come from a seeded PRNG.
 */
import { createServer, type Server, Socket } from 'node:net';

export type LinkMode = 'pass' | 'refuse' | 'blackhole';

/** Bytes queued per direction of one connection before its source is paused (backpressure). */
const QUEUED_BYTES_MAX = 4 * 1024 * 1024;
/** Connections one proxy keeps at a time; more are reset (nodes open a handful per link). */
const CONNECTIONS_MAX = 256;

export interface ProxyTarget {
  readonly host: string;
  readonly port: number;
}

export interface ProxyStats {
  readonly accepted: number;
  readonly refused: number;
  readonly open: number;
  readonly bytesForwarded: number;
}

export class LinkProxy {
  private server: Server | null = null;
  private mode: LinkMode = 'pass';
  private delayMs = 0;
  private readonly conns = new Set<ProxiedConnection>();
  private accepted = 0;
  private refused = 0;
  bytesForwarded = 0;
  port = 0;

  constructor(
    readonly name: string,
    private readonly target: ProxyTarget,
  ) {}

  /** Listens on an ephemeral port of 127.0.0.1; resolves with it. */
  async listen(): Promise<number> {
    const server = createServer({ pauseOnConnect: true }, (s) => this.onAccept(s));
    server.on('error', () => {}); // listen errors surface through the promise below
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  currentMode(): LinkMode {
    return this.mode;
  }

  currentDelayMs(): number {
    return this.delayMs;
  }

  stats(): ProxyStats {
    return {
      accepted: this.accepted,
      refused: this.refused,
      open: this.conns.size,
      bytesForwarded: this.bytesForwarded,
    };
  }

  /** Latency added to every chunk, both directions, from now on (queued chunks keep theirs). */
  setDelay(delayMs: number): void {
    this.delayMs = Math.max(0, delayMs);
  }

  /**
   * Changes the mode. `resetFrozen` matters when leaving `blackhole`: true resets the frozen
   * and held connections, false resumes them.
   */
  setMode(mode: LinkMode, options: { resetFrozen?: boolean } = {}): void {
    const before = this.mode;
    this.mode = mode;
    if (mode === before) return;
    for (const c of [...this.conns]) {
      switch (mode) {
        case 'refuse':
          c.destroy();
          break;
        case 'blackhole':
          c.freeze();
          break;
        case 'pass':
          if (options.resetFrozen === true) c.destroy();
          else c.thaw(this.target, () => this.delayMs);
          break;
      }
    }
  }

  async close(): Promise<void> {
    for (const c of [...this.conns]) c.destroy();
    const s = this.server;
    this.server = null;
    if (s !== null) await new Promise<void>((r) => s.close(() => r()));
  }

  private onAccept(client: Socket): void {
    client.on('error', () => {});
    if (this.mode === 'refuse' || this.conns.size >= CONNECTIONS_MAX || this.server === null) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    client.pause();
    const c = new ProxiedConnection(client, this, () => this.conns.delete(c));
    this.conns.add(c);
    if (this.mode === 'pass') c.connectUpstream(this.target, () => this.delayMs);
    // blackhole: held, paused, no upstream until the link heals
  }
}

/** One direction of a proxied connection: chunks queued with their delivery time. */
class Pipe {
  private readonly queue: { atMs: number; chunk: Buffer }[] = [];
  private queuedBytes = 0;
  private lastAtMs = 0;
  private timer: NodeJS.Timeout | null = null;
  frozen = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly delayMs: () => number,
    private readonly onBytes: (n: number) => void,
  ) {
    from.on('data', (chunk: Buffer) => this.push(chunk));
    to.on('drain', () => this.maybeResume());
  }

  freeze(): void {
    this.frozen = true;
    this.from.pause();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  thaw(): void {
    this.frozen = false;
    this.flush();
    this.maybeResume();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }

  private push(chunk: Buffer): void {
    const now = performance.now();
    // Never earlier than the chunk before it: a shorter delay must not reorder bytes.
    const atMs = Math.max(now + this.delayMs(), this.lastAtMs);
    this.lastAtMs = atMs;
    this.queue.push({ atMs, chunk });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > QUEUED_BYTES_MAX) this.from.pause();
    this.flush();
  }

  private flush(): void {
    if (this.frozen || this.to.destroyed) return;
    const now = performance.now();
    while (this.queue.length > 0 && (this.queue[0] as { atMs: number }).atMs <= now) {
      const { chunk } = this.queue.shift() as { atMs: number; chunk: Buffer };
      this.queuedBytes -= chunk.length;
      this.onBytes(chunk.length);
      this.to.write(chunk);
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const head = this.queue[0];
    if (head !== undefined) {
      this.timer = setTimeout(() => this.flush(), Math.max(1, Math.ceil(head.atMs - now)));
    }
    this.maybeResume();
  }

  private maybeResume(): void {
    if (this.frozen || this.to.writableNeedDrain || this.queuedBytes > QUEUED_BYTES_MAX) return;
    if (this.from.isPaused()) this.from.resume();
  }
}

class ProxiedConnection {
  private upstream: Socket | null = null;
  private up: Pipe | null = null;
  private down: Pipe | null = null;
  private frozen = false;
  private destroyed = false;

  constructor(
    private readonly client: Socket,
    private readonly proxy: LinkProxy,
    private readonly onGone: () => void,
  ) {
    client.on('close', () => this.destroy());
  }

  connectUpstream(target: ProxyTarget, delayMs: () => number): void {
    const upstream = new Socket();
    this.upstream = upstream;
    upstream.on('error', () => {});
    upstream.on('close', () => this.destroy());
    // Both sockets stay paused (explicitly, so adding 'data' listeners does not start the flow)
    // until the upstream connection is up; bytes the client sent meanwhile wait in the kernel.
    upstream.pause();
    this.client.pause();
    const count = (n: number) => {
      this.proxy.bytesForwarded += n;
    };
    this.up = new Pipe(this.client, upstream, delayMs, count);
    this.down = new Pipe(upstream, this.client, delayMs, count);
    upstream.connect(target.port, target.host, () => {
      if (this.frozen || this.destroyed) return;
      this.client.resume();
      upstream.resume();
    });
  }

  freeze(): void {
    this.frozen = true;
    this.client.pause();
    this.upstream?.pause();
    this.up?.freeze();
    this.down?.freeze();
  }

  thaw(target: ProxyTarget, delayMs: () => number): void {
    if (this.destroyed) return;
    this.frozen = false;
    if (this.upstream === null) {
      this.connectUpstream(target, delayMs);
      return;
    }
    this.up?.thaw();
    this.down?.thaw();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.up?.stop();
    this.down?.stop();
    this.client.resetAndDestroy();
    this.upstream?.resetAndDestroy();
    this.onGone();
  }
}
