/** Test helpers: transports on 127.0.0.1 port 0, recording loggers, a hand-driven peer. */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after } from 'node:test';
import type { RaftGroupId } from '../../src/protocol/raft-group.js';
import type { LogIndex, Message, NodeId, Term } from '../../src/raft/types.js';
import { authenticateClient } from '../../src/transport/authenticate.js';
import { type CloseReason, FramedConnection } from '../../src/transport/framed-connection.js';
import type { TransportLogger } from '../../src/transport/logger.js';
import { LANE_CHANNELS, type LaneKind } from '../../src/transport/outbound-lane.js';
import { RaftTransport } from '../../src/transport/raft-transport.js';
import type { PeerAddress, RaftTransportOptions } from '../../src/transport/transport-options.js';

export const SECRET = 'test-cluster-secret-0123456789';
export const HOST = '127.0.0.1';

export interface LogEntry {
  readonly level: 'warn' | 'info' | 'debug';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

export class RecordingLogger implements TransportLogger {
  readonly entries: LogEntry[] = [];
  warn(obj: Record<string, unknown>, msg: string): void {
    this.entries.push({ level: 'warn', obj, msg });
  }
  info(obj: Record<string, unknown>, msg: string): void {
    this.entries.push({ level: 'info', obj, msg });
  }
  debug(obj: Record<string, unknown>, msg: string): void {
    this.entries.push({ level: 'debug', obj, msg });
  }
  warnings(): LogEntry[] {
    return this.entries.filter((e) => e.level === 'warn');
  }
}

export interface TestNode {
  readonly id: NodeId;
  readonly transport: RaftTransport;
  readonly address: PeerAddress;
  readonly received: Array<{ groupId: RaftGroupId; message: Message }>;
  readonly unreachable: NodeId[];
  readonly logger: RecordingLogger;
}

export type NodeOverrides = Partial<
  Omit<RaftTransportOptions, 'nodeId' | 'peers' | 'onMessage' | 'onUnreachable'>
>;

/** Fast reconnects so restart tests stay short; the default limits otherwise. */
export const FAST_RECONNECT = { reconnectDelayMsMin: 10, reconnectDelayMsMax: 100 };

export async function startNode(
  id: number,
  overrides: NodeOverrides = {},
  peers: ReadonlyMap<NodeId, PeerAddress> = new Map(),
): Promise<TestNode> {
  const received: TestNode['received'] = [];
  const unreachable: NodeId[] = [];
  const logger = new RecordingLogger();
  const transport = new RaftTransport({
    nodeId: id as NodeId,
    listen: { host: HOST, port: 0 },
    peers,
    secret: SECRET,
    logger,
    ...overrides,
    limits: { ...FAST_RECONNECT, ...overrides.limits },
    onMessage: (groupId, message) => received.push({ groupId, message }),
    onUnreachable: (peer) => unreachable.push(peer),
  });
  const address = await transport.start();
  return { id: id as NodeId, transport, address, received, unreachable, logger };
}

/** A `node(id, overrides)` that starts a test node and closes it after the file's tests. */
export function nodeStarter(): (id: number, overrides?: NodeOverrides) => Promise<TestNode> {
  const open: TestNode[] = [];
  after(() => closeAll(...open));
  return async (id, overrides = {}) => {
    const n = await startNode(id, overrides);
    open.push(n);
    return n;
  };
}

/** Introduces the nodes to each other (every pair), then waits until every lane is up. */
export async function mesh(...nodes: TestNode[]): Promise<void> {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.setPeer(b.id, b.address);
  await waitFor(
    () =>
      nodes.every((n) =>
        n.transport
          .status()
          .every((s) => s.control === 'ready' && s.bulk === 'ready' && s.inboundControl && s.inboundBulk),
      ),
    'all lanes connected',
  );
}

/** Polls `predicate` every few ms; fails after `timeoutMs` (a deadline, not a timing assertion). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface RawPeer {
  readonly conn: FramedConnection;
  readonly socket: Socket;
  /** Resolves with the reason once the connection is closed (by either side). */
  readonly closed: Promise<CloseReason>;
}

/** A hand-driven client that authenticates as `clientId` and then writes whatever a test wants. */
export function rawPeer(
  to: TestNode,
  p: { clientId: number; lane: LaneKind; secret?: string; serverId?: number; authenticate?: boolean },
): Promise<RawPeer> {
  const socket = connect({ host: to.address.host, port: to.address.port });
  let onClosed: (r: CloseReason) => void = () => {};
  const closed = new Promise<CloseReason>((resolve) => {
    onClosed = resolve;
  });
  const conn = new FramedConnection(socket, 1 << 20, (r) => onClosed(r));
  const peer = { conn, socket, closed };
  if (p.authenticate === false) return new Promise((resolve) => socket.once('connect', () => resolve(peer)));
  return new Promise((resolve, reject) => {
    authenticateClient(
      conn,
      {
        secret: new TextEncoder().encode(p.secret ?? SECRET),
        purpose: 'raft',
        localId: p.clientId,
        serverId: p.serverId ?? to.id,
        channel: LANE_CHANNELS[p.lane],
      },
      (error) => (error === null ? resolve(peer) : reject(error)),
    );
    // After success this reject is a no-op; `closed` itself never rejects.
    closed.then(
      (r) => reject(new Error(`closed during handshake: ${r.code} ${r.detail}`)),
      () => {},
    );
  });
}

/** Closes every node, ignoring nodes a test already closed. */
export async function closeAll(...nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.transport.close()));
}

/** A heartbeat of term 1: the smallest control-lane message. */
export const heartbeat = (from: NodeId, to: NodeId, readContext: number): Message => ({
  type: 'heartbeat',
  from,
  to,
  term: 1 as Term,
  commit: 0 as LogIndex,
  commitTerm: 0 as Term,
  lastIndex: 0 as LogIndex,
  readContext,
});
