/**
 * Writes in flight when their client closes: each one the node applied is reported as done or as
 * HQL_OUTCOME_UNKNOWN, never as a refusal (HQL_CLOSED says the call was not processed). Found from
 * outside: 2,000 writes of a remote client in flight at close() all said HQL_CLOSED, and 1,024 of
 * them were in the table. An embedded node closed under its application's writes finishes them;
 * so does a remote client's close() now (each within its deadline): all of them are done (found
 * from outside: writes sent before close() were applied and reported HQL_OUTCOME_UNKNOWN).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, HiqliteError, type HiqliteNode, type NodeEntry, start } from '../../src/index.js';
import { freePorts } from '../support/free-ports.js';

const SECRET_API = 'api-secret-for-tests-0123456789';
const WRITES = 2000;

type Outcome = 'ok' | string;

/** Starts WRITES inserts of ids from `base`; closes `close` after the first is acknowledged. */
async function writesAcrossClose(
  execute: (sql: string, params: number[]) => Promise<unknown>,
  close: () => Promise<void>,
  base: number,
): Promise<Outcome[]> {
  let firstAck: () => void = () => {};
  const acked = new Promise<void>((r) => (firstAck = r));
  const outcomes = Array.from({ length: WRITES }, (_, i) =>
    execute('INSERT INTO t (id) VALUES (?)', [base + i]).then(
      () => {
        firstAck();
        return 'ok';
      },
      (e: unknown) => {
        firstAck();
        assert.ok(e instanceof HiqliteError, String(e));
        return e.code;
      },
    ),
  );
  await acked;
  await close();
  return Promise.all(outcomes);
}

function check(outcomes: Outcome[], applied: Set<number>, base: number, allDone: boolean): void {
  const counts = new Map<string, number>();
  for (const [i, o] of outcomes.entries()) {
    counts.set(o, (counts.get(o) ?? 0) + 1);
    if (o === 'ok') assert.ok(applied.has(base + i), `write ${i} was acknowledged and is not in the table`);
    else if (applied.has(base + i))
      assert.equal(o, 'HQL_OUTCOME_UNKNOWN', `write ${i} is in the table and was reported as ${o}`);
  }
  if (allDone)
    assert.equal(counts.get('ok'), WRITES, `not all writes were done: ${JSON.stringify([...counts])}`);
}

describe('writes in flight at close()', () => {
  let root: string;
  let node: HiqliteNode | null = null;
  let cfg: Parameters<typeof start>[0];
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hq-close-inflight-'));
    const [raft, api] = await freePorts(2);
    cfg = {
      nodeId: 1,
      nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
      dataDir: join(root, 'data'),
      secretRaft: 'raft-secret-for-tests-0123456789',
      secretApi: SECRET_API,
    };
    node = await start(cfg);
    await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const ids = async (db: HiqliteNode): Promise<Set<number>> =>
    new Set((await db.queryConsistent<{ id: number }>('SELECT id FROM t')).map((r) => r.id));

  test('of a remote client: close() lets every one end, done', async () => {
    assert.ok(node !== null);
    const remote = await connect({ nodes: [(cfg.nodes[0] as NodeEntry).addrApi], secretApi: SECRET_API });
    const outcomes = await writesAcrossClose(
      (sql, params) => remote.execute(sql, params),
      () => remote.close(),
      0,
    );
    check(outcomes, await ids(node), 0, true);
  });

  // close() lets the writes made before it finish (they are ahead of its shutdown on the node's
  // thread): all are done. Should one still be in flight when the thread ends, it is of unknown
  // outcome, never HQL_CLOSED (worker-node.ts onExit).
  test('of an embedded node closed under its application: each applied one is done or of unknown outcome', async () => {
    assert.ok(node !== null);
    const closing = node;
    const outcomes = await writesAcrossClose(
      (sql, params) => closing.execute(sql, params),
      () => closing.close(),
      1_000_000,
    );
    node = await start(cfg);
    check(outcomes, await ids(node), 1_000_000, false);
  });

  // Found in the test suite: a remote client closed while its only node was down waited for its
  // writes' retries to reach their deadline (20 s; here it would be 10 minutes).
  test('of a remote client whose node stopped: close() starts no new attempt, and each write is done, unknown or refused', async () => {
    assert.ok(node !== null);
    const remote = await connect({
      nodes: [(cfg.nodes[0] as NodeEntry).addrApi],
      secretApi: SECRET_API,
      requestTimeoutMs: 600_000,
    });
    const stopping = node;
    const outcomes = await writesAcrossClose(
      (sql, params) => remote.execute(sql, params),
      async () => {
        await stopping.close();
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 60_000)));
        assert.notEqual(await Promise.race([remote.close().then(() => 'closed'), late]), 'late');
        clearTimeout(timer);
      },
      2_000_000,
    );
    node = await start(cfg);
    check(outcomes, await ids(node), 2_000_000, false);
  });
});

// Found from outside: a client whose node went down and whose next address was a host that never
// answers (powered off, a firewall that drops packets) took connectTimeoutMs (15 s here) to
// close, waiting for that connection attempt, though every call had ended.
describe('close() during a connection attempt to a host that never answers', () => {
  test('stops the attempt: close() returns at once, the read under way ends HQL_CLOSED', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-close-connecting-'));
    const silent = createServer((socket) => {
      socket.on('error', () => {});
      held.push(socket);
    });
    const held: Socket[] = [];
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as AddressInfo).port;
    const [raft, api] = await freePorts(2);
    const cfg = {
      nodeId: 1,
      nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
      dataDir: join(root, 'data'),
      secretRaft: 'raft-secret-for-tests-0123456789',
      secretApi: SECRET_API,
    };
    let node: HiqliteNode | null = await start(cfg);
    const client = await connect({
      nodes: [`127.0.0.1:${api}`, `127.0.0.1:${silentPort}`],
      secretApi: SECRET_API,
      connectTimeoutMs: 600_000,
      requestTimeoutMs: 600_000,
    });
    try {
      await node.close();
      node = null;
      const read = client.query('SELECT 1 AS one').catch((e: unknown) => e);
      // The read tries the node (refused), then waits on the silent host's connection.
      await new Promise((r) => setTimeout(r, 500));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 60_000)));
      assert.notEqual(await Promise.race([client.close().then(() => 'closed'), late]), 'late');
      clearTimeout(timer);
      const e = await read;
      assert.ok(e instanceof HiqliteError && e.code === 'HQL_CLOSED', String(e));
    } finally {
      await client.close();
      await node?.close();
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
      rmSync(root, { recursive: true, force: true });
    }
  });
});
