/**
 * A tiny synchronous harness for scenario tests (like etcd's raft_test.go `network`): every node's
 * Ready is processed in full (persist = keep in memory, send, apply, advance) and messages are
 * delivered in FIFO order until the network is quiet. Tests may drop, isolate or crash nodes.
 */
import { Prng } from '../../src/lib/prng.js';
import { RaftCore } from '../../src/raft/raft.js';
import type {
  Entry,
  HardState,
  LogIndex,
  Membership,
  Message,
  NodeId,
  RaftConfig,
  Ready,
  SnapshotMeta,
  Term,
} from '../../src/raft/types.js';

export const id = (n: number) => n as NodeId;

export interface Disk {
  hardState: HardState;
  snapshot: SnapshotMeta;
  entries: Entry[];
  applied: Entry[];
  appliedIndex: LogIndex;
}

export function testConfig(n: number, seed: number, overrides: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id: id(n),
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 1,
    preVote: true,
    checkQuorum: true,
    inflightMessagesMax: 16,
    inflightBytesMax: 1 << 20,
    appendBytesMax: 64 << 10,
    uncommittedEntriesMax: 1000,
    uncommittedBytesMax: 1 << 24,
    commandBytesMax: 1 << 20,
    pendingReadsMax: 100,
    random: new Prng(seed * 1000 + n),
    ...overrides,
  };
}

export class Cluster {
  readonly nodes = new Map<NodeId, RaftCore>();
  readonly disks = new Map<NodeId, Disk>();
  readonly queue: Message[] = [];
  /** Pairs "from-to" whose messages are dropped. */
  readonly cut = new Set<string>();
  readonly down = new Set<NodeId>();
  readonly readyLog: Array<{ node: NodeId; ready: Ready }> = [];
  dropFilter: ((m: Message) => boolean) | null = null;

  constructor(
    readonly membership: Membership,
    readonly seed = 1,
    readonly overrides: Partial<RaftConfig> = {},
    extraNodes: number[] = [],
  ) {
    const all = [...membership.voters, ...membership.learners, ...extraNodes.map(id)];
    for (const n of all) {
      const initial = extraNodes.includes(n) ? { voters: [], learners: [] } : membership;
      this.disks.set(n, {
        hardState: { term: 0 as Term, vote: null, commit: 0 as LogIndex },
        snapshot: { index: 0 as LogIndex, term: 0 as Term, membership: initial },
        entries: [],
        applied: [],
        appliedIndex: 0 as LogIndex,
      });
      this.start(n);
    }
  }

  start(n: NodeId): void {
    const d = this.disks.get(n)!;
    this.down.delete(n);
    this.nodes.set(
      n,
      new RaftCore(testConfig(n, this.seed, this.overrides), {
        hardState: d.hardState,
        snapshot: d.snapshot,
        entries: d.entries.filter((e) => e.index > d.snapshot.index),
        appliedIndex: d.appliedIndex,
      }),
    );
  }

  crash(n: NodeId): void {
    this.down.add(n);
    this.nodes.delete(n);
  }

  node(n: number): RaftCore {
    const r = this.nodes.get(id(n));
    if (r === undefined) throw new Error(`node ${n} is down`);
    return r;
  }

  isolate(n: number): void {
    for (const other of this.disks.keys()) {
      if (other === n) continue;
      this.cut.add(`${n}-${other}`);
      this.cut.add(`${other}-${n}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Process every node's Ready and deliver messages until quiet (bounded). */
  stabilize(stepsMax = 100_000): void {
    for (let step = 0; step < stepsMax; step++) {
      let progressed = false;
      for (const [n, r] of this.nodes) {
        if (r.hasReady()) {
          this.processReady(n, r);
          progressed = true;
        }
      }
      const m = this.queue.shift();
      if (m !== undefined) {
        progressed = true;
        const to = this.nodes.get(m.to);
        if (to !== undefined && !this.cut.has(`${m.from}-${m.to}`) && !(this.dropFilter?.(m) ?? false))
          to.step(m);
      }
      if (!progressed) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tick(n: number, times = 1): void {
    for (let i = 0; i < times; i++) this.node(n).tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const r of this.nodes.values()) r.tick();
      this.stabilize();
    }
  }

  /** Elect node n: campaign and deliver. */
  elect(n: number): void {
    this.node(n).campaign();
    this.stabilize();
  }

  private processReady(n: NodeId, r: RaftCore): void {
    const rd = r.ready();
    this.readyLog.push({ node: n, ready: rd });
    const d = this.disks.get(n)!;
    this.queue.push(...rd.messages);
    if (rd.snapshot !== null) {
      d.snapshot = rd.snapshot;
      d.entries = [];
      d.appliedIndex = rd.snapshot.index;
    }
    const first = rd.entries[0];
    if (first !== undefined) {
      d.entries = d.entries.filter((e) => e.index < first.index);
      d.entries.push(...rd.entries);
    }
    if (rd.hardState !== null) d.hardState = rd.hardState;
    this.queue.push(...rd.messagesAfterPersist);
    for (const e of rd.committed) {
      d.applied.push(e);
      d.appliedIndex = e.index;
    }
    r.advance(rd);
  }

  leaders(): NodeId[] {
    return [...this.nodes].filter(([, r]) => r.status().role === 'leader').map(([n]) => n);
  }

  appliedCommands(n: number): string[] {
    return this.disks
      .get(id(n))!
      .applied.filter((e) => e.kind === 'command')
      .map((e) => new TextDecoder().decode((e as { data: Uint8Array }).data));
  }
}

export const cmd = (s: string) => new TextEncoder().encode(s);
