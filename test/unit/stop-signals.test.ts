/**
 * The `hiqlite` command's entry holds SIGTERM / SIGINT while a long-running command loads, and
 * hands them to the command's own handlers with no moment between without a listener: when the
 * last listener of a signal goes, Node restores the default action (the process ends, 143,
 * silent) and drops a signal caught but not yet dispatched (ignored). Found by an outside probe:
 * a SIGTERM 0.4 s after `hiqlite serve` or `dev` started did one or the other.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holdStopSignals, onShutdownSignal, releaseStopSignals } from '../../src/client/signals.js';

test('from the entry to the command, every moment has a listener of SIGTERM and SIGINT', () => {
  const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') };
  const seen: string[] = [];
  const early = (s: NodeJS.Signals) => seen.push(`early ${s}`);
  holdStopSignals(early);
  assert.equal(process.listenerCount('SIGTERM'), before.term + 1);
  // The command installs its own (onShutdownSignal, as serve and proxy do), which releases the
  // entry's after: the count never falls to what it was before.
  const counts: number[] = [];
  const on = process.once.bind(process);
  const off = process.off.bind(process);
  process.once = ((e: string, l: (...a: unknown[]) => void) => {
    const r = on(e as 'SIGTERM', l);
    counts.push(process.listenerCount('SIGTERM'));
    return r;
  }) as typeof process.once;
  process.off = ((e: string, l: (...a: unknown[]) => void) => {
    const r = off(e as 'SIGTERM', l);
    counts.push(process.listenerCount('SIGTERM'));
    return r;
  }) as typeof process.off;
  try {
    onShutdownSignal(async () => {});
  } finally {
    process.once = on;
    process.off = off;
  }
  assert.ok(
    counts.every((n) => n > before.term),
    `listeners of SIGTERM along the hand-over: ${counts.join(', ')}`,
  );
  // The entry's handler is gone; the command's stays (removed here, as a test leaves none).
  assert.equal(process.listenerCount('SIGTERM'), before.term + 1);
  assert.ok(!process.listeners('SIGTERM').includes(early));
  for (const s of ['SIGTERM', 'SIGINT'] as const) {
    const mine = process.listeners(s).slice(before[s === 'SIGTERM' ? 'term' : 'int']);
    for (const l of mine) process.off(s, l as () => void);
  }
  releaseStopSignals(); // a second release does nothing
  assert.deepEqual(seen, []);
});
