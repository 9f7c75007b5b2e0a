/**
 * RaftGroups wired together in one process with in-memory parts: MemoryLogStore, a small
 * key-value state machine that snapshots to real files, and a transport that delivers through
 * the event loop. Real time, real timers: this exercises the runtime's loop, not the core.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prng } from '../../src/lib/prng.js';
import { RaftGroup } from '../../src/node/raft-group.js';
import type { GroupStateMachine, GroupTransport, StoredSnapshot } from '../../src/node/seams.js';
import { SnapshotStore } from '../../src/node/snapshot-store.js';
import { systemClock } from '../../src/node/system-clock.js';
import type {
  Entry,
  LogIndex,
  Membership,
  Message,
  NodeId,
  SnapshotMeta,
  Term,
} from '../../src/raft/types.js';
import {
  emptyMemoryLogState,
  type MemoryLogState,
  MemoryLogStore,
} from '../../src/storage/memory-log-store.js';

export class KvStateMachine implements GroupStateMachine {
  data = new Map<string, string>();
  /** What sizeBytes reports (the snapshot policy weighs a snapshot's cost with it). */
  reportedSize = 0;
  /** Calls of snapshot(), counted when they start. */
  snapshotsStarted = 0;
  private applied = 0 as LogIndex;
  private appliedTerm = 0 as Term;
  private membership: Membership | null = null;

  appliedIndex(): LogIndex {
    return this.applied;
  }

  sizeBytes(): number {
    return this.reportedSize;
  }

  async apply(entries: readonly Entry[], wanted: readonly boolean[]): Promise<readonly unknown[]> {
    return entries.map((e, i) => {
      this.applied = e.index;
      this.appliedTerm = e.term;
      if (e.kind === 'config') this.membership = e.membership;
      if (e.kind !== 'command') return undefined;
      const [k, v] = new TextDecoder().decode(e.data).split('=') as [string, string];
      const old = this.data.get(k) ?? null;
      this.data.set(k, v);
      return wanted[i] ? { old } : undefined;
    });
  }

  async snapshot(path: string): Promise<{ index: LogIndex; term: Term; membership: Membership | null }> {
    this.snapshotsStarted++;
    await writeFile(path, JSON.stringify({ i: this.applied, t: this.appliedTerm, d: [...this.data] }));
    return { index: this.applied, term: this.appliedTerm, membership: this.membership };
  }

  async restore(path: string, meta: SnapshotMeta): Promise<void> {
    const o = JSON.parse(await readFile(path, 'utf8')) as { i: number; t: number; d: [string, string][] };
    if (o.i !== meta.index) throw new Error('snapshot file does not match its metadata');
    this.data = new Map(o.d);
    this.applied = o.i as LogIndex;
    this.appliedTerm = o.t as Term;
    this.membership = meta.membership;
  }

  async reset(): Promise<void> {
    this.data = new Map();
    this.applied = 0 as LogIndex;
  }

  async close(): Promise<void> {}
}

export interface HarnessNode {
  id: NodeId;
  group: RaftGroup;
  sm: KvStateMachine;
  logState: MemoryLogState;
  snapDir: string;
}

export class GroupCluster implements GroupTransport {
  readonly nodes = new Map<NodeId, HarnessNode>();
  readonly cut = new Set<number>();
  private constructor(readonly dir: string) {}

  static async create(n: number, snapshotEvery = 1000): Promise<GroupCluster> {
    const c = new GroupCluster(await mkdtemp(join(tmpdir(), 'hql-group-')));
    const voters = Array.from({ length: n }, (_, i) => (i + 1) as NodeId);
    for (const id of voters) {
      await c.startNode(id, voters, snapshotEvery, emptyMemoryLogState(), new KvStateMachine());
    }
    return c;
  }

  async startNode(
    id: NodeId,
    voters: NodeId[],
    snapshotEvery: number,
    logState: MemoryLogState,
    sm: KvStateMachine,
  ): Promise<HarnessNode> {
    const snapDir = join(this.dir, `n${id}`);
    const group = await RaftGroup.open({
      group: 'sql',
      raft: {
        id,
        electionTimeoutTicks: 10,
        heartbeatIntervalTicks: 2,
        preVote: true,
        checkQuorum: true,
        inflightMessagesMax: 64,
        inflightBytesMax: 1 << 22,
        appendBytesMax: 1 << 20,
        uncommittedEntriesMax: 10_000,
        uncommittedBytesMax: 1 << 26,
        commandBytesMax: 1 << 20,
        pendingReadsMax: 10_000,
        random: new Prng(id * 7919),
      },
      initialMembership: { voters, learners: [] },
      tickIntervalMs: 10,
      logStore: new MemoryLogStore({ state: logState }),
      snapshots: await SnapshotStore.open(snapDir),
      stateMachine: sm,
      transport: this,
      clock: systemClock,
      snapshotEntriesThreshold: snapshotEvery,
      snapshotCostRatioMax: 8,
      snapshotBytesThreshold: 1 << 30,
      snapshotTrailingEntries: 5,
      applyQueueEntriesMax: 100_000,
    });
    const node = { id, group, sm, logState, snapDir };
    this.nodes.set(id, node);
    return node;
  }

  send(_group: 'sql' | 'cache', m: Message): void {
    if (this.cut.has(m.from) || this.cut.has(m.to)) return;
    setImmediate(() => this.nodes.get(m.to)?.group.receive(m));
  }

  async sendSnapshot(
    _group: 'sql' | 'cache',
    m: Extract<Message, { type: 'snapshot' }>,
    { path, sha256 }: StoredSnapshot,
  ): Promise<boolean> {
    if (this.cut.has(m.from) || this.cut.has(m.to)) return false;
    const target = this.nodes.get(m.to);
    if (target === undefined) return false;
    const bytes = await readFile(path);
    // As the receiver does (src/transport/snapshot-receiver.ts): bytes that do not match the
    // sender's checksum are refused, and the send fails.
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) return false;
    const snapshots = await SnapshotStore.open(target.snapDir);
    const dest = snapshots.tempPath();
    await writeFile(dest, bytes);
    target.group.receiveSnapshot(m, dest);
    return true;
  }

  async waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v !== undefined && v !== null && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * A follower stopped while the leader writes `s0=0` … and compacts its log behind a snapshot:
   * the follower, started again, can only be brought back by a snapshot.
   */
  async followerBehindSnapshot(
    writes = 60,
  ): Promise<{ leader: HarnessNode; stopped: HarnessNode; last: LogIndex }> {
    const leader = await this.waitFor('a leader', () => this.leader());
    const lagging = [...this.nodes.values()].find((n) => n !== leader)!;
    const stopped = await this.stop(lagging.id);
    let last = 0 as LogIndex;
    for (let i = 0; i < writes; i++)
      last = (await leader.group.propose(new TextEncoder().encode(`s${i}=${i}`), { timeoutMs: 5000 })).index;
    await this.waitFor('leader snapshot', () => leader.group.status().snapshotIndex >= 40);
    return { leader, stopped, last };
  }

  leader(): HarnessNode | undefined {
    return [...this.nodes.values()].find((n) => n.group.status().role === 'leader');
  }

  async stop(id: NodeId): Promise<HarnessNode> {
    const n = this.nodes.get(id)!;
    this.nodes.delete(id);
    await n.group.close();
    return n;
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) await n.group.close();
    this.nodes.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}
