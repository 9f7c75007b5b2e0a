/**
 * What a node does with connections that do not play by the rules: each is closed with a logged
 * reason, nothing from it reaches the runtime, and every other peer keeps being served.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { encodeFrame } from '../../src/protocol/frame.js';
import {
  encodeHandshakeFrame,
  HANDSHAKE_VERSION,
  MAC_BYTES,
  NO_CLUSTER_ID,
  NONCE_BYTES,
} from '../../src/protocol/handshake.js';
import { encodePeerFrame } from '../../src/protocol/peer-frame.js';
import type { LogIndex, Message, NodeId, Term } from '../../src/raft/types.js';
import {
  closeAll,
  HOST,
  mesh,
  nodeStarter,
  type RawPeer,
  rawPeer,
  sleep,
  startNode,
  type TestNode,
  waitFor,
} from './helpers.js';

const node = nodeStarter();

const heartbeat = (from: number, to: number, readContext = 1): Message => ({
  type: 'heartbeat',
  from: from as NodeId,
  to: to as NodeId,
  term: 1 as Term,
  commit: 0 as LogIndex,
  commitTerm: 0 as Term,
  lastIndex: 0 as LogIndex,
  readContext,
});

/** A victim node, a well-behaved peer connected to it, and an id the attacker may claim. */
async function setup(base: number): Promise<{ victim: TestNode; friend: TestNode; attackerId: NodeId }> {
  const victim = await node(base + 1, {
    limits: { frameBytesMax: 64 * 1024, snapshotChunkBytesMax: 16 * 1024, bulkQueueBytesMax: 1 << 20 },
  });
  const friend = await node(base + 2);
  await mesh(victim, friend);
  const attackerId = (base + 3) as NodeId;
  // A configured member (so the handshake can succeed) whose own listener is not running.
  victim.transport.setPeer(attackerId, { host: HOST, port: 1 });
  return { victim, friend, attackerId };
}

/** The friend still gets messages through after the attack. */
async function friendStillServed(victim: TestNode, friend: TestNode, tag: number): Promise<void> {
  friend.transport.send('sql', heartbeat(friend.id, victim.id, tag));
  await waitFor(
    () => victim.received.some((r) => r.message.type === 'heartbeat' && r.message.readContext === tag),
    'friend served',
  );
}

async function expectClosedFor(victim: TestNode, peer: RawPeer, kind: string): Promise<void> {
  const reason = await peer.closed;
  assert.ok(
    reason.code === 'peer-closed' || reason.code === 'socket-error',
    `attacker side saw ${reason.code}`,
  );
  await waitFor(
    () => victim.logger.warnings().some((w) => w.obj.reason === 'protocol' && w.obj.kind === kind),
    `a logged '${kind}' violation`,
  );
}

/** `count` TCP connections to `victim` that never say anything, opened one after the other. */
async function silentConnections(
  victim: TestNode,
  count: number,
): Promise<Array<RawPeer & { isClosed(): boolean }>> {
  const out: Array<RawPeer & { isClosed(): boolean }> = [];
  for (let i = 0; i < count; i++) {
    const raw = await rawPeer(victim, { clientId: 0, lane: 'control', authenticate: false });
    let closed = false;
    void raw.closed.then(() => {
      closed = true;
    });
    out.push({ ...raw, isClosed: () => closed });
    // One at a time, so that "the oldest" is well defined.
    await waitFor(() => victim.transport.unauthenticatedInbound() >= Math.min(i + 1, count - 1), 'accepted');
  }
  return out;
}

describe('hostile or broken peers', () => {
  test('a wrong secret is refused on both sides and no message is delivered', async () => {
    const a = await node(101);
    const b = await node(102, { secret: 'a-different-secret-0123456789' });
    a.transport.setPeer(b.id, b.address);
    b.transport.setPeer(a.id, a.address);
    for (let i = 0; i < 5; i++) {
      a.transport.send('sql', heartbeat(a.id, b.id));
      b.transport.send('sql', heartbeat(b.id, a.id));
      await sleep(20);
    }
    await waitFor(
      () =>
        [a, b].every((n) =>
          n.logger.warnings().some((w) => w.msg === 'refused a connection: handshake failed'),
        ),
      'both refused',
    );
    assert.deepEqual(a.received, []);
    assert.deepEqual(b.received, []);
    assert.ok(a.unreachable.includes(b.id) && b.unreachable.includes(a.id));
    // Refusals go on (the peers retry); the log says so once per 10 s, not once per attempt.
    for (const n of [a, b])
      assert.equal(
        n.logger.warnings().filter((w) => w.msg === 'refused a connection: handshake failed').length,
        1,
      );
    assert.ok(a.transport.status().every((s) => s.control !== 'ready' && !s.inboundControl));
  });

  // A node of another hiqlite version closes on this node's challenge (it checks the version
  // there): this node logged nothing, and the operator of an upgrade saw it only on the node of
  // the other version (found from outside).
  test('connections closed during the handshake are logged, once per period, naming another version among the causes', async () => {
    const victim = await node(151);
    for (let i = 0; i < 3; i++) {
      const raw = await rawPeer(victim, { clientId: 0, lane: 'control', authenticate: false });
      const challenged = new Promise<void>((resolve) => raw.conn.onFrame(() => resolve()));
      await challenged;
      raw.socket.destroy();
      await raw.closed;
    }
    const said = () =>
      victim.logger.entries.filter((e) => e.msg.startsWith('a connection closed during the handshake'));
    await waitFor(() => said().length > 0, 'logged');
    await sleep(100);
    assert.equal(said().length, 1, 'once per period');
    assert.match(said()[0]!.msg, /another hiqlite version/);
    assert.equal(said()[0]!.level, 'info');
  });

  test('nodes lists that differ are named as such in the refusal, not as a channel number', async () => {
    const a = await node(201);
    const b = await node(202);
    // a knows b; b does not know a.
    a.transport.setPeer(b.id, b.address);
    a.transport.send('sql', heartbeat(a.id, b.id));
    const refusal = (n: TestNode, re: RegExp) =>
      waitFor(
        () =>
          n.logger
            .warnings()
            .some((w) => w.msg === 'refused a connection: handshake failed' && re.test(String(w.obj.detail))),
        `a refusal matching ${re}`,
      );
    await refusal(b, /^node 201 is not in this node's nodes list .*: the nodes lists of the nodes differ$/);
    assert.deepEqual(b.received, []);
    // c's list says node 209 is at d's address (a new victim: refusals are logged once per 10 s).
    const c = await node(203);
    const d = await node(204);
    c.transport.setPeer(209 as NodeId, d.address);
    c.transport.send('sql', heartbeat(c.id, 209));
    await refusal(d, /^node 203 dialled node 209 at this address, but this is node 204: the nodes lists/);
    assert.deepEqual(d.received, []);
  });

  test('a client refuses a server that cannot prove the secret', async () => {
    // A rogue listener: sends a challenge, then accepts anything with a made-up proof.
    const sockets = new Set<Socket>();
    const rogue = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.write(
        encodeHandshakeFrame({
          kind: 'challenge',
          version: HANDSHAKE_VERSION,
          purpose: 'raft',
          serverNonce: new Uint8Array(NONCE_BYTES),
        }),
      );
      s.once('data', () =>
        s.write(
          encodeHandshakeFrame({
            kind: 'accept',
            clusterId: NO_CLUSTER_ID,
            mac: new Uint8Array(MAC_BYTES).fill(7),
          }),
        ),
      );
    });
    await new Promise<void>((resolve) => rogue.listen(0, HOST, resolve));
    const address = rogue.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const a = await node(111);
      a.transport.setPeer(112 as NodeId, { host: HOST, port: address.port });
      a.transport.send('sql', heartbeat(a.id, 112));
      await waitFor(
        () => a.logger.warnings().some((w) => String(w.obj.detail).includes('server proof invalid')),
        'client-side refusal',
      );
      assert.ok(a.transport.status().every((s) => s.control !== 'ready'));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => rogue.close(() => resolve()));
    }
  });

  test('the right secret with an id the node does not know is refused', async () => {
    const { victim, friend } = await setup(120);
    await assert.rejects(rawPeer(victim, { clientId: 999, lane: 'control' }));
    await waitFor(
      () =>
        victim.logger
          .warnings()
          .some((w) => String(w.obj.detail).startsWith("node 999 is not in this node's nodes list")),
      'refusal logged',
    );
    await friendStillServed(victim, friend, 121);
  });

  test('a peer claiming to be this very node is refused', async () => {
    const { victim } = await setup(125);
    await assert.rejects(rawPeer(victim, { clientId: victim.id, lane: 'control' }));
    await waitFor(
      () =>
        victim.logger
          .warnings()
          .some((w) => String(w.obj.detail).includes(`two nodes are configured with node_id ${victim.id}`)),
      'refusal logged',
    );
  });

  test('a connection that never completes the handshake is closed at the deadline', async () => {
    const victim = await node(131, { limits: { handshakeTimeoutMs: 200 } });
    const silent = await rawPeer(victim, { clientId: 1, lane: 'control', authenticate: false });
    await silent.closed;
    await waitFor(
      () => victim.logger.warnings().some((w) => String(w.obj.detail).includes('no completed handshake')),
      'timeout logged',
    );
  });

  test('before the handshake a frame larger than a handshake frame closes the connection at its header', async () => {
    const { victim, friend } = await setup(145);
    const raw = await rawPeer(victim, { clientId: 0, lane: 'control', authenticate: false });
    const header = Buffer.alloc(4);
    header.writeUInt32LE(1024 * 1024, 0);
    raw.socket.write(Buffer.concat([header, Buffer.alloc(64 * 1024)]));
    await expectClosedFor(victim, raw, 'frame-too-large');
    await friendStillServed(victim, friend, 149);
  });

  test('beyond unauthenticatedConnectionsMax silent connections the oldest is closed, and a peer still connects', async () => {
    const max = 3;
    const victim = await node(151, {
      limits: { unauthenticatedConnectionsMax: max, handshakeTimeoutMs: 60_000 },
    });
    const silent = await silentConnections(victim, max + 1);
    await waitFor(() => silent[0]?.isClosed() === true, 'the oldest silent connection closed');
    await waitFor(() => victim.transport.unauthenticatedInbound() === max, `${max} pending`);
    // A real peer authenticates although strangers hold every unauthenticated slot.
    const friend = await node(152);
    await mesh(victim, friend);
    await friendStillServed(victim, friend, 153);
    await waitFor(
      () => victim.transport.unauthenticatedInbound() === silent.filter((c) => !c.isClosed()).length,
      'only the silent connections still open are pending',
    );
  });

  test('under TLS the bound counts from the TCP accept: connections that never start TLS count too', async () => {
    const max = 2;
    const victim = await node(161, {
      tls: 'self-signed',
      limits: { unauthenticatedConnectionsMax: max, handshakeTimeoutMs: 60_000 },
    });
    const silent = await silentConnections(victim, max + 1);
    await waitFor(() => silent[0]?.isClosed() === true, 'the oldest silent connection closed');
    const friend = await node(162, { tls: 'self-signed' });
    await mesh(victim, friend);
    await friendStillServed(victim, friend, 163);
    // The friend's connections were admitted through their TLS sockets: none is left pending.
    await waitFor(
      () => victim.transport.unauthenticatedInbound() === silent.filter((c) => !c.isClosed()).length,
      'only the silent connections still open are pending',
    );
  });

  test('garbage instead of a handshake closes only that connection', async () => {
    const { victim, friend } = await setup(140);
    const raw = await rawPeer(victim, { clientId: 0, lane: 'control', authenticate: false });
    raw.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await raw.closed;
    await friendStillServed(victim, friend, 141);
  });

  const attacks: Array<{
    name: string;
    kind: string;
    lane: 'control' | 'bulk';
    bytes: (self: NodeId, victim: NodeId, other: NodeId) => Uint8Array;
  }> = [
    {
      name: 'garbage bytes in a frame',
      kind: 'unknown-type',
      lane: 'control',
      bytes: () => encodeFrame(new Uint8Array([0xde, 0xad, 0xbe, 0xef])),
    },
    {
      name: 'an oversized frame',
      kind: 'frame-too-large',
      lane: 'bulk',
      bytes: () => new Uint8Array([0xff, 0xff, 0xff, 0x7f]),
    },
    {
      name: 'a malformed message',
      kind: 'malformed',
      lane: 'control',
      bytes: (self, victim) => {
        // A well-framed payload whose message lacks its last 3 bytes.
        const frame = encodePeerFrame({ kind: 'raft', groupId: 'sql', message: heartbeat(self, victim) });
        return encodeFrame(frame.subarray(4, frame.byteLength - 3));
      },
    },
    {
      name: 'an unknown message type',
      kind: 'unknown-type',
      lane: 'control',
      bytes: (self, victim) => {
        const frame = encodePeerFrame({ kind: 'raft', groupId: 'sql', message: heartbeat(self, victim) });
        frame[4 + 1 + 1] = 99; // header, peer-frame kind, group, then the message type
        return frame;
      },
    },
    {
      name: 'a spoofed sender',
      kind: 'spoofed-sender',
      lane: 'control',
      bytes: (_self, victim, other) =>
        encodePeerFrame({ kind: 'raft', groupId: 'sql', message: heartbeat(other, victim) }),
    },
    {
      name: 'a message for another node',
      kind: 'wrong-recipient',
      lane: 'control',
      bytes: (self, _victim, other) =>
        encodePeerFrame({ kind: 'raft', groupId: 'sql', message: heartbeat(self, other) }),
    },
    {
      name: 'a control message on the bulk lane',
      kind: 'unexpected-frame',
      lane: 'bulk',
      bytes: (self, victim) =>
        encodePeerFrame({ kind: 'raft', groupId: 'sql', message: heartbeat(self, victim) }),
    },
  ];

  for (const [i, attack] of attacks.entries()) {
    const at = 200 + 10 * i;
    test(`${attack.name} closes only that connection (${attack.kind})`, async () => {
      const { victim, friend, attackerId } = await setup(at);
      const raw = await rawPeer(victim, { clientId: attackerId, lane: attack.lane });
      raw.socket.write(attack.bytes(attackerId, victim.id, friend.id));
      await expectClosedFor(victim, raw, attack.kind);
      const attackTag = (r: TestNode['received'][number]) =>
        r.message.type === 'heartbeat' && r.message.readContext === 1;
      assert.ok(!victim.received.some(attackTag), 'nothing from the attacker was delivered');
      await friendStillServed(victim, friend, at + 9);
    });
  }

  test('a truncated frame (the peer hangs up mid-frame) is logged and only that connection ends', async () => {
    const { victim, friend, attackerId } = await setup(400);
    const raw = await rawPeer(victim, { clientId: attackerId, lane: 'control' });
    const frame = encodePeerFrame({
      kind: 'raft',
      groupId: 'sql',
      message: heartbeat(attackerId, victim.id),
    });
    raw.socket.end(frame.subarray(0, frame.byteLength - 5));
    await expectClosedFor(victim, raw, 'truncated-frame');
    assert.deepEqual(
      victim.received.filter((r) => r.message.from === attackerId),
      [],
    );
    await friendStillServed(victim, friend, 409);
  });
});

describe('nodes of different clusters', () => {
  const X = '0123456789abcdef0123456789abcdef';
  const Y = 'fedcba9876543210fedcba9876543210';

  test('refuse each other, with the reason logged on both sides', async () => {
    const a = await startNode(131, { clusterId: () => X });
    const b = await startNode(132, { clusterId: () => Y });
    try {
      a.transport.setPeer(b.id, b.address);
      b.transport.setPeer(a.id, a.address);
      a.transport.send('sql', heartbeat(a.id, b.id));
      b.transport.send('sql', heartbeat(b.id, a.id));
      const refused = (n: TestNode) =>
        n.logger.warnings().some((w) => /belongs to cluster/.test(String(w.obj.detail ?? w.msg)));
      await waitFor(() => refused(a) && refused(b), 'both sides log the refusal');
      assert.equal(a.received.length + b.received.length, 0, 'no message crossed');
      assert.ok([...a.transport.status(), ...b.transport.status()].every((s) => s.control !== 'ready'));
    } finally {
      await closeAll(a, b);
    }
  });

  test('a node without a cluster id yet (joining) talks to a node of any cluster', async () => {
    const a = await startNode(133, { clusterId: () => X });
    const b = await startNode(134, { clusterId: () => null });
    try {
      await mesh(a, b);
      a.transport.send('sql', heartbeat(a.id, b.id));
      await waitFor(() => b.received.length > 0, 'the message arrives');
    } finally {
      await closeAll(a, b);
    }
  });
});
