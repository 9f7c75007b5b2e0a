/**
 * What a leader checks before the membership changes for a node that asks to join
 * (HiqliteNode.checkJoiner), in a cluster of processes. Both found from outside:
 * - a second process with another node's `node_id` (its own address, an empty data_dir) made the
 *   leader remove the real node and add it back as a learner, for good (one voter less), while
 *   the second process only waited for a leader;
 * - a node listed by the leader but not by the other voters joined while that node led and
 *   stayed a learner no other leader could reach or remove.
 * Now the joining process stops with HQL_INVALID_CONFIG saying why, and nothing changes.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { TestCluster } from './harness.js';

const clusters: TestCluster[] = [];
after(async () => {
  for (const c of clusters) await c.close();
});

type Members = { readonly voters: readonly number[]; readonly learners: readonly number[] };

/** Both groups' membership as the node `db` is connected to sees it (metrics()). */
async function membershipOf(db: HiqliteClient): Promise<{ sql: Members; cache: Members }> {
  const m = await db.metrics();
  const sorted = (g: Members) => ({ voters: [...g.voters].sort(), learners: [...g.learners].sort() });
  return { sql: sorted(m), cache: sorted(m.cache as Members) };
}

const THREE_VOTERS = { voters: [1, 2, 3], learners: [] };

/** Starts slot `slot`, which must stop before it becomes a member; its output. */
async function refusedStart(c: TestCluster, slot: number): Promise<string> {
  await assert.rejects(c.startAndWatch(slot, 45_000), /exited before READY/);
  return c.node(slot).output;
}

test('a second process with the node_id of a running member is refused; the member stays a voter', async () => {
  // Slot 4 is a process with node_id 2 at an address of its own, with an empty data_dir.
  const c = await TestCluster.create({
    nodes: 4,
    startNodes: [1, 2, 3],
    nodeIdOf: (slot) => (slot === 4 ? 2 : slot),
    listed: (slot) => (slot === 4 ? [1, 4, 3] : [1, 2, 3]),
  });
  clusters.push(c);
  const db = await c.client([1]);
  await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  assert.deepEqual(await membershipOf(db), { sql: THREE_VOTERS, cache: THREE_VOTERS });
  const output = await refusedStart(c, 4);
  assert.match(output, /HQL_INVALID_CONFIG/);
  assert.match(output, /two processes have node_id 2/);
  assert.deepEqual(await membershipOf(db), { sql: THREE_VOTERS, cache: THREE_VOTERS });
  await db.execute('INSERT INTO t (id) VALUES (1)');
  assert.deepEqual(
    await (await c.client([2])).query('SELECT id FROM t', [], { consistency: 'linearizable' }),
    [{ id: 1 }],
  );
});

test("a node that the other voters' nodes lists lack is refused; the membership does not change", async () => {
  // Nodes 1 to 3 found the cluster with lists of three; then node 1 restarts with node 4 in its
  // list, as node 4 has it, and leads again (a leader that stops hands over to another node:
  // restarted until node 1 leads).
  const c = await TestCluster.create({
    nodes: 4,
    startNodes: [1, 2, 3],
    listed: (slot) => (slot === 4 ? [1, 2, 3, 4] : [1, 2, 3]),
  });
  clusters.push(c);
  const four = c.node(4);
  const one = c.node(1).configFile;
  writeFileSync(
    one,
    readFileSync(one, 'utf8').replace(
      /^nodes = \[(.*)\]$/m,
      `nodes = [$1, "4 127.0.0.1:${four.raftPort} 127.0.0.1:${four.apiPort}"]`,
    ),
  );
  await c.stop(1);
  await c.start(1);
  // Of both groups: node 4 asks each group's leader to take it in, and a leader whose list lacks
  // node 4 refuses its connection before any check (HQL_UNAUTHORIZED; CI failed so once, the
  // cache group led by node 2).
  const leadersOf = async () => {
    const m = await (await c.client([1, 2, 3])).metrics();
    return [m.leaderId, m.cache.leaderId];
  };
  for (let i = 0; i < 12; i++) {
    const other = (await leadersOf()).find((l) => l !== 1);
    if (other === undefined) break;
    // An election under way: ask again.
    if (other === null) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    await c.stop(other);
    await c.start(other);
  }
  const db = await c.client([1]);
  const m = await db.metrics();
  assert.deepEqual(
    [m.leaderId, m.cache.leaderId],
    [1, 1],
    'node 1 leads both groups (the check runs on a leader whose list has node 4)',
  );
  const output = await refusedStart(c, 4);
  assert.match(output, /HQL_INVALID_CONFIG/);
  assert.match(output, /node 4 is not in the nodes list of node 2, node 3: add it to every node/);
  assert.deepEqual(await membershipOf(db), { sql: THREE_VOTERS, cache: THREE_VOTERS });
});
