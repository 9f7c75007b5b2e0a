/**
 * Snapshots carry the SHA-256 of their data (src/node/snapshot-store.ts): one whose bytes were
 * changed on the disk is never restored, and a stream whose bytes do not match the sender's
 * checksum is never stored. Found by an operator probe: one byte changed inside a stopped
 * node's `.snap` (the text of a row; SQLite's structural checks see nothing) was restored at
 * start, and the node served that row changed, its replicas silently apart.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { type HiqliteNode, start } from '../../src/index.js';
import { MemorySnapshotStore } from '../../src/node/memory-snapshot-store.js';
import type { GroupSnapshotStore } from '../../src/node/seams.js';
import { receiveSnapshot, SnapshotStore } from '../../src/node/snapshot-store.js';
import type { LogIndex, NodeId, SnapshotMeta, Term } from '../../src/raft/types.js';
import { freePorts } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';
import { GroupCluster, type HarnessNode, KvStateMachine } from './group-harness.js';

const MARKER = 'marker-row-0000000001';
const DAMAGED = 'marker-row-0000000002';

/** Polls `fn` until it returns something other than null/undefined/false; bounded by `ms`. */
async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The newest `.snap` in `dir` that holds `needle`, or null. */
async function snapHolding(dir: string, needle: string): Promise<string | null> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.snap'));
  names.sort((a, b) => Number(b.split('-')[0]) - Number(a.split('-')[0]));
  for (const name of names) {
    const bytes = await readFile(join(dir, name));
    if (bytes.includes(needle)) return join(dir, name);
  }
  return null;
}

const rowsOf = (n: HiqliteNode) =>
  n.query<{ id: number; v: string }>('SELECT id, v FROM t ORDER BY id', [], { consistency: 'local' });

describe('a snapshot damaged on the disk of a stopped node', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-snap-checksum-'));
  const nodes = new Map<number, HiqliteNode>();
  after(async () => {
    for (const n of nodes.values()) await n.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('is not restored at start: the node recovers without it and its rows equal the others', async () => {
    const ports = await freePorts(6);
    const members = [1, 2, 3].map((id) => ({
      id,
      addrRaft: `127.0.0.1:${ports[2 * id - 2]}`,
      addrApi: `127.0.0.1:${ports[2 * id - 1]}`,
    }));
    const cfgOf = (id: number) => ({
      nodeId: id,
      nodes: members,
      dataDir: join(root, `n${id}`),
      // A snapshot every KiB of commands, and a short log behind it.
      logsUntilSnapshot: 5,
      logBytesUntilSnapshot: 1024,
      ...TEST_SECRETS,
    });
    const logger = pino({ level: 'silent' });
    const started = await Promise.all([1, 2, 3].map((id) => start(cfgOf(id), { thread: 'main', logger })));
    for (const [i, n] of started.entries()) nodes.set(i + 1, n);
    await Promise.all(started.map((n) => n.waitUntilHealthy({ timeoutMs: 30_000 })));
    const leader = started.find((n) => n.isLeader()) ?? (started[0] as HiqliteNode);
    await leader.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    await leader.execute('INSERT INTO t (id, v) VALUES (0, $1)', [MARKER]);
    const victimId = [1, 2, 3].find((id) => nodes.get(id) !== leader) as number;
    const snapDir = join(root, `n${victimId}`, 'state_machine', 'snapshots');
    // Bounded: at most 200 writes, a snapshot every few of them.
    let written = 1;
    for (; written < 200 && (await snapHolding(snapDir, MARKER)) === null; written++)
      await leader.execute('INSERT INTO t (id, v) VALUES ($1, $2)', [written, 'x'.repeat(300)]);
    assert.ok((await snapHolding(snapDir, MARKER)) !== null, 'the victim took a snapshot with the marker');
    for (let i = 0; i < 10; i++, written++)
      await leader.execute('INSERT INTO t (id, v) VALUES ($1, $2)', [written, 'y'.repeat(300)]);
    await until(
      'the victim applied every write',
      async () => (await rowsOf(nodes.get(victimId)!)).length === written,
    );

    await nodes.get(victimId)!.close();
    nodes.delete(victimId);
    // One byte of the row's text, in the newest snapshot that holds it; and the database gone, so
    // that recovery restores the snapshot (the state machine is behind it).
    const snap = (await snapHolding(snapDir, MARKER)) as string;
    const bytes = await readFile(snap);
    const at = bytes.indexOf(MARKER) + MARKER.length - 1;
    bytes[at] = DAMAGED.charCodeAt(DAMAGED.length - 1);
    await writeFile(snap, bytes);
    await rm(join(root, `n${victimId}`, 'state_machine', 'db'), { recursive: true, force: true });

    const again = await start(cfgOf(victimId), { thread: 'main', logger });
    nodes.set(victimId, again);
    await again.waitUntilHealthy({ timeoutMs: 30_000 });
    const expected = await rowsOf(leader);
    assert.equal(expected.length, written);
    const got = await until('the restarted node caught up', async () => {
      const rows = await rowsOf(again);
      return rows.length === written ? rows : null;
    });
    assert.deepEqual(got[0], { id: 0, v: MARKER }, 'the damaged row is not served');
    assert.deepEqual(got, expected);
  });
});

const meta = (index: number): SnapshotMeta => ({
  index: index as LogIndex,
  term: 1 as Term,
  membership: { voters: [1 as NodeId], learners: [] },
});

async function* chunksOf(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield new TextEncoder().encode(p);
}

describe('snapshot checksums in the stores', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-snap-sum-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('commit records the SHA-256 of the data in the metadata file, and check finds a changed byte', async () => {
    const dir = join(root, 'record');
    const store = await SnapshotStore.open(dir);
    const path = await receiveSnapshot(store, chunksOf('hello ', 'world'));
    const stored = await store.commit(path, meta(5));
    // sha256("hello world")
    const sum = 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9';
    assert.equal(stored.sha256, sum);
    const onDisk = JSON.parse(await readFile(join(dir, '5-1.meta.json'), 'utf8')) as { sha256: string };
    assert.equal(onDisk.sha256, sum);
    assert.deepEqual(await store.check(stored), { ok: true, snapshot: stored });
    // Opened again (a restart), the checksum is read back.
    const reopened = await SnapshotStore.open(dir);
    assert.equal(reopened.latest()?.sha256, sum);
    await writeFile(stored.path, 'hello World');
    const checked = await reopened.check(reopened.latest()!);
    assert.equal(checked.ok, false);
    assert.match(checked.ok ? '' : checked.reason, /does not match|metadata says/);
    await reopened.drop(reopened.latest()!);
    assert.equal(reopened.latest(), null);
    assert.deepEqual((await readdir(dir)).sort(), []);
  });

  test('a snapshot whose metadata has no checksum (written before them) still opens, and gets one at its first check', async () => {
    const dir = join(root, 'legacy');
    const first = await SnapshotStore.open(dir);
    await first.commit(await receiveSnapshot(first, chunksOf('old data')), meta(9));
    // The metadata as the previous format wrote it.
    await writeFile(
      join(dir, '9-1.meta.json'),
      JSON.stringify({ index: 9, term: 1, voters: [1], learners: [] }),
    );
    const store = await SnapshotStore.open(dir);
    const legacy = store.latest();
    assert.ok(legacy !== null);
    assert.deepEqual(legacy.meta, meta(9));
    assert.equal(legacy.sha256, null, 'unknown: not made up at open');
    const checked = await store.check(legacy);
    assert.ok(checked.ok);
    assert.equal(checked.snapshot.sha256, createHash('sha256').update('old data').digest('hex'));
    assert.equal(store.latest()?.sha256, checked.snapshot.sha256, 'kept from the first check on');
    // A later change of its bytes is found.
    await writeFile(legacy.path, 'old dat4');
    assert.equal((await store.check(store.latest()!)).ok, false);
  });

  test('metadata with a checksum that is not 64 hex digits is refused as malformed', async () => {
    const dir = join(root, 'malformed');
    const first = await SnapshotStore.open(dir);
    await first.commit(await receiveSnapshot(first, chunksOf('data')), meta(3));
    await writeFile(
      join(dir, '3-1.meta.json'),
      JSON.stringify({ index: 3, term: 1, voters: [1], learners: [], sha256: 'abc' }),
    );
    await assert.rejects(SnapshotStore.open(dir), { code: 'HQL_CORRUPTION' });
  });

  test('the memory store checksums its snapshots too, and check finds a chunk changed after commit', async () => {
    const store: GroupSnapshotStore = new MemorySnapshotStore();
    const chunk = new TextEncoder().encode('hello world');
    const path = store.tempPath();
    (store as MemorySnapshotStore).append(path, chunk);
    const stored = await store.commit(path, meta(4));
    assert.equal(stored.sha256, 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
    assert.deepEqual(await store.check(stored), { ok: true, snapshot: stored });
    chunk[0] = 0x48; // a writer that reused its buffer
    assert.equal((await store.check(stored)).ok, false);
    await store.drop(stored);
    assert.equal(store.latest(), null);
  });
});

describe('a leader whose snapshot was damaged on its disk', () => {
  test('never sends it: it drops it, makes it again from its state machine, and the follower gets the true state', async () => {
    const c = await GroupCluster.create(3, 20);
    try {
      const { leader, stopped } = await c.followerBehindSnapshot();
      const names = (await readdir(leader.snapDir)).filter((n) => n.endsWith('.snap'));
      const newest = names.sort((a, b) => Number(b.split('-')[0]) - Number(a.split('-')[0]))[0] as string;
      const path = join(leader.snapDir, newest);
      const text = await readFile(path, 'utf8');
      assert.ok(text.includes('["s5","5"]'), 'the snapshot holds s5=5');
      // Still valid JSON, still the same length: only the value differs.
      await writeFile(path, text.replace('["s5","5"]', '["s5","X"]'));
      const voters = [...c.nodes.keys(), stopped.id].sort() as NodeId[];
      const follower = await c.startNode(stopped.id, voters, 20, stopped.logState, new KvStateMachine());
      await c.waitFor(
        'the follower caught up through a snapshot',
        () => follower.sm.data.size === leader.sm.data.size && follower.group.status().snapshotIndex > 0,
        20_000,
      );
      assert.equal(follower.sm.data.get('s5'), '5', 'the damaged value never reached the follower');
      assert.deepEqual([...follower.sm.data].sort(), [...leader.sm.data].sort());
    } finally {
      await c.close();
    }
  });

  test('is read through once for sends that succeed, and again after a send fails (damage found then)', async () => {
    const c = await GroupCluster.create(7, 20);
    try {
      const leader = await c.waitFor('a leader', () => c.leader());
      const lagging = [...c.nodes.values()].filter((n) => n !== leader).slice(0, 3);
      const stopped: HarnessNode[] = [];
      for (const n of lagging) stopped.push(await c.stop(n.id));
      for (let i = 0; i < 60; i++)
        await leader.group.propose(new TextEncoder().encode(`s${i}=${i}`), { timeoutMs: 5000 });
      await c.waitFor('leader snapshot', () => leader.group.status().snapshotIndex >= 40);
      const voters = [...c.nodes.keys(), ...stopped.map((n) => n.id)].sort() as NodeId[];
      const store = leader.group['o'].snapshots;
      let checks = 0;
      const check = store.check.bind(store);
      store.check = (s) => {
        checks++;
        return check(s);
      };
      const restart = async (n: HarnessNode) => {
        const f = await c.startNode(n.id, voters, 20, n.logState, new KvStateMachine());
        await c.waitFor(
          `node ${n.id} caught up through a snapshot`,
          () => f.sm.data.size === leader.sm.data.size && f.group.status().snapshotIndex > 0,
          20_000,
        );
        return f;
      };
      await restart(stopped[0]!);
      await restart(stopped[1]!);
      assert.equal(checks, 1, 'two sends of one snapshot read it through once before them');
      // Damaged after its check: the next send skips the check and the receiver refuses the
      // bytes; the failure makes the next attempt check, drop it and make it again.
      const names = (await readdir(leader.snapDir)).filter((n) => n.endsWith('.snap'));
      const newest = names.sort((x, y) => Number(y.split('-')[0]) - Number(x.split('-')[0]))[0] as string;
      const path = join(leader.snapDir, newest);
      await writeFile(path, (await readFile(path, 'utf8')).replace('["s5","5"]', '["s5","X"]'));
      const third = await restart(stopped[2]!);
      assert.equal(third.sm.data.get('s5'), '5', 'the damaged value never reached the follower');
      assert.ok(checks >= 2, `${checks} checks`);
    } finally {
      await c.close();
    }
  });
});
