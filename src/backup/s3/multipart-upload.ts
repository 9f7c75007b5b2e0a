/**
 * Upload from a stream of unknown length with bounded memory: the stream is cut into parts of
 * `partSizeBytes`, and at most `partsInFlightMax` part buffers exist at once (the one being
 * filled included), so memory is `partsInFlightMax × partSizeBytes` whatever the stream's size.
 * A stream shorter than one part is sent with a single PUT. A failure aborts the multipart
 * upload, so no parts are left behind (unless the abort itself fails: `onAbortFailed`).
 */
import { assert } from '../../lib/assert.js';
import type { S3CallOptions, S3Client } from './s3-client.js';
import { S3Error } from './s3-errors.js';
import type { CompletedPart } from './s3-xml.js';

/** S3's limit on the parts of one upload. */
export const PARTS_MAX = 10_000;

export interface S3UploadResult {
  etag: string;
  sizeBytes: number;
  /** 0 when the stream was sent with a single PUT. */
  partCount: number;
}

export async function uploadStream(
  client: S3Client,
  key: string,
  source: AsyncIterable<Uint8Array>,
  o: S3CallOptions = {},
): Promise<S3UploadResult> {
  const upload = new StreamUpload(client, key, o);
  try {
    return await upload.run(source);
  } catch (e) {
    await upload.abort();
    throw e;
  }
}

class StreamUpload {
  private readonly partSizeBytes: number;
  private readonly buffersMax: number;
  /** Buffers not in use (filled or sending), reused so memory does not wait for the GC. */
  private readonly freeBuffers: Buffer[] = [];
  private buffersAllocated = 0;
  private uploadId: string | null = null;
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private partsStarted = 0;
  private failure: unknown = null;
  private sizeBytes = 0;

  constructor(
    private readonly client: S3Client,
    private readonly key: string,
    private readonly o: S3CallOptions,
  ) {
    this.partSizeBytes = client.options.partSizeBytes;
    this.buffersMax = client.options.partsInFlightMax;
  }

  async run(source: AsyncIterable<Uint8Array>): Promise<S3UploadResult> {
    let buffer = this.takeBuffer();
    let filled = 0;
    for await (const chunk of source) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        // A full buffer is sent only once more bytes follow, so a stream of at most one part is
        // a single PUT and the last part is never empty.
        if (filled === this.partSizeBytes) {
          await this.sendPart(buffer, filled);
          buffer = await this.nextBuffer();
          filled = 0;
        }
        const n = Math.min(this.partSizeBytes - filled, chunk.byteLength - offset);
        buffer.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        this.sizeBytes += n;
      }
    }
    if (this.uploadId === null) {
      const { etag } = await this.client.putObject(this.key, buffer.subarray(0, filled), this.o);
      return { etag, sizeBytes: this.sizeBytes, partCount: 0 };
    }
    await this.sendPart(buffer, filled);
    await this.drain(0);
    const { etag } = await this.client.completeMultipartUpload(
      this.key,
      this.uploadId,
      this.parts,
      this.sizeBytes,
      this.o,
    );
    return { etag, sizeBytes: this.sizeBytes, partCount: this.parts.length };
  }

  /** Aborts the multipart upload after every part request has settled. */
  async abort(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    if (this.uploadId === null) return;
    try {
      // Without the caller's signal: an aborted backup must still remove its parts.
      await this.client.abortMultipartUpload(this.key, this.uploadId);
    } catch (e) {
      this.client.hooks.onAbortFailed?.(this.key, this.uploadId, e);
    }
  }

  private async sendPart(buffer: Buffer, length: number): Promise<void> {
    this.uploadId ??= await this.client.createMultipartUpload(this.key, this.o);
    const uploadId = this.uploadId;
    const partNumber = ++this.partsStarted;
    if (partNumber > PARTS_MAX) {
      throw new S3Error({
        operation: 'UploadPart',
        key: this.key,
        s3Code: 'TooManyParts',
        httpStatus: null,
        detail: `more than ${PARTS_MAX} parts of ${this.partSizeBytes} bytes: raise partSizeBytes`,
        retryable: false,
        attempts: 0,
      });
    }
    const sending: Promise<void> = this.client
      .uploadPart(this.key, uploadId, partNumber, buffer.subarray(0, length), this.o)
      .then(
        (part) => {
          this.parts.push(part);
        },
        (e: unknown) => {
          this.failure ??= e;
        },
      )
      .finally(() => {
        this.inFlight.delete(sending);
        this.freeBuffers.push(buffer);
      });
    this.inFlight.add(sending);
  }

  /** A buffer to fill next, once fewer than `buffersMax` are in use. */
  private async nextBuffer(): Promise<Buffer> {
    await this.drain(this.buffersMax - 1);
    return this.takeBuffer();
  }

  /** Waits until at most `inFlightMax` parts are being sent; throws the first part's failure. */
  private async drain(inFlightMax: number): Promise<void> {
    while (this.inFlight.size > inFlightMax) await Promise.race(this.inFlight);
    if (this.failure !== null) throw this.failure;
    // Parts may finish out of order; CompleteMultipartUpload wants them by number.
    this.parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  private takeBuffer(): Buffer {
    const reused = this.freeBuffers.pop();
    if (reused !== undefined) return reused;
    this.buffersAllocated++;
    assert(this.buffersAllocated <= this.buffersMax, 'part buffers stay within partsInFlightMax');
    return Buffer.allocUnsafe(this.partSizeBytes);
  }
}
