/**
 * Node 1's proof that no cluster exists (src/node/bootstrap-proof.ts) on its own, with fake
 * peers and clock: when it founds a cluster, when it joins one, when it waits and gives up.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { type BootstrapProof, type ClusterAnswer, proveNoCluster } from '../../src/node/bootstrap-proof.js';
import type { NodeId } from '../../src/raft/types.js';

type Peer = ClusterAnswer | 'down' | ((round: number) => ClusterAnswer | 'down');

const NONE: ClusterAnswer = { member: false, clusterId: null, sqlite: true };
const MEMBER: ClusterAnswer = { member: true, clusterId: 'c-1', sqlite: true };

/** Node 1 among `peers.length + 1` nodes; peer i + 2 answers `peers[i]` (per round if a function). */
function world(peers: Peer[], o: { sqlite?: boolean } = {}) {
  let now = 0;
  let round = 0;
  const asked: number[] = [];
  const p: BootstrapProof = {
    nodeId: 1 as NodeId,
    nodes: [1, ...peers.map((_, i) => i + 2)] as NodeId[],
    sqlite: o.sqlite ?? true,
    ask: async (peer) => {
      asked.push(peer);
      const a = peers[peer - 2];
      const v = typeof a === 'function' ? a(round) : a;
      if (v === undefined || v === 'down')
        throw new HiqliteError('HQL_UNAVAILABLE', 'down', { retryable: true });
      return v;
    },
    mismatch: (peer, theirs) =>
      new HiqliteError('HQL_CLUSTER_MISMATCH', `node ${peer} sqlite=${theirs}`, { retryable: false }),
    nowMs: () => now,
    sleep: async (ms) => {
      now += ms;
      round++;
    },
    retryMs: 500,
    checkCancelled: () => {},
    log: { info: () => {}, warn: () => {} },
  };
  return { p, asked, rounds: () => round };
}

describe('proveNoCluster', () => {
  test('every other node answering it knows no cluster: node 1 bootstraps', async () => {
    const w = world([NONE, NONE]);
    assert.equal(await proveNoCluster(w.p, 10_000), true);
    assert.equal(w.rounds(), 0);
  });

  test('one node that is a member, or knows a cluster id, means a cluster exists: node 1 joins', async () => {
    assert.equal(await proveNoCluster(world([NONE, MEMBER]).p, 10_000), false);
    const knowsId = { member: false, clusterId: 'c-1', sqlite: true };
    assert.equal(await proveNoCluster(world([NONE, NONE, NONE, knowsId]).p, 10_000), false);
  });

  test('nodes that do not answer are no proof, a majority answering none neither: node 1 waits, and fails past the deadline', async () => {
    // 5 nodes, voters {1, 2, 3} of a cluster; 1, 4 and 5 wiped (a majority of the configured
    // nodes answer none), 2 and 3 unreachable: they hold the cluster, node 1 must not found one.
    const wiped = world(['down', 'down', NONE, NONE]);
    await assert.rejects(proveNoCluster(wiped.p, 10_000), (e: unknown) => {
      assert.ok(e instanceof HiqliteError);
      assert.equal(e.code, 'HQL_UNAVAILABLE');
      assert.equal(e.retryable, true);
      assert.match(e.message, /nodes 2, 3 did not answer that they have none/);
      return true;
    });
    assert.ok(wiped.rounds() >= 20, 'it asked again until the deadline');
    // Once they answer, the cluster is found and node 1 joins it.
    const later = world([(r) => (r < 2 ? 'down' : MEMBER), 'down', NONE, NONE]);
    assert.equal(await proveNoCluster(later.p, 10_000), false);
    // A node that comes up later with nothing: the proof completes when it answers.
    const slow = world([NONE, (r) => (r < 4 ? 'down' : NONE)]);
    assert.equal(await proveNoCluster(slow.p, 10_000), true);
    assert.equal(slow.rounds(), 4);
  });

  test('an answer without an explicit "not a member" (a node opening its storage) is no proof', async () => {
    const opening = { member: null, clusterId: null, sqlite: true };
    await assert.rejects(proveNoCluster(world([opening, opening]).p, 2_000), { code: 'HQL_UNAVAILABLE' });
  });

  test('it keeps asking: the cluster appears in a later round (node 1 joins it)', async () => {
    const w = world([(r) => (r < 3 ? 'down' : MEMBER), 'down']);
    assert.equal(await proveNoCluster(w.p, 60_000), false);
    assert.equal(w.rounds(), 3);
  });

  test('a node of the other sqlite setting: not counted; with a cluster, HQL_CLUSTER_MISMATCH', async () => {
    const cacheOnlyNone = { member: false, clusterId: null, sqlite: false };
    const w = world([cacheOnlyNone, NONE]);
    const warnings: string[] = [];
    const p: BootstrapProof = { ...w.p, log: { info: () => {}, warn: (_o, msg) => warnings.push(msg) } };
    await assert.rejects(proveNoCluster(p, 2_000), { code: 'HQL_UNAVAILABLE' });
    assert.ok(w.rounds() >= 3, 'it asked again');
    assert.equal(warnings.length, 1, 'the other setting is reported once, not every round');
    assert.match(warnings[0] ?? '', /node 2 has the other sqlite setting/);
    const cacheOnlyCluster = { member: true, clusterId: 'c-2', sqlite: false };
    await assert.rejects(proveNoCluster(world([cacheOnlyCluster, NONE]).p, 2_000), {
      code: 'HQL_CLUSTER_MISMATCH',
    });
    // An answer without the flag comes from a SQL node (before cache-only nodes existed).
    assert.equal(await proveNoCluster(world([{ member: false, clusterId: null }, NONE]).p, 2_000), true);
  });

  test('a cancelled start ends the proof', async () => {
    const w = world(['down', 'down']);
    let asks = 0;
    const p: BootstrapProof = {
      ...w.p,
      checkCancelled: () => {
        if (++asks > 3) throw new HiqliteError('HQL_CLOSED', 'closed', { retryable: false });
      },
    };
    await assert.rejects(proveNoCluster(p, 60_000), { code: 'HQL_CLOSED' });
  });
});
