/**
 * A leader that shuts down hands leadership to the most up-to-date voter it is connected to, and
 * to none when it is connected to no voter (the cluster is being stopped as a whole): it does not
 * wait for a handover that cannot happen. Three nodes in this process (thread 'main'), each with
 * its own logger.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { type HiqliteNode, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { loopbackMembers } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';
import { within } from '../support/within.js';

const root = mkdtempSync(join(tmpdir(), 'hq-handover-'));
const opened: HiqliteNode[] = [];
after(async () => {
  for (const n of opened) await n.close().catch(() => {});
  rmSync(root, { recursive: true, force: true });
});

type LogRecord = { msg?: string; group?: string; to?: number };

async function startCluster(
  name: string,
): Promise<{ nodes: Map<number, HiqliteNode>; logs: Map<number, LogRecord[]> }> {
  const members = await loopbackMembers(3);
  const logs = new Map<number, LogRecord[]>();
  const starting = members.map((m) => {
    const records: LogRecord[] = [];
    logs.set(m.id, records);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n'))
          if (line !== '') records.push(JSON.parse(line) as LogRecord);
        done();
      },
    });
    const cfg: NodeConfig = {
      nodeId: m.id,
      nodes: members,
      dataDir: join(root, name, `node-${m.id}`),
      ...TEST_SECRETS,
    };
    return start(cfg, { thread: 'main', logger: pino({ level: 'info' }, sink) });
  });
  const started = await Promise.all(starting);
  opened.push(...started);
  return { nodes: new Map(started.map((n) => [n.nodeId, n])), logs };
}

/** The node that leads the SQL group, once one does (at most 20 s). */
async function sqlLeader(nodes: Map<number, HiqliteNode>): Promise<number> {
  const find = async () => {
    for (let i = 0; i < 400; i++) {
      for (const [id, n] of nodes) if (n.isLeader()) return id;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no leader');
  };
  return within(find(), 20_000, 'a leader');
}

const handovers = (logs: LogRecord[], group: string) =>
  logs.filter((r) => r.msg === 'shutdown: handing leadership over' && r.group === group);
const noneConnected = (logs: LogRecord[], group: string) =>
  logs.filter((r) => r.msg === 'shutdown: no connected voter to hand leadership to' && r.group === group);

test('the leader hands over to a connected voter, which then leads', async () => {
  const { nodes, logs } = await startCluster('a');
  const leader = await sqlLeader(nodes);
  await nodes.get(leader)?.close();
  nodes.delete(leader);
  const [handover] = handovers(logs.get(leader) ?? [], 'sql');
  assert.ok(handover !== undefined, 'the leader handed over');
  assert.ok(handover.to !== undefined && nodes.has(handover.to));
  assert.equal(await sqlLeader(nodes), handover.to);
});

test('a leader connected to no voter any more hands over to none', async () => {
  const { nodes, logs } = await startCluster('b');
  const leader = await sqlLeader(nodes);
  for (const [id, n] of nodes) if (id !== leader) await n.close();
  assert.ok(nodes.get(leader)?.isLeader(), 'still the leader when it closes');
  await nodes.get(leader)?.close();
  const mine = logs.get(leader) ?? [];
  assert.deepEqual(handovers(mine, 'sql'), []);
  assert.equal(noneConnected(mine, 'sql').length, 1);
});
