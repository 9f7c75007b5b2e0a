/**
 * The receiving end of one snapshot stream as an `AsyncIterable<Uint8Array>`: the connection
 * pushes chunks, the consumer pulls them. It does not bound itself; it reports every chunk it
 * hands out (`onConsumed`) so the connection can stop reading while too many bytes wait here,
 * which pushes back through TCP to the sender.
 */
import { assert } from '../lib/assert.js';
import { IndexDeque } from '../lib/index-deque.js';

export class ChunkChannel implements AsyncIterable<Uint8Array> {
  private readonly chunks = new IndexDeque<Uint8Array>();
  private ended = false;
  private failure: Error | null = null;
  private discarded = false;
  private iterated = false;
  private waiter: {
    resolve: (r: IteratorResult<Uint8Array>) => void;
    reject: (e: Error) => void;
  } | null = null;

  constructor(private readonly onConsumed: (bytes: number) => void) {}

  push(chunk: Uint8Array): void {
    if (this.discarded || this.ended || this.failure !== null) return;
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      this.onConsumed(chunk.byteLength);
      w.resolve({ value: chunk, done: false });
      return;
    }
    this.chunks.push(chunk);
  }

  /** The stream is complete: the consumer sees the end after the buffered chunks. */
  end(): void {
    if (this.discarded || this.failure !== null) return;
    this.ended = true;
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** The stream broke: the consumer's next pull throws `error` (buffered chunks are dropped). */
  fail(error: Error): void {
    if (this.discarded || this.ended || this.failure !== null) return;
    this.failure = error;
    this.dropBuffered();
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.reject(error);
    }
  }

  /** The consumer is gone: drop what is buffered and ignore what still arrives. */
  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    this.dropBuffered();
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    assert(!this.iterated, 'a snapshot stream can be iterated once');
    this.iterated = true;
    return {
      next: () => this.next(),
      return: () => {
        this.discard();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const chunk = this.chunks.shift();
    if (chunk !== undefined) {
      this.onConsumed(chunk.byteLength);
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.ended || this.discarded) return Promise.resolve({ value: undefined, done: true });
    assert(this.waiter === null, 'concurrent next() on a snapshot stream');
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private dropBuffered(): void {
    let bytes = 0;
    for (let i = 0; i < this.chunks.length; i++) bytes += this.chunks.get(i).byteLength;
    this.chunks.clear();
    if (bytes > 0) this.onConsumed(bytes);
  }
}
