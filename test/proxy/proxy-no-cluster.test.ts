/**
 * A proxy whose cluster is down (no node answers): it runs, and says it cannot forward: `/health`
 * and `/ready` answer 503, `/ready` with a reason (found from outside: `/ready` said 200 while
 * every node was down, so a load balancer sent clients to a proxy that could serve nothing).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { freePorts } from '../support/free-ports.js';
import { ProxyProcess } from './proxy-harness.js';

describe('a proxy in front of a cluster that is down', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hq-proxy-down-'));
  let proxy: ProxyProcess | null = null;
  after(async () => {
    await proxy?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test('is not ready and not healthy, and says why', async () => {
    // Ports nothing listens on: every node of the "cluster" is down.
    const ports = await freePorts(3);
    proxy = await ProxyProcess.create({ dir, name: 'proxy', nodes: ports.map((p) => `127.0.0.1:${p}`) });
    await proxy.start();
    const ready = await fetch(`http://${proxy.address}/ready`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { ready: boolean; reason?: string };
    assert.equal(body.ready, false);
    assert.ok(typeof body.reason === 'string' && body.reason.length > 0, JSON.stringify(body));
    const health = await fetch(`http://${proxy.address}/health`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(health.status, 503);
  });
});
