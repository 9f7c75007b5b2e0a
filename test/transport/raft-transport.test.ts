import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Message, NodeId } from '../../src/raft/types.js';
import { RaftTransport } from '../../src/transport/raft-transport.js';
import { oneOfEachType } from '../protocol/arbitraries.js';
import { appendOf } from '../support/append-message.js';
import { closeAll, HOST, heartbeat, mesh, nodeStarter, SECRET, startNode, waitFor } from './helpers.js';

const node = nodeStarter();

/** An append of entry `index` with `dataBytes` of data (each byte the index's low byte). */
const append = (from: NodeId, to: NodeId, index: number, dataBytes: number): Message =>
  appendOf(from, to, index, new Uint8Array(dataBytes).fill(index & 0xff));

describe('raft transport', () => {
  test('delivers a message of every type, for every group, in both directions', async () => {
    const a = await node(1);
    const b = await node(2);
    await mesh(a, b);
    for (const groupId of ['sql', 'cache'] as const) {
      for (const m of oneOfEachType(a.id, b.id)) assert.equal(a.transport.send(groupId, m), true);
      for (const m of oneOfEachType(b.id, a.id)) assert.equal(b.transport.send(groupId, m), true);
    }
    await waitFor(() => a.received.length === 24 && b.received.length === 24, 'all messages delivered');
    const key = (x: { groupId: string; message: Message }) => `${x.groupId}/${x.message.type}`;
    for (const [n, from, to] of [
      [b, a.id, b.id],
      [a, b.id, a.id],
    ] as const) {
      const expected = (['sql', 'cache'] as const).flatMap((groupId) =>
        oneOfEachType(from, to).map((message) => ({ groupId, message })),
      );
      const sort = (xs: typeof expected) => [...xs].sort((x, y) => key(x).localeCompare(key(y)));
      assert.deepEqual(sort(n.received), sort(expected));
    }
    assert.deepEqual(a.unreachable, []);
    assert.deepEqual(b.unreachable, []);
  });

  test('preserves order within a lane', async () => {
    const a = await node(11);
    const b = await node(12);
    await mesh(a, b);
    for (let i = 1; i <= 500; i++) a.transport.send('sql', heartbeat(a.id, b.id, i));
    await waitFor(() => b.received.length === 500, '500 heartbeats');
    assert.deepEqual(
      b.received.map((r) => (r.message.type === 'heartbeat' ? r.message.readContext : -1)),
      Array.from({ length: 500 }, (_, i) => i + 1),
    );
  });

  test('a heartbeat is not delayed behind 50 MB of queued appends (separate lanes)', async (t) => {
    const limits = { bulkQueueBytesMax: 64 * 1024 * 1024 };
    const a = await node(21, { limits });
    const b = await node(22, { limits });
    await mesh(a, b);
    const appendCount = 200;
    for (let i = 1; i <= appendCount; i++) {
      assert.equal(a.transport.send('sql', append(a.id, b.id, i, 256 * 1024)), true);
    }
    assert.ok((a.transport.status()[0]?.bulkQueuedBytes ?? 0) >= 50 * 1024 * 1024, '50 MB queued');
    a.transport.send('sql', heartbeat(a.id, b.id, 1));
    let appendsBeforeHeartbeat = -1;
    let appendsSeen = 0;
    // Counts and drops what arrived, so the test does not hold 50 MB twice.
    const drain = () => {
      const hb = b.received.findIndex((r) => r.message.type === 'heartbeat');
      if (hb >= 0) appendsBeforeHeartbeat = appendsSeen + hb;
      appendsSeen += b.received.filter((r) => r.message.type === 'append').length;
      b.received.length = 0;
    };
    await waitFor(() => {
      drain();
      return appendsBeforeHeartbeat >= 0;
    }, 'heartbeat');
    assert.ok(
      appendsBeforeHeartbeat < appendCount,
      `the heartbeat arrived after ${appendsBeforeHeartbeat} of ${appendCount} appends`,
    );
    t.diagnostic(`heartbeat arrived after ${appendsBeforeHeartbeat} of ${appendCount} queued appends`);
    // The bulk backlog still arrives in full afterwards.
    await waitFor(() => {
      drain();
      return appendsSeen === appendCount;
    }, 'all appends');
  });

  test('reconnects after the peer restarts on the same port', async () => {
    const a = await node(31);
    const b = await node(32);
    await mesh(a, b);
    a.transport.send('sql', heartbeat(a.id, b.id, 1));
    await waitFor(() => b.received.length === 1, 'first heartbeat');
    await b.transport.close();
    await waitFor(() => a.transport.status()[0]?.control !== 'ready', 'a notices b is gone');
    const b2 = await node(32, { listen: { host: HOST, port: b.address.port } });
    b2.transport.setPeer(a.id, a.address);
    await waitFor(() => a.transport.status()[0]?.control === 'ready', 'a reconnected');
    a.transport.send('sql', heartbeat(a.id, b2.id, 2));
    await waitFor(() => b2.received.length === 1, 'heartbeat after restart');
    assert.equal(b2.received[0]?.message.type, 'heartbeat');
    assert.ok(a.unreachable.includes(b.id) || a.logger.warnings().length > 0, 'the outage was noticed');
  });

  test('a full queue drops messages and reports the peer unreachable, once per episode', async () => {
    const a = await node(41, { limits: { controlQueueMessagesMax: 4 } });
    const b = await node(42);
    await mesh(a, b);
    // All sent within one event-loop turn: the queue flushes only at the end of it.
    const accepted = Array.from({ length: 10 }, (_, i) =>
      a.transport.send('sql', heartbeat(a.id, b.id, i + 1)),
    );
    assert.deepEqual(accepted, [true, true, true, true, false, false, false, false, false, false]);
    await waitFor(() => b.received.length === 4, 'the queued four');
    assert.deepEqual(a.unreachable, [b.id]);
  });

  test('a peer that cannot be reached is reported unreachable and its messages dropped', async () => {
    const a = await node(51);
    const ghost = await node(52);
    const ghostAddress = ghost.address;
    await ghost.transport.close();
    a.transport.setPeer(ghost.id, ghostAddress);
    a.transport.send('sql', heartbeat(a.id, ghost.id, 1));
    await waitFor(() => a.unreachable.includes(ghost.id), 'unreachable reported');
    await waitFor(() => a.transport.status()[0]?.control === 'backoff', 'lane in backoff');
    assert.equal(a.transport.send('sql', heartbeat(a.id, ghost.id, 2)), false);
  });

  test('a message for a node without an address is dropped and reported', async () => {
    const a = await node(61);
    assert.equal(a.transport.send('sql', heartbeat(a.id, 99 as NodeId, 1)), false);
    await waitFor(() => a.unreachable.includes(99 as NodeId), 'unreachable reported');
  });

  test('an append larger than frameBytesMax is dropped on the sending side', async () => {
    const a = await node(71, { limits: { frameBytesMax: 1024 * 1024, snapshotChunkBytesMax: 64 * 1024 } });
    const b = await node(72);
    await mesh(a, b);
    assert.equal(a.transport.send('sql', append(a.id, b.id, 1, 2 * 1024 * 1024)), false);
    assert.ok(a.logger.warnings().some((w) => w.msg.includes('larger than frameBytesMax')));
  });

  test('configuration is validated: short secret, bad limits', () => {
    const base = {
      nodeId: 1 as NodeId,
      listen: { host: HOST, port: 0 },
      peers: new Map(),
      onMessage: () => {},
    };
    assert.throws(() => new RaftTransport({ ...base, secret: 'short' }), { code: 'HQL_INVALID_CONFIG' });
    assert.throws(() => new RaftTransport({ ...base, secret: SECRET, limits: { frameBytesMax: 0 } }), {
      code: 'HQL_INVALID_CONFIG',
    });
    assert.throws(
      () =>
        new RaftTransport({
          ...base,
          secret: SECRET,
          limits: { reconnectDelayMsMin: 10, reconnectDelayMsMax: 5 },
        }),
      { code: 'HQL_INVALID_CONFIG' },
    );
    assert.throws(() => new RaftTransport({ ...base, listen: { host: '', port: 1 }, secret: SECRET }), {
      code: 'HQL_INVALID_CONFIG',
    });
  });
});

test('connection log lines name the other end, outgoing lanes included', async () => {
  const a = await startNode(211);
  const b = await startNode(212);
  try {
    await mesh(a, b);
    const outgoing = a.logger.entries.filter((e) => e.msg === 'connected to peer');
    assert.ok(outgoing.length > 0);
    for (const e of outgoing) assert.equal(e.obj.remote, `${b.address.host}:${b.address.port}`);
    // Routine per-lane events are debug, not part of the default (info) log.
    assert.ok(outgoing.every((e) => e.level === 'debug'));
  } finally {
    await closeAll(a, b);
  }
});
