/**
 * One simulated server of the cache group: the product's `CacheGroup` (src/node/cache-group.ts)
 * — its Raft group, state machine, log clock, expiry proposer, lock waiters, sessions and write
 * batches — in a simulated process, wired through its seams: a virtual clock of its own (an
 * offset from the others' and a drift), `defer` on the agenda, the simulated disk (../disk.ts)
 * under its log store and a chunk snapshot store on that disk, the simulated network as its
 * transport, and its forwarding to the leader as a request across that network.
 *
 * A process lives until it crashes: every event for it runs only in the life that asked for it
 * and waits while the process is paused (a GC stall). A crash abandons its CacheGroup mid-flight,
 * keeps what the disk made durable, and a restart opens a new CacheGroup on that disk.
 */
import pino from 'pino';
import { assert } from '../../../src/lib/assert.js';
import type { Clock } from '../../../src/lib/clock.js';
import { HiqliteError } from '../../../src/lib/errors.js';
import type { Random } from '../../../src/lib/prng.js';
import {
  CacheGroup,
  type CacheGroup as CacheGroupType,
  type CachePlantedBugs,
} from '../../../src/node/cache-group.js';
import {
  type CacheAsking,
  CacheWatchdog,
  cacheGroupAnswer,
  leadsSaying,
  leftBehindBy,
  provenNoCacheGroup,
  votersGoneFromCacheGroup,
} from '../../../src/node/cache-refounding.js';
import type { CacheLeaderAnswer } from '../../../src/node/cache-voter-answer.js';
import type { ResolvedNodeConfig } from '../../../src/node/config/config.js';
import { addAsLearner, joinGroup, promoteLearner } from '../../../src/node/join-procedure.js';
import { abstains, joinKind } from '../../../src/node/joining-marker.js';
import { type ChunkSnapshotStore, chunkStoreOf } from '../../../src/node/memory-snapshot-store.js';
import { PeerClocks } from '../../../src/node/peer-clocks.js';
import type { Forwarded } from '../../../src/node/propose-retry.js';
import { lostLocalState } from '../../../src/node/raft-group.js';
import type { GroupTransport, SnapshotCheck, StoredSnapshot } from '../../../src/node/seams.js';
import { decideStart } from '../../../src/node/start-decision.js';
import type { LogIndex, Membership, Message, NodeId, SnapshotMeta } from '../../../src/raft/types.js';
import type { CacheResult } from '../../../src/sm/cache/result.js';
import { agendaTimers, ProcessStall } from '../agenda.js';
import { type ProcessLife, SimDisk, SimLogStore } from '../disk.js';
import { checkSentDurable } from '../durability.js';
import type { EventQueue } from '../event-queue.js';
import { fail } from '../failure.js';
import { emptySnapshot } from '../kv.js';
import type { Envelope, Network } from '../network.js';
import type { Trace } from '../trace.js';
import { WaitLeaseAudit } from './wait-lease-audit.js';

/** The simulated epoch of wall-clock time (no value of the real clock enters a run). */
const WALL_EPOCH_MS = 1_700_000_000_000;
/** A promise that never settles. */
const NEVER = new Promise<never>(() => {});
/** Snapshots kept committed (as the file store keeps two). */
const SNAPSHOTS_KEPT = 2;
const SILENT = pino({ level: 'silent' });
const QUIET = { info: () => {}, warn: () => {} };

/** What a cache node needs from the simulation around it. */
export interface CacheNodeHost {
  readonly queue: EventQueue;
  readonly rng: Random;
  readonly network: Network;
  readonly trace: Trace;
  readonly cfg: (id: NodeId) => ResolvedNodeConfig;
  readonly membership: Membership;
  readonly diskTiming: ConstructorParameters<typeof SimDisk>[4];
  readonly tornWriteRate: number;
  readonly plantedBugs: CachePlantedBugs;
  /**
   * A majority may lose the group (every node keeps it in memory, and crashes take several at
   * once): the nodes run the product's re-founding (cache-refounding.ts) — node 1's proof and
   * founding, the left-behind check, the watchdog.
   */
  readonly cacheLoss: boolean;
  /** A bug planted in node 1's founding proof (simulation.ts, CACHE_LOSS_PLANTED_BUGS), or null. */
  readonly foundingBug: 'foundOnSilence' | 'foundWithoutProof' | null;
  /** A node dropped its state of the group (`found`: node 1 founded it anew). */
  onRefound(n: NodeId, how: 'join' | 'found'): void;
  /** A node's join completed, or was added back (for the run's statistics). */
  onJoin(what: 'added' | 'rejoined'): void;
  node(id: NodeId): CacheSimNode | undefined;
  /** Something failed where no event can throw it: the run fails with it after the current event. */
  failLater(e: unknown): void;
}

/** A node's clock: its wall clock is `offsetMs` off the simulation's, its monotonic one runs at `rate`. */
export interface NodeClockShape {
  readonly offsetMs: number;
  readonly rate: number;
}

class Life implements ProcessLife {
  dead = false;
  group: CacheGroupType | null = null;
  logStore: SimLogStore | null = null;
  /** This life's clock (the group's, and its clients'). */
  clock: Clock | null = null;
  peerClocks: PeerClocks | null = null;
  /**
   * The node dropped its state of the group in this life (the product's CacheGroup.refound): its
   * log and snapshots are in the group's own memory stores since, not on the simulated disk.
   */
  refounded = false;
  watchdog: CacheWatchdog | null = null;
  /** Settled at the crash: what callers of this life wait for ends then (outcome unknown). */
  readonly died: Promise<'crashed'>;
  private markDied!: () => void;

  constructor(
    readonly incarnation: number,
    private readonly node: CacheSimNode,
  ) {
    this.died = new Promise<'crashed'>((resolve) => {
      this.markDied = () => resolve('crashed');
    });
  }

  kill(): void {
    this.dead = true;
    this.watchdog?.stop();
    this.markDied();
  }

  whenRunning(kind: string, fn: () => void): void {
    if (this.dead) return;
    this.node.whenRunning(this, kind, fn);
  }
}

/** The outcome of a call into a node's group as a client sees it. */
export type CallOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown; readonly crashed: boolean };

export class CacheSimNode {
  readonly disk: SimDisk;
  /** Snapshot bytes on this node's disk, by path (committed ones are in `disk.committed`). */
  readonly blobs = new Map<string, Uint8Array[]>();
  incarnation = 0;
  /** The wait-lease audit of each life (wait-lease-audit.ts). */
  private readonly audits: WaitLeaseAudit[] = [];
  private life: Life | null = null;
  private readonly stall: ProcessStall;
  crashes = 0;

  constructor(
    readonly id: NodeId,
    private readonly host: CacheNodeHost,
    readonly clockShape: NodeClockShape,
    /**
     * `cache_storage_disk = false`: nothing survives a crash, and a restart joins the group
     * again as a new learner (the product's join procedure), promoted once caught up.
     */
    readonly memory: boolean,
  ) {
    this.disk = new SimDisk(id, emptySnapshot(host.membership), host.queue, host.rng, host.diskTiming);
    this.stall = new ProcessStall(host.queue, host.trace, id);
  }

  get alive(): boolean {
    return this.life !== null;
  }

  get paused(): boolean {
    return this.stall.paused;
  }

  /** The running group, or null while down, opening or paused is not considered. */
  get group(): CacheGroupType | null {
    return this.life?.group ?? null;
  }

  /** The running group if it can act now (up, started, not paused). */
  get ready(): CacheGroupType | null {
    return this.paused ? null : this.group;
  }

  /** The node runs and is joining the group again (a memory node after a restart). */
  get joining(): boolean {
    const g = this.group;
    return g !== null && g.join.state !== null;
  }

  get appliedIndex(): number {
    return this.life?.group?.sm.appliedIndex() ?? -1;
  }

  pause(durationUs: number): void {
    if (this.life !== null) this.stall.pause(durationUs);
  }

  whenRunning(life: Life, kind: string, fn: () => void): void {
    this.stall.whenRunning(life, kind, fn);
  }

  /**
   * Runs `fn` after `delayMs` of this node's clock (a client's timer) in its current life, or in
   * life `incarnation` only: false when that life is over.
   */
  after(delayMs: number, kind: string, fn: () => void, incarnation = this.incarnation): boolean {
    const life = this.life;
    if (life === null || life.incarnation !== incarnation) return false;
    this.post(life, this.delayUs(delayMs), kind, fn);
    return true;
  }

  /**
   * Calls into this node's group from a client of this process: the outcome, or `crashed` when
   * the process dies first (the call's effect is then unknown). Null when the node cannot take
   * calls now (down, opening, paused).
   */
  call<T>(fn: (g: CacheGroupType) => Promise<T>): Promise<CallOutcome<T>> | null {
    const life = this.life;
    const g = life?.group;
    if (life === null || g === null || g === undefined || this.paused) return null;
    let p: Promise<T>;
    try {
      p = fn(g);
    } catch (e) {
      return Promise.resolve({ ok: false, error: e, crashed: false });
    }
    const settled = p.then(
      (value): CallOutcome<T> => ({ ok: true, value }),
      (error: unknown): CallOutcome<T> => ({ ok: false, error, crashed: false }),
    );
    // Answers reach the client only while its process runs (after a pause, in order).
    const delivered = settled.then(
      (o) => new Promise<CallOutcome<T>>((resolve) => life.whenRunning('answer', () => resolve(o))),
    );
    return Promise.race([
      delivered,
      life.died.then((): CallOutcome<T> => ({ ok: false, error: null, crashed: true })),
    ]);
  }

  /**
   * How far this node's idea of a peer's clock may be off now: half the round trip of the
   * samples its cluster clock uses (peer-clocks.ts), the largest.
   */
  clockUncertaintyMs(): number {
    const pc = this.life?.peerClocks;
    if (pc === null || pc === undefined) return 0;
    let u = 0;
    for (const { rttMs } of pc.peerOffsets().values()) u = Math.max(u, rttMs / 2);
    return u;
  }

  /** The clock of the process's current life (null while it is down). */
  get lifeClock(): Clock | null {
    return this.life?.clock ?? null;
  }

  /** Lock grants to queued waiters checked against their wait lease, over every life. */
  get waitGrantsChecked(): number {
    return this.audits.reduce((n, a) => n + a.checked, 0);
  }

  /** The process is stopped now: a promise that settles when it dies (for clients that wait). */
  died(): Promise<'crashed'> {
    return this.life?.died ?? Promise.resolve('crashed');
  }

  start(): void {
    if (this.life !== null) return;
    const life = new Life(this.incarnation, this);
    this.life = life;
    this.post(life, this.host.rng.int(1, 10_000), 'start', () => this.open(life));
  }

  crash(kind: 'power' | 'process'): void {
    const life = this.life;
    if (life === null) return;
    life.kill();
    this.life = null;
    this.incarnation++;
    this.crashes++;
    this.stall.reset();
    const lost = this.disk.crash(this.host.tornWriteRate, kind);
    if (this.memory) {
      // Kept in memory only: everything is gone with the process.
      this.disk.wipe('all');
      this.blobs.clear();
    }
    this.host.trace.note(
      this.host.queue.now,
      `n${this.id} crash ${kind}${lost === null ? '' : ` (${lost.what})`}`,
    );
  }

  /** A message from the network. */
  deliver(env: Envelope): void {
    const life = this.life;
    if (life === null) return;
    this.whenRunning(life, 'deliver', () => {
      const g = life.group;
      if (g === null || !g.running) return;
      if (env.chunks === undefined) {
        g.receive(env.msg);
        return;
      }
      const chunks = env.chunks;
      async function* stream(): AsyncIterable<Uint8Array> {
        for (const c of chunks) yield c;
      }
      g.receiveSnapshot(env.msg as Extract<Message, { type: 'snapshot' }>, stream()).catch((e: unknown) => {
        if (!life.dead && !(e instanceof HiqliteError)) this.host.failLater(e);
      });
    });
  }

  private open(life: Life): void {
    const disk = this.disk;
    // Uncommitted snapshot bytes did not survive the crash (the product deletes stray temp files).
    for (const path of [...this.blobs.keys()]) {
      if (!disk.committed.some((s) => s.path === path)) this.blobs.delete(path);
    }
    const log = disk.log;
    const snapshot = disk.committed[disk.committed.length - 1] ?? null;
    const decision = decideStart({
      hardState: log.hardState,
      lastIndex: (log.purgedIndex + log.entries.length) as LogIndex,
      hasSnapshot: snapshot !== null,
      // The cache state machine lives in memory: rebuilt from the snapshot and the log at start.
      appliedIndex: 0 as LogIndex,
      hasClusterId: true,
      logUncovered: lostLocalState(
        {
          firstIndex: () => (log.purgedIndex + 1) as LogIndex,
          lastIndex: () => (log.purgedIndex + log.entries.length) as LogIndex,
        },
        { latest: () => snapshot },
        0 as LogIndex,
      ),
    });
    // Nothing in this simulation deletes acknowledged state (no wipes): a discard would be the
    // disk or the runtime losing what it promised to keep.
    if (decision.discard !== null)
      fail('durability', `n${this.id} would discard its cache state: ${decision.discard}`);
    const logStore = new SimLogStore(disk, life);
    life.logStore = logStore;
    const clock = this.clock(life);
    life.clock = clock;
    // The cluster's clock (the median of the nodes' clocks) log time follows, as the node has it.
    const peerClocks = new PeerClocks({
      clock,
      log: SILENT,
      intervalMs: this.host.cfg(this.id).clockProbeIntervalMs,
      peers: this.host.membership.voters.filter((id) => id !== this.id),
      askWallMs: (peer, timeoutMs) => this.askWallMs(life, peer, timeoutMs),
    });
    peerClocks.start();
    life.peerClocks = peerClocks;
    const snapshots = new SimChunkSnapshotStore(this, life);
    let audited: CacheGroupType | null = null;
    const audit = new WaitLeaseAudit(
      this.id,
      () => (audited === null ? 0 : audited.sm.clockMs()),
      (e) => {
        if (!life.dead) this.host.failLater(e);
      },
    );
    this.audits.push(audit);
    const group = CacheGroup.onStorage(
      {
        cfg: this.host.cfg(this.id),
        clock,
        clusterWallMs: (tieBreak) => peerClocks.wallMs(tieBreak),
        clusterClock: peerClocks,
        log: SILENT,
        forward: (leader, data, timeoutMs) => this.forward(life, leader, data, timeoutMs),
        noLeaderError: () => new HiqliteError('HQL_UNAVAILABLE', 'no leader known', { retryable: true }),
        onFatal: (e) => {
          if (!life.dead) this.host.failLater(e);
        },
        random: this.host.rng.fork(),
        defer: (fn) => this.post(life, 0, 'flush', fn),
        plantedBugs: this.host.plantedBugs,
        onLockGranted: (g) => audit.granted(g),
      },
      { logStore, snapshots, start: decision },
    );
    audited = group;
    group.observe(audit);
    // Provisioned with the group's membership (as the SQL simulator's nodes) at the first start;
    // a memory node that restarts knows nothing and joins again.
    // With cacheLoss the group is formed as the product forms it: node 1 founds it alone and the
    // others join (every membership change is then in the log, as a node that lost its state and
    // is sent the log must learn it).
    const rejoin = this.startsFresh(life.incarnation);
    const founding = this.host.cacheLoss && this.id === 1 && life.incarnation === 0;
    const membership = rejoin
      ? { voters: [], learners: [] }
      : founding
        ? { voters: [this.id], learners: [] }
        : this.host.membership;
    group.start(membership, this.transport(life), rejoin ? 'join' : founding ? 'bootstrap' : 'keep').then(
      () => {
        if (life.dead) return;
        life.group = group;
        if (founding) group.group.campaign();
        if (rejoin) this.runJoin(life, group, clock);
        if (this.host.cacheLoss) this.startWatchdog(life, group, clock);
        const st = group.group.status();
        this.host.trace.note(
          this.host.queue.now,
          `n${this.id} start term=${st.term} commit=${st.commitIndex} applied=${group.sm.appliedIndex()} first=${st.firstIndex} last=${st.lastIndex}`,
        );
      },
      (e: unknown) => {
        if (!life.dead) this.host.failLater(e);
      },
    );
  }

  /** Virtual µs for `delayMs` of this node's clock. */
  private delayUs(delayMs: number): number {
    return Math.max(0, Math.round((delayMs * 1000) / this.clockShape.rate));
  }

  private post(life: Life, delayUs: number, kind: string, fn: () => void): void {
    this.host.queue.after(delayUs, kind, this.id, () => this.whenRunning(life, kind, fn));
  }

  /** Monotonic time at this node's rate; wall time offset from the others' (not drifting). */
  private clock(life: Life): Clock {
    const queue = this.host.queue;
    const { rate } = this.clockShape;
    return {
      monotonicMs: () => (queue.now / 1000) * rate,
      wallMs: () => this.wallMs(),
      ...agendaTimers((delayMs, fire) => this.post(life, this.delayUs(delayMs), 'timer', fire)),
    };
  }

  private transport(life: Life): GroupTransport {
    const inc = life.incarnation;
    return {
      send: (_group, msg) => {
        if (life.dead) return;
        if (!life.refounded) checkSentDurable(this.id, this.disk.log, (i) => life.logStore?.termAt(i), msg);
        this.host.network.send({ msg, snapshot: null, senderIncarnation: inc, report: null });
      },
      sendSnapshot: async (_group, msg, { path }) => {
        if (life.dead) return NEVER;
        if (!life.refounded) checkSentDurable(this.id, this.disk.log, (i) => life.logStore?.termAt(i), msg);
        const store = life.refounded && life.group !== null ? chunkStoreOf(life.group.snapshots) : null;
        let blob = this.blobs.get(path);
        if (store !== null) {
          blob = [];
          for await (const c of store.chunks(path)) blob.push(c);
        }
        if (blob === undefined) fail('ready-contract', `n${this.id}: no snapshot at ${path} to send`);
        return new Promise<boolean>((resolve) => {
          const report = (ok: boolean) => life.whenRunning('snapshot-report', () => resolve(ok));
          this.host.network.send({ msg, snapshot: null, chunks: [...blob], senderIncarnation: inc, report });
        });
      },
    };
  }

  /** The API port's `ping` of a peer: its wall clock when the question reaches it (null: no answer). */
  private askWallMs(life: Life, peer: number, timeoutMs: number): Promise<unknown> {
    return this.request(life, peer as NodeId, timeoutMs, (target, answer) => {
      target.whenAlive(() => answer(target.wallMs()));
    });
  }

  /** This node's wall clock now (its offset from the simulation's). */
  wallMs(): number {
    return WALL_EPOCH_MS + this.clockShape.offsetMs + Math.floor(this.host.queue.now / 1000);
  }

  /** Runs `fn` in this node's current life when it runs (never while it is down). */
  whenAlive(fn: () => void): void {
    const life = this.life;
    if (life !== null) this.whenRunning(life, 'api', fn);
  }

  /**
   * A request from this node to `to`'s API port and its answer, across the network: `handle`
   * runs on `to` when the request arrives and answers (or not); no answer within `timeoutMs`
   * rejects with HQL_TIMEOUT (retryable). The answer reaches the caller only while its process runs.
   */
  private request<T>(
    life: Life,
    to: NodeId,
    timeoutMs: number,
    handle: (target: CacheSimNode, answer: (v: T) => void, refuse: (e: HiqliteError) => void) => void,
  ): Promise<T> {
    const { network } = this.host;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) =>
        life.whenRunning('api-answer', () => {
          if (settled) return;
          settled = true;
          fn();
        });
      this.post(life, this.delayUs(timeoutMs), 'api-timeout', () =>
        settle(() => reject(new HiqliteError('HQL_TIMEOUT', `no answer from n${to}`, { retryable: true }))),
      );
      network.sendApi(this.id, to, () => {
        const target = this.host.node(to);
        if (target === undefined) return;
        handle(
          target,
          (v) => network.sendApi(to, this.id, () => settle(() => resolve(v))),
          (e) => network.sendApi(to, this.id, () => settle(() => reject(e))),
        );
      });
    });
  }

  /**
   * The product's join procedure (src/node/join-procedure.ts, as `HiqliteNode.ensureMembership`
   * runs it): ask the leader to add this node as a learner (it removes it first if it is still a
   * member), wait until the entry that added it is applied, ask to be promoted once caught up.
   * Its requests cross the network; it ends with the process.
   */
  private runJoin(life: Life, group: CacheGroupType, clock: Clock): void {
    const gone = new Error('the process died');
    const check = () => {
      if (life.dead) throw gone;
    };
    const host = this.host;
    joinGroup(
      {
        nodeId: this.id,
        group: 'cache',
        stayLearner: false,
        // The group's Raft group now: a refound replaces it.
        raft: { applied: () => group.group.applied(), status: () => group.group.status() },
        join: {
          get state() {
            return group.join.state;
          },
          added: async (index) => {
            check();
            host.onJoin('added');
            host.trace.note(host.queue.now, `n${this.id} added back as learner at ${index}`);
            await group.join.added(index);
          },
          complete: async () => {
            check();
            host.onJoin('rejoined');
            host.trace.note(host.queue.now, `n${this.id} rejoined`);
            await group.join.complete();
          },
        },
        request: (leader, req, timeoutMs) => {
          check();
          return this.request<LogIndex | null>(life, leader, timeoutMs, (target, answer, refuse) =>
            target.whenAlive(() => {
              const g = target.group;
              if (g === null || !g.running) return;
              if (g.group.status().role !== 'leader') {
                refuse(new HiqliteError('HQL_NOT_LEADER', `n${leader} does not lead`, { retryable: true }));
                return;
              }
              const done =
                req.op === 'join'
                  ? addAsLearner(g.group, this.id, timeoutMs, QUIET, 'cache')
                  : promoteLearner(g.group, this.id, timeoutMs, QUIET, 'cache').then(() => null);
              done.then(answer, (e: unknown) => {
                if (e instanceof HiqliteError) refuse(e);
                else host.failLater(e);
              });
            }),
          );
        },
        findLeader: async () => {
          for (const peer of host.membership.voters) {
            check();
            if (peer === this.id) continue;
            try {
              const leader = await this.request<NodeId | null>(life, peer, 2_000, (t, answer) =>
                t.whenAlive(() => answer(t.group?.group.status().leaderId ?? null)),
              );
              if (leader !== null) return leader;
            } catch {
              // the next one
            }
          }
          return null;
        },
        nowMs: () => clock.monotonicMs(),
        sleep: (ms) => new Promise((resolve) => clock.setTimer(resolve, ms)),
        checkCancelled: check,
        ...(this.host.cacheLoss
          ? {
              // HiqliteNode.cacheLeftBehind and cacheMayFound, through cache-refounding.ts.
              // HiqliteNode.cacheGroupDead.
              groupDead: async () => {
                check();
                const voters = group.group.status().membership.voters;
                if (voters.length === 0) return false;
                const { dead } = await votersGoneFromCacheGroup(this.asking(life), voters, {
                  selfAbstains: abstains(group.join.state, group.group.applied()),
                });
                if (!dead || life.dead) return false;
                await this.refoundHere(life, group, 'join');
                return true;
              },
              leftBehind: async (leader: NodeId) => {
                check();
                const a = await this.asking(life).ask(leader);
                if (life.dead) return false;
                if (!leadsSaying(a, leader)) return null;
                if (!leftBehindBy(a, leader, this.id)) return false;
                await this.refoundHere(life, group, 'join');
                return true;
              },
              ...(this.id === 1
                ? {
                    mayFound: async () => {
                      check();
                      const bug = this.host.foundingBug;
                      const asking = this.asking(life);
                      const proven =
                        bug === 'foundWithoutProof' ||
                        (await provenNoCacheGroup(bug === 'foundOnSilence' ? silenceAsNone(asking) : asking, {
                          deadline: clock.monotonicMs(),
                          clock,
                          sleep: (ms) => new Promise((resolve) => clock.setTimer(resolve, ms)),
                          retryMs: 500,
                          checkCancelled: check,
                        }));
                      if (!proven || life.dead) return false;
                      await this.refoundHere(life, group, 'found');
                      group.group.campaign();
                      return true;
                    },
                  }
                : {}),
            }
          : {}),
      },
      Number.POSITIVE_INFINITY,
    ).catch((e: unknown) => {
      if (e !== gone && !life.dead) host.failLater(e);
    });
  }

  /** What this node answers about its cache group (the API port's `leader`; cache-refounding.ts). */
  answer(): CacheLeaderAnswer {
    const life = this.life;
    const g = life?.group ?? null;
    const running = g !== null && g.running;
    const st = running ? g.group.status() : undefined;
    // A memory node that restarted knows it has no state before it opens the group.
    const abstaining = running && abstains(g.join.state, g.group.applied());
    return cacheGroupAnswer(st, {
      me: this.id,
      leaderId: st?.leaderId ?? null,
      freshWhileClosed: this.startsFresh(this.incarnation),
      abstains: abstaining,
    });
  }

  /** Whether this node starts life `incarnation` without state of the group, and joins it. */
  private startsFresh(incarnation: number): boolean {
    return this.memory && (incarnation > 0 || (this.host.cacheLoss && this.id !== 1));
  }

  /** How this node asks the others about their cache group (2 s each, across the network). */
  private asking(life: Life): CacheAsking {
    return {
      nodeId: this.id,
      nodes: this.host.membership.voters,
      ask: (id) =>
        this.request<CacheLeaderAnswer>(life, id, 2_000, (t, answer) =>
          t.whenAlive(() => answer(t.answer())),
        ).catch(() => null),
    };
  }

  /**
   * Drops this node's state of the group (the product's CacheGroup.refound, as HiqliteNode's
   * dropCacheState): `found` founds it anew here (node 1), `join` joins the group founded anew.
   * What the disk held of the group before is gone with it.
   */
  private async refoundHere(life: Life, group: CacheGroupType, how: 'join' | 'found'): Promise<void> {
    if (life.dead) return;
    // What the group of before wrote is gone, and so is what it still writes while it closes
    // (a log write may be in flight: seed 821 of the planted foundOnSilence).
    this.disk.drop(life);
    this.blobs.clear();
    life.refounded = true;
    this.host.trace.note(this.host.queue.now, `n${this.id} drops its cache state (${how})`);
    this.host.onRefound(this.id, how);
    await group.refound(
      how === 'found' ? { voters: [this.id], learners: [] } : { voters: [], learners: [] },
      this.transport(life),
      joinKind(true, how === 'found'),
    );
  }

  /** The product's watchdog of an in-memory group that can elect no leader again (CacheWatchdog). */
  private startWatchdog(life: Life, group: CacheGroupType, clock: Clock): void {
    const cfg = this.host.cfg(this.id);
    life.watchdog = new CacheWatchdog({
      asking: this.asking(life),
      clock,
      electionTimeoutMs: cfg.electionTimeoutMs,
      watched: () => {
        if (life.dead || !group.running || group.join.state !== null) return null;
        const st = group.group.status();
        return {
          leaderId: st.leaderId,
          voters: st.membership.voters,
          commitIndex: st.commitIndex,
          lastIndex: st.lastIndex,
        };
      },
      onDead: async () => {
        if (life.dead) return;
        await this.refoundHere(life, group, 'join');
        if (!life.dead) this.runJoin(life, group, clock);
      },
      log: QUIET,
    });
    life.watchdog.start();
  }

  /**
   * The API port's `propose` to the leader: the request and its answer cross the network; no
   * answer within `timeoutMs` rejects (sent, outcome unknown), as a TCP request does.
   */
  private forward(
    life: Life,
    leader: NodeId,
    data: Uint8Array,
    timeoutMs: number,
  ): Promise<Forwarded<{ index: number; result: CacheResult }>> {
    type Answer = Forwarded<{ index: number; result: CacheResult }>;
    if (leader === this.id)
      return Promise.reject(new HiqliteError('HQL_INTERNAL', 'forward to itself', { retryable: false }));
    return this.request<Answer>(life, leader, timeoutMs, (target, answer, _refuse) =>
      target.whenAlive(() => {
        const g = target.group;
        if (g === null || !g.running) return;
        g.proposeHere(data, timeoutMs).then(
          (value) => answer({ ok: true, value }),
          (e: unknown) => {
            if (e instanceof HiqliteError) answer({ ok: false, error: e });
            // Anything else is the runtime's own failure: the run fails with it.
            else this.host.failLater(e);
          },
        );
      }),
    );
  }
}

/**
 * The snapshot store of one process life on the simulated disk, chunk by chunk (as the cache
 * group writes and streams its snapshots): bytes are written at once, a commit is a disk write
 * like any other (a crash before it is durable loses it), the newest two are kept.
 */
class SimChunkSnapshotStore implements ChunkSnapshotStore {
  constructor(
    private readonly node: CacheSimNode,
    private readonly life: ProcessLife,
  ) {}

  latest(): StoredSnapshot | null {
    const c = this.node.disk.committed;
    return c[c.length - 1] ?? null;
  }

  tempPath(): string {
    const path = this.node.disk.tempPath();
    this.node.blobs.set(path, []);
    return path;
  }

  append(path: string, chunk: Uint8Array): void {
    const blob = this.node.blobs.get(path);
    assert(blob !== undefined, `n${this.node.id}: snapshot ${path} was never opened`);
    blob.push(chunk.slice());
  }

  async *chunks(path: string): AsyncIterable<Uint8Array> {
    const blob = this.node.blobs.get(path);
    if (blob === undefined) fail('ready-contract', `n${this.node.id}: no snapshot at ${path}`);
    for (const c of blob) yield c;
  }

  commit(tempPath: string, meta: SnapshotMeta): Promise<StoredSnapshot> {
    if (this.life.dead) return NEVER;
    const { disk, blobs } = this.node;
    assert(blobs.has(tempPath), `n${this.node.id}: snapshot ${tempPath} to commit is gone`);
    // No checksum: the simulation damages no bytes (memory-snapshot-store.ts computes one).
    const stored: StoredSnapshot = { meta, path: tempPath, sha256: null };
    return disk
      .write(this.life, 1, () => {
        const kept = disk.committed.filter((s) => s.meta.index !== meta.index || s.path === tempPath);
        for (const s of disk.committed) if (!kept.includes(s)) blobs.delete(s.path);
        if (!kept.includes(stored)) kept.push(stored);
        kept.sort((a, b) => a.meta.index - b.meta.index);
        while (kept.length > SNAPSHOTS_KEPT) blobs.delete((kept.shift() as StoredSnapshot).path);
        disk.committed = kept;
      })
      .then(() => stored);
  }

  async discard(path: string): Promise<void> {
    if (!this.node.disk.committed.some((s) => s.path === path)) this.node.blobs.delete(path);
  }

  async check(stored: StoredSnapshot): Promise<SnapshotCheck> {
    return this.node.blobs.has(stored.path)
      ? { ok: true, snapshot: stored }
      : { ok: false, reason: 'it is gone' };
  }

  drop(stored: StoredSnapshot): Promise<void> {
    if (this.life.dead) return NEVER;
    const { disk, blobs } = this.node;
    return disk.write(this.life, 1, () => {
      disk.committed = disk.committed.filter((s) => s.path !== stored.path);
      blobs.delete(stored.path);
    });
  }
}

/** Planted (foundOnSilence): a node that does not answer is taken for one that lost the group. */
function silenceAsNone(a: CacheAsking): CacheAsking {
  return {
    ...a,
    ask: async (id) => (await a.ask(id)) ?? { member: false, leaderId: null, voters: null, learners: null },
  };
}
