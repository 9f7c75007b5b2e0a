/**
 * The cache group keeps its state in memory: every start restores it from its latest snapshot.
 * That is the normal start, logged at info; a warning (as for a SQL database behind its snapshot,
 * whose files were lost) at every restart was noise an operator learns to ignore (found by an
 * outside soak: one per restart).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const root = mkdtempSync(join(tmpdir(), 'hq-cache-restart-log-'));
after(() => rmSync(root, { recursive: true, force: true }));

function capturing(): { logger: pino.Logger; lines: () => Array<{ level: number; msg: string }> } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    logger: pino({ level: 'info' }, stream),
    lines: () =>
      text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}

test("a restart restores the cache group's snapshot without a warning", async () => {
  const cfg = await oneNodeConfig(root, { logsUntilSnapshot: 5 });
  const first = await start(cfg, { thread: 'main' });
  const cache = first.cache('c');
  for (let i = 0; i < 30; i++) await cache.put(`k${i}`, i);
  await first.close();

  const { logger, lines } = capturing();
  const again = await start(cfg, { thread: 'main', logger });
  try {
    assert.equal(await again.cache('c').get('k29'), 29, 'the state came back from the snapshot and log');
    const restored = lines().filter((l) => /from its latest snapshot|behind the snapshot/.test(l.msg));
    assert.ok(restored.length > 0, 'the cache group restored a snapshot at start');
    for (const l of restored) assert.equal(l.level, 30, `logged at info: ${l.msg}`);
  } finally {
    await again.close();
  }
});
