/**
 * Every caller of a cache write batch keeps its own deadline: the leader proposes the writes
 * of one turn as one entry, which waits as long as its most patient caller. A caller with a
 * short deadline is answered at it (HQL_OUTCOME_UNKNOWN, as a single write would be) while the
 * others get their results from that same entry once it commits — no retry, no second entry.
 * Three nodes in this process, the followers stopped so that the entry cannot commit until one
 * of them is back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type CacheOps, encodeCacheValue } from '../../src/client/cache-client.js';
import { HiqliteError, type HiqliteNode, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { freePorts } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';

const PATIENT = 20;

describe('cache batch deadlines', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-batch-deadline-'));
  const running = new Map<number, HiqliteNode>();
  after(async () => {
    await Promise.all([...running.values()].map((n) => n.close().catch(() => {})));
    rmSync(root, { recursive: true, force: true });
  });

  test('a caller with a short deadline gets it; the others get their results from the same entry', async () => {
    const ports = await freePorts(6);
    const nodes = [1, 2, 3].map((id) => ({
      id,
      addrRaft: `127.0.0.1:${ports[2 * id - 2]}`,
      addrApi: `127.0.0.1:${ports[2 * id - 1]}`,
    }));
    const config = (id: number): NodeConfig => ({
      nodeId: id,
      nodes,
      dataDir: join(root, `node-${id}`),
      ...TEST_SECRETS,
    });
    const started = await Promise.all(nodes.map((n) => start(config(n.id), { thread: 'main' })));
    for (const [i, n] of started.entries()) running.set(i + 1, n);
    await Promise.all(started.map((n) => n.waitUntilHealthy({ timeoutMs: 20_000 })));
    // The node that leads the cache group (a committed write first: it leads it then).
    await (running.get(1) as HiqliteNode).cache('d').put('warm-up', 0);
    let leaderId = 0;
    for (let attempt = 0; attempt < 100 && leaderId === 0; attempt++) {
      for (const [id, n] of running) if ((await n.metrics()).cache?.role === 'leader') leaderId = id;
      if (leaderId === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(leaderId > 0, 'a cache group leader');
    const leader = running.get(leaderId) as HiqliteNode;
    const followers = [...running.keys()].filter((id) => id !== leaderId);
    for (const id of followers) {
      await (running.get(id) as HiqliteNode).close();
      running.delete(id);
    }
    const lastBefore = (await leader.metrics()).cache?.lastLogIndex ?? 0;

    // One turn: a caller with 300 ms, the others with the node's proposal timeout (10 s). A
    // deadline of its own reaches a write through the client's call options (an API request's
    // deadline, a retry's remaining time).
    const cache = leader.cache('d');
    const ops = leader as unknown as CacheOps;
    const put = (key: string, value: number, timeoutMs?: number) =>
      ops.cacheWrite(
        { type: 'put', cache: 'd', key, value: encodeCacheValue(value) },
        timeoutMs === undefined ? {} : { timeoutMs },
      );
    const hasty = put('hasty', 1, 300).then(
      () => 'stored',
      (e: unknown) => e,
    );
    const patient = Array.from({ length: PATIENT }, (_, i) => put(`p${i}`, i));

    const early = await hasty;
    assert.ok(
      early instanceof HiqliteError,
      `the hasty caller is answered at its deadline (${String(early)})`,
    );
    assert.equal(early.code, 'HQL_OUTCOME_UNKNOWN');
    // Past the short deadline, the patient callers' entry waits on (nothing re-proposed).
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(
      (await leader.metrics()).cache?.lastLogIndex,
      lastBefore + 1,
      'the batch is one entry and nobody retried it',
    );

    // A follower comes back: the entry commits and every patient caller gets its result.
    const back = followers[0] as number;
    const restarted = await start(config(back), { thread: 'main' });
    running.set(back, restarted);
    await Promise.all(patient);
    for (let i = 0; i < PATIENT; i++) assert.equal(await cache.get(`p${i}`), i);
    assert.equal(await cache.get('hasty'), 1, 'the hasty write was in the entry too');
  });
});
