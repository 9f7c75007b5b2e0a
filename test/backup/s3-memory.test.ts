/**
 * Bounded memory of a streamed upload: 100 MiB sent through uploadStream grows the process's RSS
 * by a few parts, not by the size of the stream. The fake S3 runs in this process but keeps only
 * hashes of what it receives (`discardBodies`), so what grows is the client. The numbers are
 * reported (t.diagnostic); the assertion is a generous bound far below the stream's size.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { uploadStream } from '../../src/backup/s3/multipart-upload.js';
import { S3Client } from '../../src/backup/s3/s3-client.js';
import { type FakeS3, startTestS3, testS3ClientOptions } from '../support/s3-server.js';

const MiB = 1024 * 1024;
const TOTAL_BYTES = 100 * MiB;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** `total` bytes in 64 KiB chunks from one reused buffer: the source itself allocates nothing. */
async function* source(total: number): AsyncGenerator<Uint8Array> {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  for (let at = 0; at < total; at += chunk.length)
    yield chunk.subarray(0, Math.min(chunk.length, total - at));
}

async function peakRssGrowth(
  run: () => Promise<unknown>,
): Promise<{ growthBytes: number; baseBytes: number }> {
  gc();
  const baseBytes = process.memoryUsage().rss;
  let peak = baseBytes;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 2);
  try {
    await run();
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return { growthBytes: peak - baseBytes, baseBytes };
}

describe('S3 upload memory', () => {
  let s3: FakeS3;
  before(async () => {
    s3 = await startTestS3({ discardBodies: true });
    // Warm up: code loaded, connection pool and hashing set up before the baseline.
    await uploadStream(
      new S3Client({ ...testS3ClientOptions(s3), partSizeBytes: MiB }),
      'warm',
      source(3 * MiB),
    );
  });
  after(() => s3.close());

  for (const [partMiB, inFlight] of [
    [8, 1],
    [8, 2],
    [16, 1],
  ] as const) {
    test(`100 MiB streamed with ${partMiB} MiB parts, ${inFlight} in flight: RSS grows by a few parts`, async (t) => {
      const client = new S3Client({
        ...testS3ClientOptions(s3),
        partSizeBytes: partMiB * MiB,
        partsInFlightMax: inFlight,
      });
      let result: Awaited<ReturnType<typeof uploadStream>> | null = null;
      const m = await peakRssGrowth(async () => {
        result = await uploadStream(client, `mem-${partMiB}-${inFlight}`, source(TOTAL_BYTES));
      });
      assert.equal(s3.objects().get(`mem-${partMiB}-${inFlight}`)?.sizeBytes, TOTAL_BYTES);
      assert.equal(
        (result as unknown as { partCount: number }).partCount,
        Math.ceil(TOTAL_BYTES / (partMiB * MiB)),
      );
      const bufferBytes = partMiB * MiB * inFlight;
      t.diagnostic(
        `100 MiB upload, part ${partMiB} MiB × ${inFlight} in flight (buffers ${bufferBytes / MiB} MiB): ` +
          `peak RSS growth ${(m.growthBytes / MiB).toFixed(1)} MiB over a base of ${(m.baseBytes / MiB).toFixed(0)} MiB`,
      );
      // Generous (the measurement is noisy: the GC's slack, socket buffers of both ends in this
      // process), but below the 100 MiB a stream held whole would take.
      assert.ok(
        m.growthBytes < 2 * bufferBytes + 48 * MiB,
        `RSS grew by ${(m.growthBytes / MiB).toFixed(1)} MiB for ${bufferBytes / MiB} MiB of part buffers`,
      );
    });
  }
});
