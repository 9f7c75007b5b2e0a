/**
 * Retries with exponential backoff, bounded twice: by count (`retriesMax`) and by time since the
 * first attempt (`retryDeadlineMs`). Only failures marked retryable are retried (5xx, 429, S3's
 * RequestTimeout, dropped connections, missed deadlines); a 4xx such as SignatureDoesNotMatch
 * surfaces at once.
 */
import { whenAborted } from '../../lib/abort.js';
import { assert } from '../../lib/assert.js';
import type { Clock } from '../../lib/clock.js';
import { abortedError, type HiqliteError } from '../../lib/errors.js';
import { S3Error } from './s3-errors.js';

export interface RetryPolicy {
  readonly retriesMax: number;
  readonly retryDeadlineMs: number;
  readonly retryDelayMinMs: number;
  readonly retryDelayMaxMs: number;
  readonly clock: Clock;
  readonly random: { next(): number };
}

/** Called before each retry (for logs and metrics). */
export type RetryListener = (error: S3Error, delayMs: number) => void;

/** "Equal jitter": half the exponential delay fixed, half random, so no retry comes too soon. */
export function retryDelayMs(retry: number, policy: RetryPolicy): number {
  assert(Number.isInteger(retry) && retry >= 0, 'retry is a count');
  const capped = Math.min(policy.retryDelayMaxMs, policy.retryDelayMinMs * 2 ** Math.min(retry, 30));
  return Math.max(1, Math.round(capped / 2 + (policy.random.next() * capped) / 2));
}

/** Runs `attempt(1)`, `attempt(2)`, … until one succeeds or a failure may not be retried. */
export async function withRetries<T>(
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  onRetry: RetryListener | undefined,
  attempt: (attemptNumber: number) => Promise<T>,
): Promise<T> {
  const startMs = policy.clock.monotonicMs();
  for (let n = 1; n <= policy.retriesMax + 1; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      if (!(e instanceof S3Error) || !e.retryable || n > policy.retriesMax) throw e;
      const delayMs = retryDelayMs(n - 1, policy);
      if (policy.clock.monotonicMs() - startMs + delayMs > policy.retryDeadlineMs) throw e;
      onRetry?.(e, delayMs);
      await sleep(policy.clock, delayMs, signal);
    }
  }
  assert(false, 'the retry loop returns or throws');
}

export function s3Aborted(signal: AbortSignal): HiqliteError {
  return abortedError('the S3 request was aborted by its caller', signal.reason);
}

export function sleep(clock: Clock, delayMs: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(s3Aborted(signal));
      return;
    }
    let stopListening = () => {};
    const timer = clock.setTimer(() => {
      stopListening();
      resolve();
    }, delayMs);
    stopListening = whenAborted(signal, () => {
      clock.clearTimer(timer);
      reject(s3Aborted(signal as AbortSignal));
    });
  });
}
