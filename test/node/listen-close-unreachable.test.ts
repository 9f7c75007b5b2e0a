/**
 * A remote listener closed while its open cannot reach any node (the node went away and a
 * silent peer holds its port: the connect waits for its timeout) settles at once: nothing was
 * sent, so no node can hold it, and the open stops trying. It waited for the connect timeout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

/** Far longer than the bound the test puts on return(). */
const CONNECT_TIMEOUT_MS = 30_000;
const RETURN_BOUND_MS = 5_000;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

test('return() on a remote listener, or an abort of a call, waiting for an unreachable node settles at once', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-listen-unreachable-'));
  const cfg = await oneNodeConfig(root);
  const addr = cfg.nodes[0]!.addrApi;
  const node = await start(cfg, { thread: 'main' });
  const client = await connect({
    nodes: [addr],
    secretApi: TEST_SECRETS.secretApi,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    requestTimeoutMs: CONNECT_TIMEOUT_MS,
    listenResumeTimeoutMs: CONNECT_TIMEOUT_MS * 2,
  });
  let silent: Server | null = null;
  const sockets: Socket[] = [];
  try {
    await node.close();
    // A peer that accepts and never speaks, on the node's port: the client's handshake waits.
    silent = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
    });
    const [host, port] = [
      addr.slice(0, addr.lastIndexOf(':')),
      Number(addr.slice(addr.lastIndexOf(':') + 1)),
    ];
    await new Promise<void>((resolve, reject) => {
      silent!.once('error', reject);
      silent!.listen(port, host, () => resolve());
    });
    const listener = client.listen('ch')[Symbol.asyncIterator]();
    const next = listener.next();
    next.catch(() => {});
    // Let the open reach its connect to the silent peer.
    for (let i = 0; i < 100 && sockets.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(sockets.length > 0, 'the open is connecting to the silent peer');
    await within(Promise.resolve(listener.return?.()), RETURN_BOUND_MS, 'return()');
    assert.deepEqual(await within(next, RETURN_BOUND_MS, 'the pending next()'), {
      done: true,
      value: undefined,
    });

    // The same for a call: a read's AbortSignal ends its wait for a connection (the same class).
    const seen = sockets.length;
    const abort = new AbortController();
    const read = client.query('SELECT 1', [], { signal: abort.signal });
    read.catch(() => {});
    for (let i = 0; i < 100 && sockets.length === seen; i++) await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await assert.rejects(
      within(read, RETURN_BOUND_MS, 'the aborted read'),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'HQL_ABORTED', e.message);
        return true;
      },
    );
  } finally {
    for (const s of sockets) s.destroy();
    await within(client.close(), CONNECT_TIMEOUT_MS, 'client.close()').catch(() => {});
    await new Promise<void>((r) => (silent === null ? r() : silent.close(() => r())));
    rmSync(root, { recursive: true, force: true });
  }
});
