/**
 * A node whose clock ran ahead pushes a group's log time ahead: TTLs and lock leases running then
 * end early by that much. That is not silent: `/metrics` exports how far the cache group's log
 * time is ahead of the node's clock (`hiqlite_cache_log_clock_ahead_ms`), and the node logs a
 * warning. And it does not stop time: the others' stamps run on from the log's time
 * (src/lib/log-clock.ts), so TTLs still end and SQL's `'now'` still moves (with the wall clock
 * alone both stood still for the hour).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';
import { skewedClock } from '../support/skewed-clock.js';

const HOUR_MS = 3_600_000;

async function cacheEntries(base: string, cache: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^hiqlite_cache_entries\\{[^}]*cache="${cache}"[^}]*\\} (\\S+)$`, 'm').exec(text);
  assert.ok(m !== null, `hiqlite_cache_entries of ${cache} is exported`);
  return Number(m[1]);
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
      // The next entries applied (stamped with log time run on from there) are logged once.
      await node.cache('c').put('k', 3);
      await node.cache('c').put('k', 4);
      const warnings = lines.filter((l) => l.includes("log time is ahead of the cluster's clock"));
      assert.equal(warnings.length, 1, lines.join(''));
      assert.ok((JSON.parse(warnings[0] ?? '{}') as { aheadMs: number }).aheadMs > HOUR_MS - 60_000);
    } finally {
      await node.close();
    }
  });

  test('after writes stamped an hour ahead, a TTL still ends on time and SQL time runs on', async () => {
    const clock = skewedClock();
    const cfg = await oneNodeConfig(mkdtempSync(join(root, 'ttl-')));
    const node = await start(cfg, { thread: 'main', clock, logger: pino({ level: 'error' }) });
    try {
      await node.waitUntilHealthy({ timeoutMs: 20_000 });
      const c = node.cache('c');
      await node.execute('CREATE TABLE t (day REAL NOT NULL)');
      clock.offsetMs = HOUR_MS;
      await c.put('skewed', 1);
      await node.execute("INSERT INTO t VALUES (julianday('now'))");
      clock.offsetMs = 0;

      await c.put('short', 'v', { ttlMs: 300 });
      assert.equal(await c.get('short'), 'v');
      const deadline = Date.now() + 10_000;
      while ((await c.get('short')) !== null && Date.now() < deadline) await sleep(50);
      assert.equal(await c.get('short'), null, 'the TTL ended within 10 s (log time did not stand still)');
      // Removed from the state too, by the leader's expire proposals in log time.
      const base = `http://${cfg.nodes[0]?.addrApi}`;
      while ((await cacheEntries(base, 'c')) > 1 && Date.now() < deadline) await sleep(50);
      assert.equal(await cacheEntries(base, 'c'), 1, 'only the entry without a TTL is left');

      await node.execute("INSERT INTO t VALUES (julianday('now'))");
      await sleep(400);
      await node.execute("INSERT INTO t VALUES (julianday('now'))");
      const days = (await node.query<{ day: number }>('SELECT day FROM t ORDER BY rowid')).map((r) => r.day);
      const apartMs = (i: number) => Math.round(((days[i] ?? 0) - (days[i - 1] ?? 0)) * 86_400_000);
      assert.ok(apartMs(1) > 0, `time ran on after the skewed write: ${apartMs(1)} ms`);
      assert.ok(apartMs(2) >= 350 && apartMs(2) < 10_000, `two writes 400 ms apart: ${apartMs(2)} ms`);
    } finally {
      await node.close();
    }
  });
});
