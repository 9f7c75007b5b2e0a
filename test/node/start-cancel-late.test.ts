/**
 * A start cancelled during its very last steps (StartOptions.signal aborted after the last wait
 * that checks it: here when the node logs 'node started') is still cancelled: start() rejects
 * with HQL_ABORTED and the node is closed (data directory unlocked, ports free), never handed out
 * running. Before, start() resolved, and `hiqlite serve`, whose SIGTERM had cancelled it, had
 * consumed that signal and served on until the next one (found stopping a three-node cluster
 * whose nodes were still starting). Both thread modes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

/** A logger that aborts `ac` when the node says it started (the last step of a start). */
function abortingLogger(ac: AbortController) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (chunk.toString('utf8').includes('"msg":"node started"')) ac.abort();
      done();
    },
  });
  return pino({ level: 'info' }, sink);
}

for (const thread of ['main', 'worker'] as const) {
  describe(`a start cancelled at its last step (thread '${thread}')`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-start-cancel-'));
    after(() => rmSync(root, { recursive: true, force: true }));

    test('start() rejects HQL_ABORTED and the node is closed', async () => {
      const cfg = await oneNodeConfig(root);
      const ac = new AbortController();
      const outcome = await start(cfg, { thread, signal: ac.signal, logger: abortingLogger(ac) }).then(
        async (node) => {
          await node.close();
          return 'started';
        },
        (e: unknown) => (e instanceof HiqliteError ? e.code : String(e)),
      );
      assert.equal(ac.signal.aborted, true, 'the abort happened during start()');
      assert.equal(outcome, 'HQL_ABORTED');
      // Closed: the same data directory and ports start again at once.
      const again = await start(cfg, { thread });
      await again.execute('CREATE TABLE t (x)');
      await again.close();
    });
  });
}
