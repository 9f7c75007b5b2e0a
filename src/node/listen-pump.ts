/**
 * Moves a listen stream's items to a client's connection (binary push frames or Server-Sent
 * Events) with flow control: a batch is written only while the connection is writable (its
 * socket's buffer is below its high-water mark; else the pump waits for 'drain'). While a client
 * does not read, nothing more is written: its notifications wait in the stream's bounded buffer
 * (`cache_listener_buffer_max`), and when that overflows the client is sent `lagged` with the
 * number it missed and the stream ends. Many listens sharing one connection (binary protocol)
 * check the same socket, so what waits in it for a client that does not read is about one batch
 * per connection, not one per listen; memory per listener is its bounded buffer.
 */
import type { ListenItem, Notification } from './cache-listeners.js';
import type { ListenStream } from './listen-stream.js';

export interface ListenSink {
  /** Writes notifications; false when the connection's buffer is full (then wait for `drained`). */
  items(batch: readonly Notification[]): boolean;
  /** The listener fell behind (or resumed too late): the last thing sent. */
  lagged(missed: number): void;
  /** The stream failed (node shutting down, a relay lost its cluster): the last thing sent. */
  failed(error: unknown): void;
  /** Resolves once the connection can take more, or it closed. */
  drained(): Promise<void>;
  /**
   * The connection can take more now (its socket's buffer is below its high-water mark). Other
   * writers may share it (listens on one binary connection): a batch is written only while true.
   */
  readonly writable: boolean;
  readonly closed: boolean;
}

/**
 * Notifications of one batch (one frame or one write), and their payload bytes, at most (one
 * notification is always taken, however large). What waits in the socket of a client that does
 * not read is about one batch: a binary connection's (its listens share it) 1 MiB; a Server-Sent
 * Events stream's, one per listener, 64 KiB (SSE_BATCH_BYTES_MAX), of which a node holds up to
 * api_connections_max (found from outside: a thousand streams that never read held 2 MB each).
 */
export const LISTEN_BATCH_ITEMS_MAX = 256;
export const LISTEN_BATCH_BYTES_MAX = 1 << 20;
export const SSE_BATCH_BYTES_MAX = 64 << 10;

export interface ListenPump {
  /** Ends the stream; the sink hears nothing more. */
  stop(): void;
  /** Settles (never rejects) once the pump ended: stream ended, failed or stopped, or sink closed. */
  readonly done: Promise<void>;
}

export function pumpListen(
  stream: ListenStream,
  sink: ListenSink,
  batchBytesMax: number = LISTEN_BATCH_BYTES_MAX,
): ListenPump {
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    stream.close();
  };
  const done = run(stream, sink, batchBytesMax, () => stopped).finally(stop);
  return { stop, done };
}

async function run(
  stream: ListenStream,
  sink: ListenSink,
  batchBytesMax: number,
  stopped: () => boolean,
): Promise<void> {
  for (;;) {
    if (sink.closed || stopped()) return;
    let first: ListenItem;
    try {
      first = await stream.next();
    } catch (e) {
      if (!stopped() && !sink.closed) sink.failed(e);
      return;
    }
    // Another writer of this connection (a listen beside this one) may have filled it meanwhile:
    // the item waits here, the rest in the stream's bounded buffer.
    while (!sink.writable) {
      if (stopped() || sink.closed) return;
      await sink.drained();
    }
    if (stopped() || sink.closed) return;
    const batch: Notification[] = [];
    let bytes = 0;
    let item: ListenItem | undefined = first;
    // Bounded by LISTEN_BATCH_ITEMS_MAX and batchBytesMax.
    while (item !== undefined) {
      if (item.kind === 'lagged') {
        if (batch.length > 0) sink.items(batch);
        sink.lagged(item.missed);
        return;
      }
      batch.push(item.notification);
      bytes += item.notification.payload.byteLength;
      if (batch.length >= LISTEN_BATCH_ITEMS_MAX || bytes >= batchBytesMax) break;
      item = stream.drain(1)[0];
    }
    if (!sink.items(batch)) await sink.drained();
  }
}
