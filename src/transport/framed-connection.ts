/**
 * A socket that speaks frames. Incoming bytes go through a `FrameDecoder`; a framing error, a
 * truncated stream, a socket error or the peer hanging up all end in exactly one `onClose` call
 * with a reason, and a `ProtocolError` never escapes into the event loop. Frame handlers are
 * swapped as the connection moves from the handshake to its real job.
 */
import type { Socket } from 'node:net';
import { FrameDecoder } from '../protocol/frame.js';
import { ProtocolError } from '../protocol/protocol-error.js';

/** How long a `flush` close waits for its last bytes to leave before the socket is destroyed. */
const FLUSH_CLOSE_MS = 1000;

export type CloseCode =
  /** The peer broke the protocol (garbage, oversized or truncated frame, spoofing, …). */
  | 'protocol'
  /** The handshake failed or timed out. */
  | 'handshake'
  /** The peer closed or reset the connection. */
  | 'peer-closed'
  | 'socket-error'
  /** A newer connection from the same peer and lane took over. */
  | 'replaced'
  /** This node closed it (transport closing, peer removed). */
  | 'closed'
  /** The peer does not read what it asked for: the answers waiting for it passed their bound. */
  | 'slow-consumer'
  /** The bytes all connections held for unfinished frames passed their bound; this one held the most. */
  | 'overloaded';

export interface CloseReason {
  readonly code: CloseCode;
  readonly detail: string;
  readonly error?: unknown;
}

/** An unfinished frame from this size on makes a connection report its growth (onBufferGrowth). */
export const RECEIVE_CHECK_BYTES = 1024 * 1024;

export class FramedConnection {
  readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private frameHandler: (payload: Uint8Array) => void = () => {};
  private closeReason: CloseReason | null = null;
  private corked = false;
  private bufferGrowth: (() => void) | null = null;

  constructor(
    socket: Socket,
    frameBytesMax: number,
    private readonly onClose: (reason: CloseReason) => void,
  ) {
    this.socket = socket;
    // Kept once known: after the socket closed, Node no longer knows the address (an outgoing
    // socket learns it when it connects).
    this.rememberRemote();
    socket.once('connect', () => this.rememberRemote());
    this.decoder = new FrameDecoder(frameBytesMax);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: Error) => this.close({ code: 'socket-error', detail: err.message, error: err }));
    socket.on('close', () => this.close({ code: 'peer-closed', detail: 'connection closed' }));
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  private remoteText: string | null = null;

  /** `host:port` of the other end, for log lines. */
  get remote(): string {
    this.rememberRemote();
    return this.remoteText ?? 'unknown';
  }

  private rememberRemote(): void {
    if (this.remoteText === null && this.socket.remoteAddress !== undefined)
      this.remoteText = `${this.socket.remoteAddress}:${this.socket.remotePort ?? 0}`;
  }

  onFrame(handler: (payload: Uint8Array) => void): void {
    this.frameHandler = handler;
  }

  /** Bytes received and held for a frame not yet complete (what a peer makes us keep). */
  get bufferedBytes(): number {
    return this.decoder.bufferedBytes;
  }

  setFrameBytesMax(frameBytesMax: number): void {
    this.decoder.setFrameBytesMax(frameBytesMax);
  }

  /**
   * Called after a chunk arrived while an unfinished frame holds at least RECEIVE_CHECK_BYTES
   * (the API server keeps the sum over its connections bounded).
   */
  onBufferGrowth(handler: () => void): void {
    this.bufferGrowth = handler;
  }

  /**
   * Queues bytes on the socket; false means "wait for 'drain'" (or the connection is closed).
   * Frames written in the same tick leave in one system call: the socket is corked at the first
   * and uncorked once the tick's synchronous work and promise jobs are done (64 answers resolved
   * by one applied batch are one write, not 64).
   */
  write(bytes: Uint8Array): boolean {
    if (this.closeReason !== null) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    return this.socket.write(bytes);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (this.closeReason === null) this.socket.resume();
  }

  /**
   * Closes at once (no lingering half-open state); the first reason wins. `flush`: what was
   * written (a handshake refusal) goes out first, then the FIN; the socket is destroyed after
   * FLUSH_CLOSE_MS whatever the peer does.
   */
  close(reason: CloseReason, o: { readonly flush?: boolean } = {}): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    if (o.flush === true) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), FLUSH_CLOSE_MS).unref();
    } else this.socket.destroy();
    this.onClose(reason);
  }

  private onData(chunk: Uint8Array): void {
    if (this.closeReason !== null) return;
    let frames: Uint8Array[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.close({ code: 'protocol', detail: err.message, error: err });
      return;
    }
    // Bounded by the frames in one chunk; a handler may close the connection midway.
    for (const frame of frames) {
      if (this.closeReason !== null) return;
      this.frameHandler(frame);
    }
    if (
      this.bufferGrowth !== null &&
      this.closeReason === null &&
      this.decoder.bufferedBytes >= RECEIVE_CHECK_BYTES
    )
      this.bufferGrowth();
  }

  private onEnd(): void {
    if (this.closeReason !== null) return;
    try {
      this.decoder.end();
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.close({ code: 'protocol', detail: err.message, error: err });
      return;
    }
    this.close({ code: 'peer-closed', detail: 'peer ended the connection' });
  }
}
