/**
 * An application that blocks its event loop must not depose its own leader (issue 11, part 2).
 * Node 1 of a three-node cluster is an application process that embeds its node with `start()`
 * (stall-app.ts); nodes 2 and 3 are `hiqlite serve`. While node 1 leads, a client of node 2
 * writes continuously and the application blocks its event loop — a 5 s busy loop, then a 3 s
 * synchronous local query — five and three times the election timeout (1 s here): the leader and
 * term stay the same, writes keep committing through the stalls, and none fails.
 *
 * With the node on the application's thread (`HQL_STALL_THREAD=main`) this test fails: the
 * followers elect another leader during the busy loop.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { eventually, TestCluster } from './harness.js';
import { StallApp } from './stall-app-process.js';

const THREAD = process.env.HQL_STALL_THREAD === 'main' ? 'main' : 'worker';
/** The writer's limit: it runs through both stalls and stops, whatever happens. */
const WRITER_MS_MAX = 40_000;

let cluster: TestCluster;
let app: StallApp;

before(async () => {
  cluster = await TestCluster.create({ nodes: 3, startNodes: [] });
  // Node 1 (the application) bootstraps the cluster once every other node answers; it leads first.
  const starting = StallApp.start(cluster.node(1).configFile, THREAD, {
    HQL_LOG_LEVEL: process.env.HQL_TEST_CLUSTER_LOG_LEVEL ?? 'warn',
  });
  await Promise.all([starting.then((a) => (app = a)), cluster.start(2), cluster.start(3)]);
});

after(async () => {
  if (process.env.HQL_TEST_CLUSTER_OUTPUT !== undefined) process.stderr.write(app?.output ?? '');
  await app?.kill();
  await cluster?.close();
});

interface Writer {
  ok: number;
  failed: string[];
  /** Writes that completed while the application's event loop was blocked. */
  okDuringStall: number;
  stalled: boolean;
  stop: boolean;
  done: Promise<void>;
}

function writeContinuously(client: HiqliteClient): Writer {
  const w: Writer = {
    ok: 0,
    failed: [],
    okDuringStall: 0,
    stalled: false,
    stop: false,
    done: Promise.resolve(),
  };
  const started = Date.now();
  w.done = (async () => {
    for (let i = 0; !w.stop && Date.now() - started < WRITER_MS_MAX; i++) {
      try {
        await client.execute('INSERT INTO w (i) VALUES (?)', [i]);
        w.ok++;
        if (w.stalled) w.okDuringStall++;
      } catch (e) {
        w.failed.push(String(e));
      }
    }
  })();
  return w;
}

test(`an embedded leader (thread: ${THREAD}) whose application blocks its event loop stays leader; writes from another node go on`, async () => {
  const client = await cluster.client([2], { requestTimeoutMs: 20_000 });
  await client.execute('CREATE TABLE w (i INTEGER)');
  // Node 1 leads, as the other nodes see it.
  const before = await eventually('node 1 leading on node 2', async () => {
    const m = await cluster.metricsOf(2);
    return m.leaderId === 1 && m.voters.length === 3 ? m : null;
  });
  assert.match(await app.send('status', 'STATUS'), /"isLeader":true/);

  const writer = writeContinuously(client);
  try {
    await eventually('writes going', async () => writer.ok > 10, 10_000);
    writer.stalled = true;
    const busy = await app.send('busy 5000', 'DONE busy');
    const query = await app.send('query 3000', 'DONE query');
    writer.stalled = false;
    // The application's thread was really blocked that long (the precondition of this test).
    assert.ok(Number(busy.split(' ')[2]) >= 5000, busy);
    assert.ok(Number(query.split(' ')[2]) >= 3000, `the local query blocked for long enough: ${query}`);
    const okBefore = writer.ok;
    await eventually('writes after the stalls', async () => writer.ok > okBefore + 10, 10_000);
  } finally {
    writer.stop = true;
    await writer.done;
  }

  const afterOn2 = await cluster.metricsOf(2);
  const afterOn3 = await cluster.metricsOf(3);
  assert.deepEqual(
    { term: afterOn2.term, leaderId: afterOn2.leaderId },
    { term: before.term, leaderId: 1 },
    'no election on node 2',
  );
  assert.deepEqual({ term: afterOn3.term, leaderId: afterOn3.leaderId }, { term: before.term, leaderId: 1 });
  assert.deepEqual(writer.failed, [], 'no write failed');
  assert.ok(writer.okDuringStall > 0, 'writes committed while the application was blocked');
  assert.match(await app.send('status', 'STATUS'), /"isLeader":true/);
});
