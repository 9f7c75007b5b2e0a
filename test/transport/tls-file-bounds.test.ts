/**
 * TLS files are read with a bound (PEM_FILE_BYTES_MAX): a certificate, key or CA path that names
 * an endless file (/dev/zero, /dev/urandom) or a huge one is HQL_INVALID_CONFIG naming the key,
 * where the whole file was read into memory before (a process filling gigabytes until it died).
 * A start() that fails there closes what it opened: the SQL state machine's thread outlived it
 * and kept an application on its own thread ('main') from exiting.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

/** Message ports alive in this process (one per worker thread it started). */
function threadPorts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
}

function refusedAsConfig(pattern: RegExp): (e: unknown) => true {
  return (e) => {
    assert.ok(e instanceof HiqliteError, String(e));
    assert.equal(e.code, 'HQL_INVALID_CONFIG', e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('TLS files named by a user are read with a bound', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-tls-bounds-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const lane of ['raft', 'api'] as const) {
    test(`tls.${lane}.certFile /dev/zero: HQL_INVALID_CONFIG, the node does not start`, async () => {
      const cfg = await oneNodeConfig(join(root, lane));
      const tls = { certFile: '/dev/zero', keyFile: '/dev/zero' };
      const before = threadPorts();
      await assert.rejects(
        start({ ...cfg, tls: { [lane]: tls } } as never, { thread: 'main' }),
        refusedAsConfig(/certFile .*larger than 1048576 bytes/),
      );
      // The failed start() closed what it opened: the state machine's thread (which kept the
      // process alive) is gone.
      assert.equal(threadPorts(), before);
    });
  }

  test('connect({ tls: { caFile: "/dev/zero" } }): HQL_INVALID_CONFIG naming tls.caFile', async () => {
    await assert.rejects(
      connect({ nodes: ['127.0.0.1:1'], secretApi: 'x'.repeat(32), tls: { caFile: '/dev/zero' } }),
      refusedAsConfig(/tls\.caFile: cannot be read: it is larger than 1048576 bytes/),
    );
  });
});
