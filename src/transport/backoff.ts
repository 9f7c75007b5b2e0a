/**
 * Reconnect delay: exponential in the number of consecutive failures, capped, with "equal
 * jitter" (half fixed, half random) so nodes that lost a peer together do not all reconnect in
 * the same instant, while no retry comes sooner than half the exponential delay.
 */
import { assert } from '../lib/assert.js';

export interface BackoffRandom {
  /** A float in [0, 1). */
  next(): number;
}

export function reconnectDelayMs(
  failures: number,
  minMs: number,
  maxMs: number,
  random: BackoffRandom,
): number {
  assert(Number.isInteger(failures) && failures >= 0, 'failures is a count');
  assert(minMs >= 1 && maxMs >= minMs, 'reconnect delay bounds');
  // 2^30 already exceeds any sensible cap; the min() keeps 2 ** n finite.
  const capped = Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
  return Math.max(1, Math.round(capped / 2 + (random.next() * capped) / 2));
}
