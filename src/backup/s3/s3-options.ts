/**
 * Options of the S3 client, each limit named with its unit and validated here (STYLE.md habit 5).
 * The defaults suit a nightly backup to a remote S3 service; tests shrink the parts and delays.
 */
import type { Clock } from '../../lib/clock.js';
import { HiqliteError } from '../../lib/errors.js';
import { bucketNameProblem, virtualHostProblem } from '../../node/config/config-backup.js';
import { systemClock } from '../../node/system-clock.js';

const MiB = 1024 * 1024;

export interface S3ClientOptions {
  /** The service's base URL, e.g. `https://s3.eu-central-1.amazonaws.com` or `http://127.0.0.1:9000`. */
  endpointUrl: string;
  bucket: string;
  region: string;
  /** `true`: `<endpoint>/<bucket>/<key>`; `false`: `<bucket>.<endpoint host>/<key>` (virtual-hosted). */
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * Deadline of one request: until the answer's headers arrive, then again for every gap between
   * two chunks of its body. A missed deadline is retried like a dropped connection.
   */
  requestTimeoutMs?: number;
  /** How many times a failed request is sent again (so at most `retriesMax + 1` attempts). */
  retriesMax?: number;
  /** No retry starts after this many ms since the first attempt of a request. */
  retryDeadlineMs?: number;
  /** Backoff before retry n is in [d/2, d) with d = min(retryDelayMaxMs, retryDelayMinMs * 2^n). */
  retryDelayMinMs?: number;
  retryDelayMaxMs?: number;
  /**
   * Size of every part of a multipart upload but the last; a stream shorter than one part is sent
   * with a single PUT. S3 refuses parts under 5 MiB (except the last) and allows 10,000 parts, so
   * the largest upload is 10,000 × this. Values under 5 MiB are for test servers only.
   */
  partSizeBytes?: number;
  /**
   * Part buffers that exist at once during an upload, including the one being filled: 1 reads
   * and sends in turn; 2 reads the next part while one is sent. Memory: this × `partSizeBytes`.
   */
  partsInFlightMax?: number;
  /** `max-keys` of one ListObjectsV2 page (S3 answers at most 1,000). */
  listPageKeysMax?: number;
  clock?: Clock;
  /** Jitter of the backoff; a float in [0, 1). */
  random?: { next(): number };
  /** The fetch to send requests with (tests route virtual-hosted names to 127.0.0.1 with it). */
  fetch?: typeof fetch;
}

export interface ResolvedS3Options {
  readonly endpoint: URL;
  readonly bucket: string;
  readonly region: string;
  readonly pathStyle: boolean;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly requestTimeoutMs: number;
  readonly retriesMax: number;
  readonly retryDeadlineMs: number;
  readonly retryDelayMinMs: number;
  readonly retryDelayMaxMs: number;
  readonly partSizeBytes: number;
  readonly partsInFlightMax: number;
  readonly listPageKeysMax: number;
  readonly clock: Clock;
  readonly random: { next(): number };
  readonly fetch: typeof fetch;
}

export const S3_DEFAULTS = {
  requestTimeoutMs: 60_000,
  retriesMax: 6,
  retryDeadlineMs: 300_000,
  retryDelayMinMs: 250,
  retryDelayMaxMs: 15_000,
  partSizeBytes: 8 * MiB,
  partsInFlightMax: 1,
  listPageKeysMax: 1000,
} as const;

/** Inclusive bounds of the numeric options. */
const BOUNDS: Record<keyof typeof S3_DEFAULTS, readonly [number, number]> = {
  requestTimeoutMs: [100, 3_600_000],
  retriesMax: [0, 100],
  retryDeadlineMs: [0, 86_400_000],
  retryDelayMinMs: [1, 600_000],
  retryDelayMaxMs: [1, 3_600_000],
  partSizeBytes: [64 * 1024, 5 * 1024 * MiB],
  partsInFlightMax: [1, 4],
  listPageKeysMax: [1, 1000],
};

export function resolveS3Options(o: S3ClientOptions): ResolvedS3Options {
  const problems: string[] = [];
  let endpoint: URL | null = null;
  try {
    endpoint = new URL(o.endpointUrl);
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
      problems.push(`endpointUrl must be http(s), got '${endpoint.protocol}'`);
    }
    if (endpoint.search !== '' || endpoint.hash !== '')
      problems.push('endpointUrl must have no query or fragment');
    // fetch refuses a URL with credentials, and its error quotes the URL: never sent, never shown.
    if (endpoint.username !== '' || endpoint.password !== '')
      problems.push(
        'endpointUrl must not hold credentials (user:password@): use accessKeyId and secretAccessKey',
      );
  } catch {
    problems.push(
      o.endpointUrl.includes('@')
        ? 'endpointUrl is not a URL'
        : `endpointUrl is not a URL: '${o.endpointUrl}'`,
    );
  }
  // The configuration's rules (one place: config-backup.ts): a bucket name the configuration
  // took was refused here, by a stricter rule (found by an outside probe: `My_Backups`, path-style).
  const bucketProblem = bucketNameProblem(o.bucket, o.pathStyle, 'pathStyle');
  if (bucketProblem !== null) problems.push(`bucket '${o.bucket}' ${bucketProblem}`);
  const hostProblem = virtualHostProblem(o.endpointUrl, o.pathStyle);
  if (hostProblem !== null) problems.push(`pathStyle false ${hostProblem}`);
  if (o.region === '') problems.push('region is empty');
  if (o.accessKeyId === '') problems.push('accessKeyId is empty');
  if (o.secretAccessKey === '') problems.push('secretAccessKey is empty');
  const numbers = {} as Record<keyof typeof S3_DEFAULTS, number>;
  for (const name of Object.keys(S3_DEFAULTS) as Array<keyof typeof S3_DEFAULTS>) {
    const value = o[name] ?? S3_DEFAULTS[name];
    const [lo, hi] = BOUNDS[name];
    if (!Number.isInteger(value) || value < lo || value > hi) {
      problems.push(`${name} must be an integer in [${lo}, ${hi}], got ${value}`);
    }
    numbers[name] = value;
  }
  if (numbers.retryDelayMaxMs < numbers.retryDelayMinMs) problems.push('retryDelayMaxMs < retryDelayMinMs');
  if (problems.length > 0 || endpoint === null) {
    throw new HiqliteError('HQL_INVALID_CONFIG', `invalid S3 options: ${problems.join('; ')}`, {
      retryable: false,
    });
  }
  return {
    endpoint,
    bucket: o.bucket,
    region: o.region,
    pathStyle: o.pathStyle,
    accessKeyId: o.accessKeyId,
    secretAccessKey: o.secretAccessKey,
    ...numbers,
    clock: o.clock ?? systemClock,
    random: o.random ?? { next: Math.random },
    fetch: o.fetch ?? globalThis.fetch,
  };
}
