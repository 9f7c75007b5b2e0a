/**
 * The simulator's parts, each alone: the event agenda, the network, the disk model, the state
 * machine and the safety checkers (a checker that cannot fail proves nothing).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Prng } from '../../src/lib/prng.js';
import { RaftCore } from '../../src/raft/raft.js';
import type { Entry, Membership, NodeId, RaftBootState } from '../../src/raft/types.js';
import { logIndex, nodeId, term } from '../../src/raft/types.js';
import { SafetyChecker } from './checkers.js';
import { SimDisk, SimLogStore, SimSnapshotStore } from './disk.js';
import { EventQueue } from './event-queue.js';
import { SimFailure } from './failure.js';
import { emptySnapshot, encodeCommand, KvStateMachine } from './kv.js';
import { CALM_NETWORK, type Envelope, Network } from './network.js';

const membership: Membership = { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [] };

function noop(index: number, t: number): Entry {
  return { kind: 'noop', index: logIndex(index), term: term(t) };
}

function write(index: number, t: number, key: string, value: number): Entry {
  return {
    kind: 'command',
    index: logIndex(index),
    term: term(t),
    data: encodeCommand({ opId: index, op: { type: 'write', key, value } }),
  };
}

function heartbeat(from: number, to: number): Envelope {
  return {
    msg: {
      type: 'heartbeat',
      from: nodeId(from),
      to: nodeId(to),
      term: term(1),
      commit: logIndex(0),
      commitTerm: term(0),
      lastIndex: logIndex(0),
      readContext: 0,
    },
    snapshot: null,
    senderIncarnation: 0,
  };
}

function coreWithLog(id: number, entries: Entry[], commit: number): RaftCore {
  const boot: RaftBootState = {
    hardState: { term: term(entries[entries.length - 1]?.term ?? 0), vote: null, commit: logIndex(commit) },
    snapshot: { index: logIndex(0), term: term(0), membership },
    entries,
    appliedIndex: logIndex(0),
  };
  return new RaftCore(
    {
      id: nodeId(id),
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 2,
      preVote: true,
      checkQuorum: true,
      inflightMessagesMax: 4,
      inflightBytesMax: 1 << 20,
      appendBytesMax: 1 << 16,
      uncommittedEntriesMax: 100,
      uncommittedBytesMax: 1 << 20,
      commandBytesMax: 1 << 20,
      pendingReadsMax: 8,
      random: new Prng(id),
    },
    boot,
  );
}

function checkerOf(fn: () => void): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof SimFailure) return e.checker;
    throw e;
  }
}

describe('event queue', () => {
  test('runs events in time order, and events due at the same time in scheduling order', () => {
    const q = new EventQueue(100);
    const ran: string[] = [];
    q.after(20, 'x', -1, () => ran.push('c'));
    q.after(10, 'x', -1, () => ran.push('a'));
    q.after(10, 'x', -1, () => ran.push('b'));
    for (let ev = q.pop(); ev !== null; ev = q.pop()) ev.run();
    assert.deepEqual(ran, ['a', 'b', 'c']);
    assert.equal(q.now, 20);
  });

  test('time passes without events, but never past a due one', () => {
    const q = new EventQueue(10);
    q.advanceTo(5_000);
    assert.equal(q.now, 5_000);
    q.after(10, 'x', -1, () => {});
    assert.throws(() => q.advanceTo(6_000), /past a due event/);
  });

  test('refuses to grow beyond its bound', () => {
    const q = new EventQueue(2);
    q.after(1, 'x', -1, () => {});
    q.after(1, 'x', -1, () => {});
    assert.throws(() => q.after(1, 'x', -1, () => {}), /event queue full/);
  });
});

describe('network', () => {
  function setup(faults = CALM_NETWORK) {
    const q = new EventQueue(1000);
    const delivered: Envelope[] = [];
    const lost: string[] = [];
    const net = new Network(q, new Prng(7), faults, {
      deliver: (env) => delivered.push(env),
      lost: (_env, why) => lost.push(why),
    });
    const drain = () => {
      for (let ev = q.pop(); ev !== null; ev = q.pop()) ev.run();
    };
    return { net, delivered, lost, drain };
  }

  test('delivers every message on a calm network', () => {
    const { net, delivered, drain } = setup();
    for (let i = 0; i < 50; i++) net.send(heartbeat(1, 2));
    drain();
    assert.equal(delivered.length, 50);
  });

  test('a cut link drops what is sent on it and what is in flight, in one direction only', () => {
    const { net, delivered, lost, drain } = setup();
    net.send(heartbeat(1, 2)); // in flight when the link is cut
    net.cutLink(1, 2);
    net.send(heartbeat(1, 2));
    net.send(heartbeat(2, 1));
    drain();
    assert.deepEqual(
      delivered.map((e) => `${e.msg.from}->${e.msg.to}`),
      ['2->1'],
    );
    assert.deepEqual(lost, ['cut', 'cut']);
    net.heal();
    net.send(heartbeat(1, 2));
    drain();
    assert.equal(delivered.length, 2);
  });

  test('API requests cross the same links: lost on a cut (sent or in flight), never duplicated', () => {
    const { net, drain } = setup({ ...CALM_NETWORK, dupRate: 1 });
    const arrived: string[] = [];
    net.sendApi(1, 2, () => arrived.push('in flight'));
    net.cutLink(1, 2);
    net.sendApi(1, 2, () => arrived.push('after the cut'));
    net.sendApi(2, 1, () => arrived.push('other way'));
    drain();
    assert.deepEqual(arrived, ['other way']);
    assert.equal(net.stats.apiLost, 2);
    net.heal();
    net.sendApi(1, 2, () => arrived.push('healed'));
    drain();
    assert.deepEqual(arrived, ['other way', 'healed']);
  });

  test('a partition cuts both directions between the groups', () => {
    const { net, delivered, drain } = setup();
    net.partition([1], [2, 3]);
    net.send(heartbeat(1, 2));
    net.send(heartbeat(3, 1));
    net.send(heartbeat(2, 3));
    drain();
    assert.deepEqual(
      delivered.map((e) => `${e.msg.from}->${e.msg.to}`),
      ['2->3'],
    );
  });

  test('duplicates and drops at the configured rates', () => {
    const { net, delivered, lost, drain } = setup({ ...CALM_NETWORK, dupRate: 1 });
    net.send(heartbeat(1, 2));
    drain();
    assert.equal(delivered.length, 2);
    const dropping = setup({ ...CALM_NETWORK, dropRate: 1 });
    dropping.net.send(heartbeat(1, 2));
    dropping.drain();
    assert.equal(dropping.delivered.length, 0);
    assert.deepEqual(dropping.lost, ['drop']);
    assert.equal(lost.length, 0);
  });
});

describe('disk', () => {
  const timing = { diskLatencyUsMin: 50, diskLatencyUsMax: 5_000, slowDiskRate: 0, slowDiskUsMax: 0 };
  const hs1 = { term: term(1), vote: nodeId(2) as NodeId | null, commit: logIndex(0) };

  function setup(seed = 1) {
    const queue = new EventQueue(1_000);
    const disk = new SimDisk(nodeId(1), emptySnapshot(membership), queue, new Prng(seed), timing);
    const life = { dead: false, whenRunning: (_kind: string, fn: () => void) => fn() };
    const runAll = () => {
      for (let ev = queue.pop(); ev !== null; ev = queue.pop()) ev.run();
    };
    return { queue, disk, life, runAll };
  }

  test('a write is visible at once and survives a crash once durable, in call order', async () => {
    const { disk, life, runAll } = setup();
    const store = new SimLogStore(disk, life);
    const done: string[] = [];
    const a = store.append([noop(1, 1), noop(2, 1)]).then(() => done.push('append'));
    const b = store.saveHardState(hs1).then(() => done.push('hard state'));
    assert.equal(store.lastIndex(), 2);
    assert.equal(disk.writing, true);
    runAll();
    await Promise.all([a, b]);
    assert.deepEqual(done, ['append', 'hard state']);
    assert.equal(disk.crash(1), null);
    const after = new SimLogStore(disk, life);
    assert.equal(after.lastIndex(), 2);
    assert.deepEqual(after.loadHardState(), hs1);
  });

  test('a crash loses what is not durable, or keeps a prefix of it: never the hard state without the entries before it', () => {
    let partial = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const { disk, life } = setup(seed);
      const store = new SimLogStore(disk, life);
      void store.append([noop(1, 1), noop(2, 1), noop(3, 1)]);
      void store.saveHardState(hs1);
      const lost = disk.crash(seed % 4 === 0 ? 0 : 1);
      assert.ok(lost !== null);
      const after = new SimLogStore(disk, life);
      const last = after.lastIndex();
      if (seed % 4 === 0) assert.equal(last, 0, 'a lost write leaves nothing');
      if (after.loadHardState() !== null) assert.equal(last, 3, 'hard state durable without its entries');
      if (last > 0 && last < 3) partial++;
    }
    assert.ok(partial > 0, 'no torn write kept a strict prefix');
  });

  test('a write made by a process after it died does nothing', () => {
    const { disk, runAll } = setup();
    const dead = { dead: true, whenRunning: () => {} };
    const store = new SimLogStore(disk, { dead: false, whenRunning: (_k: string, fn: () => void) => fn() });
    const zombie = new SimLogStore(disk, dead);
    void zombie.append([noop(1, 1)]);
    runAll();
    assert.equal(disk.writing, false);
    assert.equal(store.lastIndex(), 0);
    assert.equal(new SimLogStore(disk, dead).lastIndex(), 0);
  });

  test('snapshots: uncommitted files are gone after a crash; two committed snapshots are kept', async () => {
    const { disk, life, runAll } = setup();
    const snapshots = new SimSnapshotStore(disk, life);
    const kv = new KvStateMachine(emptySnapshot(membership));
    for (let i = 1; i <= 3; i++) {
      kv.apply(write(i, 1, 'x', i));
      const path = snapshots.tempPath();
      disk.files.set(path, kv.snapshot());
      const committed = snapshots.commit(path, kv.snapshot().meta);
      runAll();
      await committed;
    }
    assert.equal(snapshots.latest()?.meta.index, 3);
    assert.equal(disk.committed.length, 2);
    const stray = snapshots.tempPath();
    disk.files.set(stray, kv.snapshot());
    assert.equal(disk.files.size, 3);
    disk.crash(0);
    assert.equal(disk.files.size, 2);
    assert.deepEqual(
      disk.committed.map((s) => s.meta.index),
      [2, 3],
    );
  });
});

describe('kv state machine', () => {
  test('applies writes and compare-and-set, and restores from its snapshot', () => {
    const kv = new KvStateMachine(emptySnapshot(membership));
    kv.apply(write(1, 1, 'x', 5));
    const cas = (index: number, expected: number | null, value: number): Entry => ({
      kind: 'command',
      index: logIndex(index),
      term: term(1),
      data: encodeCommand({ opId: index, op: { type: 'cas', key: 'x', expected, value } }),
    });
    assert.deepEqual(kv.apply(cas(2, 4, 6))?.result, { type: 'cas', ok: false });
    assert.deepEqual(kv.apply(cas(3, 5, 7))?.result, { type: 'cas', ok: true });
    assert.equal(kv.read('x'), 7);
    assert.equal(kv.read('y'), null);
    const copy = new KvStateMachine(kv.snapshot());
    assert.equal(copy.read('x'), 7);
    assert.equal(copy.appliedIndex, 3);
    assert.equal(copy.digest(), kv.digest());
  });

  test('refuses to apply out of order', () => {
    const kv = new KvStateMachine(emptySnapshot(membership));
    assert.throws(() => kv.apply(noop(2, 1)), /out of order/);
  });
});

describe('safety checkers', () => {
  test('election safety: two leaders in one term', () => {
    const c = new SafetyChecker();
    const core = coreWithLog(1, [], 0);
    c.onLeader(nodeId(1), term(3), core);
    assert.equal(
      checkerOf(() => c.onLeader(nodeId(2), term(3), core)),
      'election-safety',
    );
  });

  test('state-machine safety: two nodes apply different entries at one index', () => {
    const c = new SafetyChecker();
    c.onApply(nodeId(1), write(1, 1, 'x', 1), term(1));
    c.onApply(nodeId(2), write(1, 1, 'x', 1), term(1));
    assert.equal(
      checkerOf(() => c.onApply(nodeId(3), write(1, 1, 'x', 2), term(1))),
      'state-machine-safety',
    );
  });

  test('leader completeness: a new leader lacks an entry applied elsewhere', () => {
    const c = new SafetyChecker();
    c.onApply(nodeId(1), noop(1, 1), term(1));
    c.onApply(nodeId(1), noop(2, 1), term(1));
    assert.equal(
      checkerOf(() => c.onLeader(nodeId(2), term(2), coreWithLog(2, [noop(1, 1)], 0))),
      'leader-completeness',
    );
    assert.equal(
      checkerOf(() =>
        c.onLeader(nodeId(3), term(3), coreWithLog(3, [noop(1, 1), noop(2, 1), noop(3, 2)], 0)),
      ),
      null,
    );
  });

  test('leader completeness: a leader of a term no later than the commit need not hold the entry', () => {
    const c = new SafetyChecker();
    // Applied by a node in term 4: it may have been committed as late as term 4.
    c.onApply(nodeId(1), noop(1, 1), term(4));
    assert.equal(
      checkerOf(() => c.onLeader(nodeId(2), term(4), coreWithLog(2, [], 0))),
      null,
    );
    assert.equal(
      checkerOf(() => c.onLeader(nodeId(3), term(5), coreWithLog(3, [], 0))),
      'leader-completeness',
    );
  });

  test('log matching: logs agreeing on (index, term) differ before it', () => {
    const c = new SafetyChecker();
    const a = coreWithLog(1, [write(1, 1, 'x', 1), noop(2, 1)], 0);
    const b = coreWithLog(2, [write(1, 1, 'x', 9), noop(2, 1)], 0);
    const same = coreWithLog(3, [write(1, 1, 'x', 1), noop(2, 1), noop(3, 2)], 0);
    assert.equal(
      checkerOf(() =>
        c.checkLogMatching([
          { id: nodeId(1), core: a },
          { id: nodeId(3), core: same },
        ]),
      ),
      null,
    );
    assert.equal(
      checkerOf(() =>
        c.checkLogMatching([
          { id: nodeId(1), core: a },
          { id: nodeId(2), core: b },
        ]),
      ),
      'log-matching',
    );
  });

  test('log matching: a log holding a committed (index, term) differs from the committed log before it', () => {
    const c = new SafetyChecker();
    c.onApply(nodeId(1), write(1, 1, 'x', 1), term(1));
    c.onApply(nodeId(1), noop(2, 1), term(1));
    const stale = coreWithLog(2, [write(1, 1, 'x', 9), noop(2, 1)], 0);
    const behind = coreWithLog(3, [write(1, 1, 'x', 1)], 0);
    assert.equal(
      checkerOf(() => c.checkLogMatching([{ id: nodeId(3), core: behind }])),
      null,
    );
    assert.equal(
      checkerOf(() => c.checkLogMatching([{ id: nodeId(2), core: stale }])),
      'log-matching',
    );
  });

  test('log matching at the boundary: a log compacted or restored to a point off the committed log', () => {
    const c = new SafetyChecker();
    c.onApply(nodeId(1), noop(1, 1), term(2));
    c.onApply(nodeId(1), noop(2, 2), term(2));
    const ok = (b: { index: number; term: number }, first: number | undefined) =>
      checkerOf(() => c.checkLogBoundary(nodeId(2), 'live', b, first));
    assert.equal(ok({ index: 0, term: 0 }, 1), null);
    assert.equal(ok({ index: 2, term: 2 }, 2), null);
    assert.equal(ok({ index: 2, term: 2 }, undefined), null);
    // A snapshot install that kept the tail of another term: the boundary's term is not the
    // committed one, or the entry after it is older than the boundary.
    assert.equal(ok({ index: 2, term: 1 }, 1), 'log-matching');
    assert.equal(ok({ index: 2, term: 2 }, 1), 'log-matching');
    // Compacted beyond anything applied anywhere.
    assert.equal(ok({ index: 3, term: 2 }, undefined), 'log-matching');
  });

  test('state-machine safety: snapshots of one index must hold the same state', () => {
    const c = new SafetyChecker();
    const kv1 = new KvStateMachine(emptySnapshot(membership));
    kv1.apply(write(1, 1, 'x', 1));
    const kv2 = new KvStateMachine(emptySnapshot(membership));
    kv2.apply(write(1, 1, 'x', 2));
    c.onSnapshot(nodeId(1), kv1.snapshot(), 'taken');
    assert.equal(
      checkerOf(() => c.onSnapshot(nodeId(2), kv2.snapshot(), 'installed')),
      'state-machine-safety',
    );
  });
});
