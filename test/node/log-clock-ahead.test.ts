/**
 * A leader whose clock ran ahead pushes the cache group's log time ahead; the state machine never
 * lets log time go back, so TTLs and lock leases end early by that much and log time stands
 * still until the clocks catch up. That is not silent: `/metrics` exports how far log time is
 * ahead of the node's clock (`hiqlite_cache_log_clock_ahead_ms`), and the node logs a warning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { start } from '../../src/index.js';
import type { Clock } from '../../src/lib/clock.js';
import { systemClock } from '../../src/node/system-clock.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const HOUR_MS = 3_600_000;

/** The system clock, with a wall time `offsetMs` off (timers and the monotonic clock are real). */
function skewedClock(): Clock & { offsetMs: number } {
  const c = {
    offsetMs: 0,
    monotonicMs: () => systemClock.monotonicMs(),
    wallMs: () => systemClock.wallMs() + c.offsetMs,
    setTimer: systemClock.setTimer,
    clearTimer: systemClock.clearTimer,
  };
  return c;
}

async function aheadMs(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^hiqlite_cache_log_clock_ahead_ms (\S+)$/m.exec(text);
  assert.ok(m !== null, 'hiqlite_cache_log_clock_ahead_ms is exported');
  return Number(m[1]);
}

describe("log time ahead of the node's clock", () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-log-clock-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a write stamped by a clock an hour ahead shows in /metrics once the clock is right again', async () => {
    const clock = skewedClock();
    const cfg = await oneNodeConfig(root);
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const node = await start(cfg, { thread: 'main', clock, logger });
    try {
      await node.waitUntilHealthy({ timeoutMs: 20_000 });
      const base = `http://${cfg.nodes[0]?.addrApi}`;
      await node.cache('c').put('k', 1);
      assert.equal(await aheadMs(base), 0, 'log time is not ahead of a clock that stamped it');
      clock.offsetMs = HOUR_MS;
      await node.cache('c').put('k', 2);
      clock.offsetMs = 0;
      const ahead = await aheadMs(base);
      assert.ok(ahead > HOUR_MS - 60_000 && ahead <= HOUR_MS, `about an hour ahead: ${ahead} ms`);
      // The next entry applied (stamped with the log time, which stands still) is logged once.
      await node.cache('c').put('k', 3);
      await node.cache('c').put('k', 4);
      const warnings = lines.filter((l) => l.includes("log time is ahead of this node's clock"));
      assert.equal(warnings.length, 1, lines.join(''));
      assert.ok((JSON.parse(warnings[0] ?? '{}') as { aheadMs: number }).aheadMs > HOUR_MS - 60_000);
    } finally {
      await node.close();
    }
  });
});
