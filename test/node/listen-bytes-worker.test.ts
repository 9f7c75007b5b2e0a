/**
 * An embedded application whose node runs on its own thread (the default) and that does not read
 * a listener: what crosses to the application's thread is bounded in bytes as a listener's buffer
 * is (`cache_listener_buffer_bytes_max`), not only in count. Before, the window between the
 * threads counted notifications only: up to `cache_listener_buffer_max` (10,000) of them, of up to
 * 8 MiB each, could wait on the application's thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

describe('a listener of an application whose node runs on its own thread', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-listen-bytes-'));
  let node: HiqliteNode;

  before(async () => {
    // 100 KB payloads count 100,077 bytes each: three fit in 350,000, the fourth does not.
    node = await start({ ...(await oneNodeConfig(root)), cacheListenerBufferBytesMax: 350_000 });
    await node.waitUntilHealthy({ timeoutMs: 20_000 });
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('holds at most the byte bound across the threads and in the node, then lags', async () => {
    const it = node.listen('big')[Symbol.asyncIterator]();
    const first = it.next();
    await node.notify('big', 'x');
    assert.equal((await first).value?.payload, 'x');
    const payload = 'p'.repeat(100_000);
    // Three fit the bound, across the threads and the node's buffer together; the fourth lags,
    // and the unread ones are dropped with it (listen-buffer-bound.test.ts counts them).
    for (let i = 0; i < 8; i++) await node.notify('big', payload);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error('no HQL_LAGGED within 10 s')), 10_000);
    });
    let delivered = 0;
    const reading = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done === true) return;
        delivered++;
      }
    })();
    await assert.rejects(
      Promise.race([reading, deadline]).finally(() => clearTimeout(timer)),
      (e: { code?: string; missed?: number }) => {
        assert.equal(e.code, 'HQL_LAGGED', String(e));
        return true;
      },
    );
    assert.ok(delivered <= 3, `at most the bound was held (${delivered} delivered)`);
  });
});
