/**
 * The cache group in the deterministic simulator: one seed, one run of three nodes, each the
 * product's `CacheGroup` (node.ts) on virtual time, with clients using it as an application
 * does — locks with leases, atomic takes, counters, notifications with listeners, puts with TTLs
 * — under crashes (power loss and killed processes), stalls longer than a lease, partitions,
 * lossy links and clocks that are offset from each other and drift.
 *
 * Phases as in ../simulation.ts: chaos for `chaosUs`, then liveness (faults stop, every node
 * runs, the network heals; within `livenessUs` every client call ends, a leader has committed
 * its whole log and every node applied it). Then the checkers:
 *
 * - lock safety: no two callers were told they hold one key at overlapping times (beyond what
 *   the clocks' offsets and drift allow: leases run on the leaders' clocks), and the fencing
 *   tokens handed out for a key increase with time (a grant handed out after a newer one was
 *   is a grant that had ended: the stale-grant bug of 8be77a7);
 * - cache semantics: of the callers taking one key (`getRemove`), at most one got it, and one
 *   did when every caller had an answer; a counter ends between its acknowledged adds and those
 *   plus the ones whose outcome is unknown, the same on every replica;
 * - notifications: every listener got notifications in log order, each once, and one that
 *   neither lagged nor died got every notification applied after it started;
 * - replicas: every node holds the same state (its snapshot bytes) at the same applied index.
 */
import { createHash } from 'node:crypto';
import { CacheApi, type CacheOps, type DistributedLock } from '../../../src/client/cache-client.js';
import { HiqliteError } from '../../../src/lib/errors.js';
import { Prng, type Random } from '../../../src/lib/prng.js';
import type { CacheGroup, CachePlantedBugs } from '../../../src/node/cache-group.js';
import type { ResolvedNodeConfig } from '../../../src/node/config/config.js';
import { resolveConfig } from '../../../src/node/config/config-resolve.js';
import { abstains } from '../../../src/node/joining-marker.js';
import type { Membership, NodeId } from '../../../src/raft/types.js';
import { runAgenda } from '../agenda.js';
import { EventQueue } from '../event-queue.js';
import { type CheckerName, fail, SimFailure } from '../failure.js';
import { CALM_NETWORK, type Envelope, Network, type NetworkFaults } from '../network.js';
import { Trace } from '../trace.js';
import { CacheSimNode, type CallOutcome, type NodeClockShape } from './node.js';

export const CACHE_PLANTED_BUGS = [
  'handStaleGrants',
  'ackBeforePersist',
  'readBeforeApply',
  'ignoreWaitLeases',
] as const;
export type CachePlantedBugName = (typeof CACHE_PLANTED_BUGS)[number];

/**
 * Bugs of the re-founding, planted in node 1's proof that no node holds the group as the
 * simulated node wires it (node.ts, as HiqliteNode does): a node that does not answer counts as
 * having none, or no proof at all. Run with `cacheLoss` only; the check that catches them is
 * checkGroupDead (a founding while a majority of the group's voters holds it).
 */
export const CACHE_LOSS_PLANTED_BUGS = ['foundOnSilence', 'foundWithoutProof'] as const;
export type CacheLossPlantedBugName = (typeof CACHE_LOSS_PLANTED_BUGS)[number];

function isLossBug(bug: string | undefined): bug is CacheLossPlantedBugName {
  return (CACHE_LOSS_PLANTED_BUGS as readonly (string | undefined)[]).includes(bug);
}

export interface CacheSimOptions {
  readonly chaosMs?: number;
  /**
   * Every node keeps the group in memory and a crash may take a majority at once: the group is
   * lost and founded anew by the product's re-founding (cache-refounding.ts). What the clients
   * wrote may be lost by design, so only the counter writes (unchecked); the checks are that no
   * older group commits once a newer one did (`bootstrap-safety`), identical replicas, liveness.
   */
  readonly cacheLoss?: boolean;
  /** A bug of CACHE_LOSS_PLANTED_BUGS runs with `cacheLoss` whatever that option says. */
  readonly plantedBug?: CachePlantedBugName | CacheLossPlantedBugName;
  readonly traceLines?: number;
}

export interface CacheRunStats {
  virtualMs: number;
  events: number;
  crashes: number;
  pauses: number;
  partitions: number;
  leaders: number;
  snapshotsInstalled: number;
  locksHeld: number;
  /** Locks held through the client API whose `lost` fired before the holder was done. */
  locksLost: number;
  lockTimeouts: number;
  /** Lock grants to queued waiters checked against the waiter's wait lease (wait-lease-audit.ts). */
  waitGrantsChecked: number;
  takes: number;
  counterAdds: number;
  linearizableReads: number;
  notifications: number;
  notificationsReceived: number;
  listenersLagged: number;
  unknownOutcomes: number;
  /** Memory nodes added back as learners after a restart, and those whose join completed. */
  joins: number;
  rejoined: number;
  /** Nodes that dropped their state of a group that lost its majority (cacheLoss), and foundings anew. */
  dropped: number;
  refounded: number;
}

export interface CacheSeedResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure: {
    readonly checker: CheckerName;
    readonly message: string;
    readonly trace: string[];
  } | null;
  readonly traceDigest: string;
  readonly profile: string;
  readonly stats: CacheRunStats;
}

interface CacheProfile {
  readonly nodeIds: readonly NodeId[];
  readonly chaosUs: number;
  readonly livenessUs: number;
  readonly network: NetworkFaults;
  readonly disk: {
    diskLatencyUsMin: number;
    diskLatencyUsMax: number;
    slowDiskRate: number;
    slowDiskUsMax: number;
  };
  readonly tornWriteRate: number;
  readonly clocks: readonly NodeClockShape[];
  /** The node whose clock is seconds off, if any (its offset does not count for lock safety). */
  readonly outlier: NodeId | null;
  readonly clockProbeIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly expireIntervalMs: number;
  readonly logsUntilSnapshot: number;
  readonly batchCommandsMax: number;
  readonly leaseMsMin: number;
  readonly leaseMsMax: number;
  /** A listener takes up to this long per notification (0: at once), with this buffer. */
  readonly listenerSlowUs: number;
  readonly listenerBufferMax: number;
  readonly crashEveryUs: number;
  readonly pauseEveryUs: number;
  readonly pauseUsMax: number;
  readonly partitionEveryUs: number;
  readonly plantedBugs: CachePlantedBugs;
  /** A bug of node 1's founding proof (CACHE_LOSS_PLANTED_BUGS), or null. */
  readonly foundingBug: CacheLossPlantedBugName | null;
  /** Nodes with `cache_storage_disk = false`: a restart loses everything and joins again. */
  readonly memoryNodes: readonly NodeId[];
  /** `cache_lock_wait_lease_ms`: a waiter of a crashed node is passed over once it ran out. */
  readonly lockWaitLeaseMs: number;
  /** CacheSimOptions.cacheLoss. */
  readonly cacheLoss: boolean;
}

const CHAOS_MS_DEFAULT = 4_000;
/** With cacheLoss: long enough for several groups lost and founded anew (each takes seconds). */
const CHAOS_MS_LOSS_DEFAULT = 20_000;
const LIVENESS_MS = 30_000;
const EVENTS_MAX = 5_000_000;
const QUEUE_MAX = 500_000;
const LIVENESS_STEP_US = 50_000;
const LOCK_KEYS = ['L0', 'L1'] as const;
/** Longest a client waits for a lock (every client call ends, so liveness can be judged). */
const LOCK_WAIT_MS_MAX = 3_000;

function makeProfile(rng: Random, o: CacheSimOptions): CacheProfile {
  const nodeIds = [1, 2, 3] as NodeId[];
  const skewMs = rng.pick([0, 0, 5, 20, 50]);
  const driftPct = rng.pick([0, 0, 0.1, 0.5]);
  // In some seeds one node's clock is far off (seconds): the cluster's clock (the median) must
  // keep log time with the others'.
  const outlier = rng.chance(0.3) ? rng.pick(nodeIds) : null;
  const outlierMs = rng.pick([-1, 1]) * rng.int(500, 5_001);
  const clocks = nodeIds.map((id) => ({
    offsetMs: (skewMs === 0 ? 0 : rng.int(-skewMs, skewMs + 1)) + (id === outlier ? outlierMs : 0),
    rate: 1 + (rng.next() * 2 - 1) * (driftPct / 100),
  }));
  const heartbeatIntervalMs = rng.pick([20, 30, 50]);
  const leaseMsMin = rng.pick([150, 300, 600]);
  const bug = o.plantedBug;
  const profile = {
    nodeIds,
    chaosUs: (o.chaosMs ?? (o.cacheLoss === true ? CHAOS_MS_LOSS_DEFAULT : CHAOS_MS_DEFAULT)) * 1000,
    livenessUs: LIVENESS_MS * 1000,
    network: {
      dropRate: rng.pick([0, 0, 0.01, 0.05]),
      dupRate: rng.pick([0, 0.01]),
      latencyUsMin: 200,
      latencyUsMax: rng.pick([1_000, 3_000, 8_000]),
      longDelayRate: rng.pick([0, 0.01]),
      longDelayUsMax: 200_000,
    },
    disk: {
      diskLatencyUsMin: 50,
      diskLatencyUsMax: rng.pick([500, 2_000, 5_000]),
      slowDiskRate: rng.pick([0, 0.01]),
      slowDiskUsMax: 50_000,
    },
    tornWriteRate: rng.pick([0, 0.5]),
    clocks,
    outlier,
    clockProbeIntervalMs: rng.pick([100, 500, 2_000]),
    heartbeatIntervalMs,
    electionTimeoutMs: heartbeatIntervalMs * rng.pick([3, 5, 10]),
    expireIntervalMs: rng.pick([10, 50, 200]),
    logsUntilSnapshot: rng.pick([20, 100, 1_000]),
    batchCommandsMax: rng.pick([1, 16, 1024]),
    leaseMsMin,
    leaseMsMax: leaseMsMin * 2,
    listenerSlowUs: rng.pick([0, 0, 50_000]),
    listenerBufferMax: rng.pick([2, 16, 1024]),
    crashEveryUs: rng.pick([300_000, 800_000, 2_000_000]),
    pauseEveryUs: rng.pick([200_000, 600_000]),
    pauseUsMax: rng.pick([100_000, 800_000, 2_000_000]),
    partitionEveryUs: rng.pick([400_000, 1_000_000]),
    plantedBugs: bug === undefined || isLossBug(bug) ? {} : { [bug]: true },
    memoryNodes: rng.pick([[], [], [1], [3], [1, 2], [1, 2, 3]] as NodeId[][]),
  };
  // At least three election timeouts (config-resolve.ts); drawn last, so that the other draws
  // of a seed stay what they were.
  const lockWaitLeaseMs = Math.max(3 * profile.electionTimeoutMs, rng.pick([300, 1_000, 10_000]));
  const foundingBug = isLossBug(bug) ? bug : null;
  const cacheLoss = o.cacheLoss === true || foundingBug !== null;
  return {
    ...profile,
    lockWaitLeaseMs,
    cacheLoss,
    foundingBug,
    ...(cacheLoss ? { memoryNodes: nodeIds } : {}),
  };
}

function describeProfile(p: CacheProfile): string {
  const offsets = p.clocks.map((c) => c.offsetMs).join('/');
  const rates = p.clocks.map((c) => c.rate.toFixed(4)).join('/');
  return `${p.cacheLoss ? 'loss ' : ''}${p.memoryNodes.length === 0 ? '' : `memory=${p.memoryNodes.join(',')} `}${p.outlier === null ? '' : `outlier=n${p.outlier} `}probe=${p.clockProbeIntervalMs}ms drop=${p.network.dropRate} lat≤${p.network.latencyUsMax / 1000}ms hb=${p.heartbeatIntervalMs}ms election=${p.electionTimeoutMs}ms expire=${p.expireIntervalMs}ms snapshotEvery=${p.logsUntilSnapshot} batch=${p.batchCommandsMax} lease=${p.leaseMsMin}-${p.leaseMsMax}ms waitLease=${p.lockWaitLeaseMs}ms clocks=${offsets}ms×${rates} pause≤${p.pauseUsMax / 1000}ms${Object.keys(p.plantedBugs).length > 0 ? ` bugs=${Object.keys(p.plantedBugs).join(',')}` : ''}${p.foundingBug === null ? '' : ` bugs=${p.foundingBug}`}`;
}

export function runCacheSeed(seed: number, options: CacheSimOptions = {}): Promise<CacheSeedResult> {
  return new CacheSimulation(seed, options).run();
}

/**
 * Runs seeds with `bug` planted from `first` until one fails and passes without it (a seed that
 * fails either way is not the bug's catch), at most `seedsMax`.
 */
export async function huntCacheBug(
  bug: CachePlantedBugName | CacheLossPlantedBugName,
  o: { readonly first?: number; readonly seedsMax: number; readonly options?: CacheSimOptions },
): Promise<{ readonly caught: CacheSeedResult | null; readonly seedsRun: number }> {
  const first = o.first ?? 1;
  for (let seed = first; seed < first + o.seedsMax; seed++) {
    const r = await runCacheSeed(seed, { ...o.options, plantedBug: bug });
    if (!r.ok && (await runCacheSeed(seed, o.options)).ok) return { caught: r, seedsRun: seed - first + 1 };
  }
  return { caught: null, seedsRun: o.seedsMax };
}

/**
 * What one caller was told: it holds `key` with `token` from `startUs` until `endUs` (virtual):
 * the end of the part of the lease it used (its own lock waiters), or its last use (the client API).
 */
interface Hold {
  readonly key: string;
  readonly token: number;
  readonly node: NodeId;
  readonly client: string;
  readonly startUs: number;
  endUs: number;
  /** How far the nodes' ideas of each other's clocks could be off at the grant (the largest). */
  readonly clockErrorUs: number;
}

interface Take {
  readonly key: string;
  winners: string[];
  answered: number;
  unknown: number;
  readonly takers: number;
}

interface ListenerRecord {
  readonly node: NodeId;
  readonly incarnation: number;
  readonly startSeq: number;
  lastSeq: number;
  received: number;
  lagged: boolean;
  ended: boolean;
  readonly sub: ReturnType<CacheGroup['subscribe']>;
}

class CacheSimulation {
  readonly queue = new EventQueue(QUEUE_MAX);
  readonly trace: Trace;
  readonly profile: CacheProfile;
  readonly network: Network;
  readonly nodes = new Map<NodeId, CacheSimNode>();
  private readonly rngNemesis: Random;
  private readonly rngClients: Random;
  private readonly configs = new Map<NodeId, ResolvedNodeConfig>();
  private readonly membership: Membership;
  private failedLater: unknown = null;
  private events = 0;
  private chaos = true;
  private pendingCalls = 0;
  private readonly holds: Hold[] = [];
  private readonly takes: Take[] = [];
  private readonly listeners: ListenerRecord[] = [];
  private counterAcked = 0n;
  private counterUnknown = 0n;
  /** Adds sent and not answered yet. */
  private counterInflight = 0n;
  private readonly leadersSeen = new Set<string>();
  readonly stats: CacheRunStats = {
    virtualMs: 0,
    events: 0,
    crashes: 0,
    pauses: 0,
    partitions: 0,
    leaders: 0,
    snapshotsInstalled: 0,
    locksHeld: 0,
    locksLost: 0,
    lockTimeouts: 0,
    waitGrantsChecked: 0,
    takes: 0,
    counterAdds: 0,
    linearizableReads: 0,
    notifications: 0,
    notificationsReceived: 0,
    listenersLagged: 0,
    unknownOutcomes: 0,
    joins: 0,
    rejoined: 0,
    dropped: 0,
    refounded: 0,
  };
  /** cacheLoss: per founding of the group (its founding time), when a leader of it last committed. */
  private readonly foundings = new Map<number, { firstCommitUs: number; lastCommitUs: number }>();
  /** cacheLoss: nodes that restarted cut off from the others, until when (virtual µs). */
  private readonly cutOffUntilUs = new Map<NodeId, number>();
  /** cacheLoss: when node 1 founded the group anew (virtual µs), in order. */
  private readonly foundedAtUs: number[] = [];
  private readonly leaderCommits = new Map<string, number>();

  constructor(
    readonly seed: number,
    options: CacheSimOptions,
  ) {
    const root = new Prng(seed);
    this.profile = makeProfile(root.fork(), options);
    this.trace = new Trace(options.traceLines ?? 80);
    this.membership = { voters: [...this.profile.nodeIds], learners: [] };
    const rngNet = root.fork();
    this.network = new Network(this.queue, rngNet, this.profile.network, {
      deliver: (env) => this.deliver(env),
      lost: (env) => this.lost(env),
    });
    const rngNodes = root.fork();
    this.rngNemesis = root.fork();
    this.rngClients = root.fork();
    const p = this.profile;
    for (const id of p.nodeIds) this.configs.set(id, this.config(id));
    const host = {
      queue: this.queue,
      rng: rngNodes,
      network: this.network,
      trace: this.trace,
      cfg: (id: NodeId) => this.configs.get(id) as ResolvedNodeConfig,
      membership: this.membership,
      diskTiming: p.disk,
      tornWriteRate: p.tornWriteRate,
      plantedBugs: p.plantedBugs,
      node: (id: NodeId) => this.nodes.get(id),
      cacheLoss: this.profile.cacheLoss,
      foundingBug: this.profile.foundingBug,
      onRefound: (id: NodeId, how: 'join' | 'found') => {
        if (how === 'found') {
          this.checkGroupDead(id);
          this.stats.refounded++;
          this.foundedAtUs.push(this.queue.now);
        } else this.stats.dropped++;
      },
      onJoin: (what: 'added' | 'rejoined') => {
        if (what === 'added') this.stats.joins++;
        else this.stats.rejoined++;
      },
      failLater: (e: unknown) => {
        this.failedLater ??= e;
      },
    };
    p.nodeIds.forEach((id, i) => {
      this.nodes.set(
        id,
        new CacheSimNode(id, host, p.clocks[i] as NodeClockShape, p.memoryNodes.includes(id)),
      );
    });
  }

  private config(id: NodeId): ResolvedNodeConfig {
    const p = this.profile;
    return resolveConfig({
      nodeId: id,
      nodes: p.nodeIds.map((n) => ({ id: n, addrRaft: `127.0.0.${n}:8100`, addrApi: `127.0.0.${n}:8200` })),
      secretRaft: 'raft-secret-0123456789',
      secretApi: 'api-secret-0123456789',
      sqlite: false,
      cacheStorageDisk: false,
      tickIntervalMs: 10,
      heartbeatIntervalMs: p.heartbeatIntervalMs,
      electionTimeoutMs: p.electionTimeoutMs,
      proposalTimeoutMs: 2_000,
      readTimeoutMs: 2_000,
      cacheExpireIntervalMs: p.expireIntervalMs,
      clockProbeIntervalMs: p.clockProbeIntervalMs,
      logsUntilSnapshot: p.logsUntilSnapshot,
      cacheBatchCommandsMax: p.batchCommandsMax,
      cacheLockWaitLeaseMs: p.lockWaitLeaseMs,
    });
  }

  async run(): Promise<CacheSeedResult> {
    let failure: CacheSeedResult['failure'] = null;
    try {
      for (const n of this.nodes.values()) n.start();
      this.startClients();
      this.startNemesis();
      await this.runUntil(this.profile.chaosUs);
      await this.liveness();
      await this.finalChecks();
    } catch (e) {
      const f = e instanceof SimFailure ? e : null;
      failure = {
        checker: f?.checker ?? 'core-exception',
        message: f?.message ?? (e instanceof Error ? (e.stack ?? e.message) : String(e)),
        trace: this.trace.recent(),
      };
    }
    this.stats.virtualMs = Math.round(this.queue.now / 1000);
    this.stats.events = this.events;
    return {
      seed: this.seed,
      ok: failure === null,
      failure,
      traceDigest: this.trace.digest,
      profile: describeProfile(this.profile),
      stats: this.stats,
    };
  }

  private runUntil(untilUs: number): Promise<void> {
    return runAgenda({
      queue: this.queue,
      trace: this.trace,
      untilUs,
      eventsMax: EVENTS_MAX,
      count: () => ++this.events,
      after: () => {
        if (this.failedLater !== null) throw this.failedLater;
        this.observeLeaders();
      },
    });
  }

  private observeLeaders(): void {
    for (const n of this.nodes.values()) {
      const st = n.group?.running === true ? n.group.group.status() : null;
      if (st?.role !== 'leader') continue;
      if (this.profile.cacheLoss) this.observeFounding(n, st.term, st.commitIndex);
      const k = `${n.id}/${st.term}`;
      if (this.leadersSeen.has(k)) continue;
      this.leadersSeen.add(k);
      this.stats.leaders++;
      this.trace.note(this.queue.now, `n${n.id} leader term=${st.term} commit=${st.commitIndex}`);
    }
  }

  /**
   * cacheLoss: a group founded anew while another node still held the one before would be two
   * groups at once (two holders of one lock, two answers to one read). Once a leader of a newer
   * founding committed, no leader of an older one may commit again: it lost its majority for good.
   */
  private observeFounding(n: CacheSimNode, term: number, commitIndex: number): void {
    const founded = Math.floor((n.group as CacheGroup).sm.tokenFloor() / 1000);
    if (founded === 0) return;
    const key = `${n.id}/${term}/${founded}`;
    const before = this.leaderCommits.get(key);
    this.leaderCommits.set(key, commitIndex);
    if (before === undefined || commitIndex <= before) return;
    const now = this.queue.now;
    const f = this.foundings.get(founded);
    if (f === undefined) this.foundings.set(founded, { firstCommitUs: now, lastCommitUs: now });
    else f.lastCommitUs = now;
    for (const [other, g] of this.foundings) {
      if (other > founded && g.firstCommitUs < now)
        fail(
          'bootstrap-safety',
          `n${n.id}, leader of the cache group founded at ${founded} (term ${term}), committed ${commitIndex} after a group founded at ${other} had committed (${fmt(g.firstCommitUs)})`,
        );
    }
  }

  /**
   * cacheLoss: node 1 founds the group anew only once the group before is dead — no majority of
   * its voters holds it any more, so no leader of it can be elected or commit again. Here the
   * simulation knows every node's memory: the nodes other than the founder that run a copy they
   * vote with (not a joining node's copy, which abstains; a paused node's counts), grouped by the
   * founding they hold (CacheState.foundedAtMs). A founding is alive when, for the voters some
   * holder of it knows, the holders make a majority. `bootstrap-safety` sees a premature founding
   * only if the old group commits again after the new one did; this sees it when it happens.
   */
  private checkGroupDead(founder: NodeId): void {
    const holders = new Map<number, { id: NodeId; voters: readonly NodeId[] }[]>();
    for (const n of this.nodes.values()) {
      const g = n.group;
      if (n.id === founder || g === null || !g.running) continue;
      if (abstains(g.join.state, g.group.applied())) continue;
      const founded = g.sm.tokenFloor();
      if (founded === 0) continue;
      const list = holders.get(founded) ?? [];
      list.push({ id: n.id, voters: g.group.status().membership.voters });
      holders.set(founded, list);
    }
    for (const [founded, list] of holders) {
      const ids = list.map((h) => h.id);
      for (const h of list) {
        const holding = h.voters.filter((v) => ids.includes(v));
        if (holding.length >= Math.floor(h.voters.length / 2) + 1)
          fail(
            'bootstrap-safety',
            `n${founder} founded the cache group anew while the one founded at ${Math.floor(founded / 1000)} lived: n${holding.join(', n')} hold it, a majority of its voters ${h.voters.join(', ')} (as n${h.id} knows them)`,
          );
      }
    }
  }

  private leader(): CacheSimNode | null {
    let best: CacheSimNode | null = null;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const st = n.group?.running === true ? n.group.group.status() : null;
      if (st?.role === 'leader' && st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  // -----------------------------------------------------------------------------------------------
  // Network
  // -----------------------------------------------------------------------------------------------

  private deliver(env: Envelope): void {
    this.trace.message(this.queue.now, env.msg);
    const to = this.nodes.get(env.msg.to);
    if (to === undefined || !to.alive) {
      this.lost(env);
      return;
    }
    to.deliver(env);
    if (env.chunks !== undefined) {
      this.stats.snapshotsInstalled++;
      this.queue.after(1_000, 'snapshot-report', env.msg.from, () => env.report?.(true));
    }
  }

  private lost(env: Envelope): void {
    if (env.chunks !== undefined)
      this.queue.after(5_000, 'snapshot-report', env.msg.from, () => env.report?.(false));
  }

  // -----------------------------------------------------------------------------------------------
  // Nemesis
  // -----------------------------------------------------------------------------------------------

  private startNemesis(): void {
    const p = this.profile;
    const rng = this.rngNemesis;
    const every = (meanUs: number, kind: string, act: () => void) => {
      const next = () => {
        this.queue.after(rng.int(meanUs / 2, (meanUs * 3) / 2), kind, -1, () => {
          if (!this.chaos) return;
          act();
          next();
        });
      };
      next();
    };
    every(p.crashEveryUs, 'nemesis-crash', () => {
      const all = [...this.nodes.values()];
      // While a node restarted cut off from the others, no crash: its join gets to ask, and the
      // others keep the group it cannot reach (a premature founding would make two).
      if (this.cutOffNow()) return;
      const up = all.filter((n) => n.alive);
      if (up.length < 2) return;
      const n = rng.pick(up);
      if (p.cacheLoss) {
        // Often a majority at once: the group is lost and founded anew.
        const victims = rng.chance(0.35) ? [n, rng.pick(up.filter((o) => o !== n))] : [n];
        // Sometimes a lone victim of a group that lives comes back cut off from the others, for
        // 15-20 s: longer than its join procedure takes to ask whether it may found the group
        // (three rounds asking for a leader, 2 s per node, then the founding question). The
        // others keep the group meanwhile (no crash, no other partition): every question gets no
        // answer, and the silent nodes hold a group that lives (a proof that takes silence for
        // "none" founds a second one: 10 of 300 seeds; checkGroupDead).
        const cutOff =
          victims.length === 1 &&
          all.every((o) => o === n || (o.group?.running === true && !o.joining)) &&
          rng.chance(0.5);
        for (const v of victims) {
          this.crashNode(v, rng.chance(0.5) ? 'power' : 'process');
          this.queue.after(rng.int(20_000, 600_000), 'restart', v.id, () => {
            if (!this.chaos) return;
            if (cutOff) {
              this.network.partition(
                [v.id],
                p.nodeIds.filter((id) => id !== v.id),
              );
              this.trace.note(this.queue.now, `isolate n${v.id} at its restart`);
              const forUs = rng.int(15_000_000, 20_000_000);
              this.cutOffUntilUs.set(v.id, this.queue.now + forUs);
              this.queue.after(forUs, 'heal', -1, () => {
                this.network.heal();
                this.trace.note(this.queue.now, 'heal');
              });
            }
            v.start();
          });
        }
        return;
      }
      // A memory node loses everything: only while every other node is up and a member (no
      // join in progress), so a majority always holds what was committed.
      if (n.memory && all.some((o) => o !== n && (o.group === null || o.joining))) return;
      this.crashNode(n, rng.chance(0.5) ? 'power' : 'process');
      this.queue.after(rng.int(20_000, 600_000), 'restart', n.id, () => {
        if (this.chaos) n.start();
      });
    });
    every(p.pauseEveryUs, 'nemesis-pause', () => {
      const up = [...this.nodes.values()].filter((n) => n.alive);
      if (up.length === 0) return;
      // Often the leader (its lease holders' grants then lag) or a waiter's node.
      const leader = this.leader();
      const n = leader !== null && rng.chance(0.3) ? leader : rng.pick(up);
      this.stats.pauses++;
      n.pause(rng.int(10_000, p.pauseUsMax + 1));
    });
    every(p.partitionEveryUs, 'nemesis-partition', () => {
      if (this.cutOffNow()) return;
      const ids = [...p.nodeIds];
      const leader = this.leader();
      const cut = leader !== null && rng.chance(0.4) ? leader.id : rng.pick(ids);
      const others = ids.filter((id) => id !== cut);
      this.stats.partitions++;
      if (rng.chance(0.2)) {
        const other = rng.pick(others);
        this.network.cutLink(cut, other);
        this.trace.note(this.queue.now, `cut n${cut}→n${other}`);
      } else {
        this.network.partition([cut], others);
        this.trace.note(this.queue.now, `isolate n${cut}`);
      }
      this.queue.after(rng.int(50_000, 1_500_000), 'heal', -1, () => {
        this.network.heal();
        this.trace.note(this.queue.now, 'heal');
        // A node cut off at its restart stays so.
        for (const [id, until] of this.cutOffUntilUs) {
          if (until > this.queue.now)
            this.network.partition(
              [id],
              p.nodeIds.filter((o) => o !== id),
            );
        }
      });
    });
  }

  /** cacheLoss: a node restarted cut off from the others and is not back yet. */
  private cutOffNow(): boolean {
    return [...this.cutOffUntilUs.values()].some((t) => t > this.queue.now);
  }

  private crashNode(n: CacheSimNode, kind: 'power' | 'process'): void {
    this.stats.crashes++;
    // A dead caller holds nothing from now on.
    for (const h of this.holds) if (h.node === n.id && h.endUs > this.queue.now) h.endUs = this.queue.now;
    for (const l of this.listeners) if (l.node === n.id && l.incarnation === n.incarnation) l.ended = true;
    n.crash(kind);
  }

  // -----------------------------------------------------------------------------------------------
  // Clients
  // -----------------------------------------------------------------------------------------------

  private startClients(): void {
    const rng = this.rngClients;
    let clientNo = 0;
    for (const n of this.nodes.values()) {
      // One on the node's own lock waiters, one through the client API (renewals, `lost`).
      if (this.profile.cacheLoss) {
        // Locks too: two holders at once only across a founding anew, tokens increasing across it.
        this.spawn(`lock${++clientNo}`, (name) => this.lockClient(n, name, rng.fork()));
        this.spawn(`lock${++clientNo}`, (name) => this.apiLockClient(n, name, rng.fork()));
        this.spawn(`counter${n.id}`, () => this.counterClient(n, rng.fork()));
        continue;
      }
      this.spawn(`lock${++clientNo}`, (name) => this.lockClient(n, name, rng.fork()));
      this.spawn(`lock${++clientNo}`, (name) => this.apiLockClient(n, name, rng.fork()));
      this.spawn(`counter${n.id}`, () => this.counterClient(n, rng.fork()));
      this.spawn(`listen${n.id}`, () => this.listenClient(n, rng.fork()));
    }
    if (this.profile.cacheLoss) return;
    this.spawn('take', () => this.takeClient(rng.fork()));
    this.spawn('notify', () => this.notifyClient(rng.fork()));
    this.spawn('ttl', () => this.ttlClient(rng.fork()));
  }

  /** Runs a client loop; its failure (a checker's) fails the run. */
  private spawn(name: string, loop: (name: string) => Promise<void>): void {
    loop(name).catch((e: unknown) => {
      this.failedLater ??= e;
    });
  }

  /** Virtual sleep of a client (not tied to a process: it only waits for its node to be usable). */
  private sleep(us: number): Promise<void> {
    return new Promise((resolve) =>
      this.queue.after(Math.max(0, Math.round(us)), 'client-sleep', -1, resolve),
    );
  }

  /**
   * One call of a client on its node: waits while the node is down or paused (chaos only),
   * counts as pending until it ends. Null: the phase ended before the node could take it.
   */
  private async call<T>(n: CacheSimNode, fn: (g: CacheGroup) => Promise<T>): Promise<CallOutcome<T> | null> {
    for (;;) {
      if (!this.chaos) return null;
      const p = n.call(fn);
      if (p === null) {
        await this.sleep(20_000);
        continue;
      }
      this.pendingCalls++;
      try {
        const out = await p;
        if (!out.ok && (out.crashed || isUnknown(out.error))) this.stats.unknownOutcomes++;
        return out;
      } finally {
        this.pendingCalls--;
      }
    }
  }

  private async lockClient(n: CacheSimNode, name: string, rng: Random): Promise<void> {
    const p = this.profile;
    let attempt = 0;
    while (this.chaos) {
      const key = rng.pick(LOCK_KEYS);
      const leaseMs = rng.int(p.leaseMsMin, p.leaseMsMax + 1);
      const waitMs = rng.chance(0.2) ? 0 : rng.int(100, LOCK_WAIT_MS_MAX);
      const holderId = `${name}-${++attempt}`;
      const incarnation = n.incarnation;
      const out = await this.call(n, (g) => g.lock({ key, holderId, leaseMs, waitMs }));
      if (out === null) return;
      if (!out.ok || out.value === null) {
        if (!out.ok && out.error instanceof HiqliteError && out.error.code === 'HQL_TIMEOUT')
          this.stats.lockTimeouts++;
        await this.sleep(rng.int(1_000, 50_000));
        continue;
      }
      const grant = out.value;
      if (n.incarnation !== incarnation || !n.alive) continue;
      // The caller uses the lock for part of the lease it was told it has, by its own clock.
      const holdMs = Math.max(1, Math.floor(grant.remainingMs * (0.2 + 0.7 * rng.next())));
      const rate = n.clockShape.rate;
      const hold: Hold = {
        key,
        token: grant.token,
        node: n.id,
        client: holderId,
        startUs: this.queue.now,
        endUs: this.queue.now + Math.ceil((holdMs * 1000) / rate),
        clockErrorUs: this.clockErrorUs(),
      };
      this.holds.push(hold);
      this.stats.locksHeld++;
      this.trace.note(
        this.queue.now,
        `${holderId}@n${n.id} holds ${key} token=${grant.token} for ${holdMs}ms`,
      );
      const released = await new Promise<boolean>((resolve) => {
        if (!n.after(holdMs, 'lock-hold', () => resolve(true))) resolve(false);
        void n.died().then(() => resolve(false));
      });
      if (!released) continue;
      // A release after the lease (a stalled process) is ignored by its token: no harm.
      await this.call(n, (g) => g.writeOk({ type: 'lockRelease', key, token: grant.token }));
    }
  }

  /**
   * A lock held through the client API (`CacheApi.lock`, `DistributedLock`) on its node's clock:
   * often for longer than its lease (renewed at a third of it). The holder uses the lock every
   * few ms and only after reading `lock.lost` right before, as the README tells users to; each
   * use counts as holding it then.
   */
  private async apiLockClient(n: CacheSimNode, name: string, rng: Random): Promise<void> {
    const p = this.profile;
    let attempt = 0;
    while (this.chaos) {
      const clock = n.lifeClock;
      const incarnation = n.incarnation;
      if (clock === null || n.ready === null) {
        await this.sleep(20_000);
        continue;
      }
      const api = new CacheApi(this.opsOf(n), clock, () => `${name}-${++attempt}`);
      const key = rng.pick(LOCK_KEYS);
      const leaseMs = rng.int(p.leaseMsMin, p.leaseMsMax + 1);
      let lock: DistributedLock | null;
      try {
        lock = rng.chance(0.2)
          ? await api.tryLock(key, { leaseMs })
          : await api.lock(key, { leaseMs, waitMs: rng.int(100, LOCK_WAIT_MS_MAX) });
      } catch (e) {
        if (e instanceof HiqliteError && e.code === 'HQL_TIMEOUT') this.stats.lockTimeouts++;
        await this.sleep(rng.int(1_000, 50_000));
        continue;
      }
      if (lock === null || n.incarnation !== incarnation) {
        await this.sleep(rng.int(1_000, 50_000));
        continue;
      }
      const held = lock;
      const hold: Hold = {
        key,
        token: held.token,
        node: n.id,
        client: `${name}-${attempt}`,
        startUs: this.queue.now,
        endUs: this.queue.now,
        clockErrorUs: this.clockErrorUs(),
      };
      this.holds.push(hold);
      this.stats.locksHeld++;
      const holdForMs = Math.floor(leaseMs * (0.2 + 2.8 * rng.next()));
      const startedMs = clock.monotonicMs();
      this.trace.note(
        this.queue.now,
        `${hold.client}@n${n.id} holds ${key} token=${held.token} (api, ${holdForMs}ms)`,
      );
      await new Promise<void>((resolve) => {
        const use = () => {
          if (held.lost.aborted) {
            this.stats.locksLost++;
            resolve();
            return;
          }
          if (!this.chaos || clock.monotonicMs() - startedMs >= holdForMs) {
            resolve();
            return;
          }
          hold.endUs = this.queue.now;
          if (!n.after(rng.int(1, 30), 'lock-use', use, incarnation)) resolve();
        };
        use();
        void n.died().then(() => resolve());
      });
      if (n.incarnation !== incarnation) continue;
      await held.release().catch(() => {});
    }
  }

  /** The client API's cache operations on `n` (as the embedded node's): each a call of this client. */
  private opsOf(n: CacheSimNode): CacheOps {
    const via = async <T>(fn: (g: CacheGroup) => Promise<T>): Promise<T> => {
      const out = await this.call(n, fn);
      if (out === null) throw new HiqliteError('HQL_CLOSED', 'the run ended', { retryable: false });
      if (out.ok) return out.value;
      throw out.crashed
        ? new HiqliteError('HQL_CLOSED', 'the process died', { retryable: false })
        : out.error;
    };
    return {
      cacheWrite: (command, options) => via((g) => g.writeOk(command, options ?? {})),
      cacheRead: (read, consistency) => via(async (g) => g.read(read, consistency)),
      cacheLock: (request, signal) => via((g) => g.lock(request, signal)),
      cacheListen: () => {
        throw new Error('not used by the simulation');
      },
      cacheLocalEntry: (cache, key) => n.group?.getEntry(cache, key) ?? null,
    };
  }

  private async counterClient(n: CacheSimNode, rng: Random): Promise<void> {
    while (this.chaos) {
      // With cacheLoss what was acknowledged may be lost with the group: not checked.
      if (!this.profile.cacheLoss && rng.chance(0.3)) {
        if (!(await this.linearizableCount(n))) return;
        continue;
      }
      const delta = BigInt(rng.int(1, 6));
      this.counterInflight += delta;
      const out = await this.call(n, (g) =>
        g.writeOk({ type: 'counterAdd', counter: 'hits', key: 'k', delta }),
      );
      this.counterInflight -= delta;
      if (out === null) return;
      if (out.ok) this.counterAcked += delta;
      else if (out.crashed || isUnknown(out.error)) this.counterUnknown += delta;
      this.stats.counterAdds++;
      await this.sleep(rng.int(1_000, 40_000));
    }
  }

  /**
   * A linearizable read of the counter: it sees every add acknowledged before it started, and
   * none that was not sent before it ended. False when the phase ended.
   */
  private async linearizableCount(n: CacheSimNode): Promise<boolean> {
    const lower = this.counterAcked;
    const out = await this.call(n, async (g) => {
      await g.readBarrier(2_000);
      return g.counterGet('hits', 'k') ?? 0n;
    });
    if (out === null) return false;
    if (!out.ok) return true;
    this.stats.linearizableReads++;
    const upper = this.counterAcked + this.counterUnknown + this.counterInflight;
    if (out.value < lower || out.value > upper) {
      fail(
        'linearizability',
        `a linearizable read of the counter on n${n.id} saw ${out.value}: acknowledged before it began ${lower}, at most ${upper} sent before it ended`,
      );
    }
    return true;
  }

  /** A value put under a fresh key, then taken by two or three callers on different nodes at once. */
  private async takeClient(rng: Random): Promise<void> {
    let i = 0;
    while (this.chaos) {
      const key = `t${++i}`;
      const producer = rng.pick([...this.nodes.values()]);
      const value = new TextEncoder().encode(`v${i}`);
      const put = await this.call(producer, (g) => g.writeOk({ type: 'put', cache: 'take', key, value }));
      if (put === null) return;
      if (!put.ok) continue;
      const all = [...this.nodes.values()];
      const first = rng.int(0, all.length);
      const takers = Array.from(
        { length: rng.int(2, all.length + 1) },
        (_, k) => all[(first + k) % all.length] as CacheSimNode,
      );
      const take: Take = { key, winners: [], answered: 0, unknown: 0, takers: takers.length };
      this.takes.push(take);
      this.stats.takes++;
      await Promise.all(
        takers.map(async (t) => {
          const out = await this.call(t, (g) => g.writeOk({ type: 'getRemove', cache: 'take', key }));
          if (out === null || !out.ok) {
            take.unknown++;
            return;
          }
          take.answered++;
          if (out.value.type === 'getRemove' && out.value.value !== null) take.winners.push(`n${t.id}`);
        }),
      );
      if (take.winners.length > 1)
        fail('cache-semantics', `key ${key} was taken by ${take.winners.join(' and ')}`);
      if (take.winners.length === 0 && take.unknown === 0) {
        fail(
          'cache-semantics',
          `key ${key}: ${take.answered} callers took it and none got the value put before`,
        );
      }
      await this.sleep(rng.int(1_000, 30_000));
    }
  }

  private async notifyClient(rng: Random): Promise<void> {
    let i = 0;
    while (this.chaos) {
      const n = rng.pick([...this.nodes.values()]);
      const payload = new TextEncoder().encode(`m${++i}`);
      const out = await this.call(n, (g) => g.writeOk({ type: 'notify', channel: 'ch', payload }));
      if (out === null) return;
      if (out.ok) this.stats.notifications++;
      await this.sleep(rng.int(1_000, 30_000));
    }
  }

  /** Puts with TTLs (the leader's expiry proposals), deletes and clears: traffic for every replica. */
  private async ttlClient(rng: Random): Promise<void> {
    while (this.chaos) {
      const n = rng.pick([...this.nodes.values()]);
      const key = `s${rng.int(0, 20)}`;
      const r = rng.next();
      const out = await this.call(n, (g) =>
        r < 0.8
          ? g.writeOk({
              type: 'put',
              cache: 'ttl',
              key,
              value: new Uint8Array([rng.int(0, 256)]),
              ttlMs: rng.int(5, 500),
            })
          : r < 0.95
            ? g.writeOk({ type: 'delete', cache: 'ttl', key })
            : g.writeOk({ type: 'clear', cache: 'ttl' }),
      );
      if (out === null) return;
      await this.sleep(rng.int(1_000, 20_000));
    }
  }

  /**
   * A listener in every life of `n`: notifications arrive in log order, each once. In some seeds
   * it is slow (it takes a while per notification) and its buffer small, so it lags: it is told
   * how many it missed (and listens again), never silently short.
   */
  private async listenClient(n: CacheSimNode, rng: Random): Promise<void> {
    const slowUs = this.profile.listenerSlowUs;
    while (this.chaos) {
      const g = n.ready;
      // After the log found at start is applied again (a new listener starts after it).
      if (g === null || g.replaying) {
        await this.sleep(5_000);
        continue;
      }
      const sub = g.subscribe({ channel: null, bufferMax: this.profile.listenerBufferMax });
      const rec: ListenerRecord = {
        node: n.id,
        incarnation: n.incarnation,
        startSeq: sub.startSeq,
        lastSeq: sub.startSeq,
        received: 0,
        lagged: false,
        ended: false,
        sub,
      };
      this.listeners.push(rec);
      for (;;) {
        let item: Awaited<ReturnType<typeof sub.next>>;
        try {
          item = await sub.next();
        } catch {
          rec.ended = true;
          break;
        }
        if (item.kind === 'lagged') {
          rec.lagged = true;
          this.stats.listenersLagged++;
          break;
        }
        this.take(rec, item.notification.seq);
        if (slowUs > 0) await this.sleep(rng.int(0, slowUs));
      }
      if (rec.ended) await n.died();
    }
  }

  private take(rec: ListenerRecord, seq: number): void {
    if (seq !== rec.lastSeq + 1) {
      fail(
        'notify-order',
        `listener on n${rec.node} (life ${rec.incarnation}) got notification ${seq} after ${rec.lastSeq}`,
      );
    }
    rec.lastSeq = seq;
    rec.received++;
    this.stats.notificationsReceived++;
  }

  // -----------------------------------------------------------------------------------------------
  // Liveness and the final checks
  // -----------------------------------------------------------------------------------------------

  private async liveness(): Promise<void> {
    this.chaos = false;
    this.network.heal();
    this.network.faults = { ...CALM_NETWORK, latencyUsMax: this.profile.network.latencyUsMax };
    for (const n of this.nodes.values()) n.start();
    const deadlineUs = this.queue.now + this.profile.livenessUs;
    for (;;) {
      const gap = this.livenessGap();
      if (gap === null) return;
      if (this.queue.now >= deadlineUs)
        fail('liveness', `${this.profile.livenessUs / 1e6}s after healing: ${gap}`);
      await this.runUntil(this.queue.now + LIVENESS_STEP_US);
    }
  }

  private livenessGap(): string | null {
    if (this.pendingCalls > 0) return `${this.pendingCalls} client calls still pending`;
    const leader = this.leader();
    if (leader === null) return 'no leader';
    const st = (leader.group as CacheGroup).group.status();
    if (st.commitIndex !== st.lastIndex) return `leader n${leader.id} has uncommitted entries`;
    for (const n of this.nodes.values()) {
      if (n.group === null) return `n${n.id} is not running`;
      if (n.joining) return `n${n.id} has not joined again`;
      if (n.appliedIndex !== st.commitIndex)
        return `n${n.id} applied ${n.appliedIndex}, leader n${leader.id} committed ${st.commitIndex}`;
    }
    return null;
  }

  private async finalChecks(): Promise<void> {
    for (const n of this.nodes.values()) this.stats.waitGrantsChecked += n.waitGrantsChecked;
    if (this.profile.cacheLoss) {
      this.checkLocks();
      await this.checkReplicas();
      return;
    }
    this.checkLocks();
    this.checkCounters();
    await this.checkReplicas();
    this.checkListeners();
  }

  /**
   * How far two holds of one key may overlap without a bug: leases end by the cluster's clock
   * (the median of the nodes' clocks: one far off does not count), and a caller counts its hold
   * by its own (its drift), rounded to whole ms.
   */
  private lockToleranceUs(): number {
    const p = this.profile;
    const offsets = p.clocks.filter((_, i) => p.nodeIds[i] !== p.outlier).map((c) => c.offsetMs);
    const spreadMs = Math.max(...offsets) - Math.min(...offsets);
    const driftMs = p.clocks.reduce((m, c) => Math.max(m, Math.abs(1 - 1 / c.rate)), 0) * p.leaseMsMax * 2;
    return Math.ceil((spreadMs + driftMs + 2) * 1000);
  }

  /**
   * The largest error of any node's estimate of the cluster's clock now: half the round trip
   * of a sample it uses (peer-clocks.ts: a peer's clock is its answer at the middle of the
   * round trip). Leases end by the leaders' estimates and are counted by the holders' nodes'.
   */
  private clockErrorUs(): number {
    let u = 0;
    for (const n of this.nodes.values()) u = Math.max(u, n.clockUncertaintyMs());
    return Math.ceil(u * 1000);
  }

  private checkLocks(): void {
    const baseUs = this.lockToleranceUs();
    for (const key of LOCK_KEYS) {
      const holds = this.holds.filter((h) => h.key === key).sort((a, b) => a.startUs - b.startUs);
      const tokens = new Set<number>();
      for (let i = 0; i < holds.length; i++) {
        const h = holds[i] as Hold;
        if (tokens.has(h.token)) fail('lock-safety', `${key}: token ${h.token} was handed out twice`);
        tokens.add(h.token);
        for (let j = 0; j < i; j++) {
          const e = holds[j] as Hold;
          const tolUs = baseUs + e.clockErrorUs + h.clockErrorUs;
          // A group founded anew between the two grants (cacheLoss): the first holder's group is
          // gone, and with it its lock (its holder is told; it may use it until then). Tokens
          // still increase across it (the fencing the README promises).
          const refoundedBetween = this.foundedAtUs.some((f) => f > e.startUs && f <= h.startUs);
          if (e.endUs > h.startUs + tolUs && !refoundedBetween) {
            fail(
              'lock-safety',
              `${key}: ${e.client}@n${e.node} (token ${e.token}) held it until ${fmt(e.endUs)} and ${h.client}@n${h.node} (token ${h.token}) from ${fmt(h.startUs)} (tolerance ${tolUs / 1000} ms)`,
            );
          }
          if (e.token > h.token && h.startUs - e.startUs > tolUs) {
            fail(
              'lock-safety',
              `${key}: token ${h.token} handed to ${h.client}@n${h.node} at ${fmt(h.startUs)}, after token ${e.token} at ${fmt(e.startUs)}`,
            );
          }
        }
      }
    }
  }

  private checkCounters(): void {
    const values = [...this.nodes.values()].map((n) => (n.group as CacheGroup).counterGet('hits', 'k') ?? 0n);
    const v = values[0] as bigint;
    if (values.some((x) => x !== v))
      fail('cache-semantics', `counter differs between replicas: ${values.join(', ')}`);
    if (v < this.counterAcked || v > this.counterAcked + this.counterUnknown) {
      fail(
        'cache-semantics',
        `counter is ${v}: acknowledged adds ${this.counterAcked}, with unknown outcome ${this.counterUnknown}`,
      );
    }
  }

  /** The same snapshot bytes on every node at the same applied index. */
  private async checkReplicas(): Promise<void> {
    const digests: string[] = [];
    for (const n of this.nodes.values()) {
      const h = createHash('sha256');
      await (n.group as CacheGroup).sm.writeSnapshot((c) => {
        h.update(c);
      });
      digests.push(`n${n.id}@${n.appliedIndex}:${h.digest('hex').slice(0, 12)}`);
    }
    const first = (digests[0] as string).split(':')[1];
    if (digests.some((d) => d.split(':')[1] !== first)) {
      fail('state-machine-safety', `replicas differ at the same applied index: ${digests.join(' ')}`);
    }
  }

  private checkListeners(): void {
    for (const rec of this.listeners) {
      for (const item of rec.sub.drain(1_000_000)) {
        if (item.kind === 'lagged') rec.lagged = true;
        else this.take(rec, item.notification.seq);
      }
      if (rec.lagged || rec.ended) continue;
      const n = this.nodes.get(rec.node) as CacheSimNode;
      if (n.incarnation !== rec.incarnation) continue;
      const last = (n.group as CacheGroup).sm.lastNotificationSeq();
      if (rec.lastSeq !== last) {
        fail(
          'notify-order',
          `listener on n${rec.node} from seq ${rec.startSeq} got up to ${rec.lastSeq}; the node applied up to ${last} and no lag was reported`,
        );
      }
    }
  }
}

/** A failed call whose write may still take effect. */
function isUnknown(e: unknown): boolean {
  return !(e instanceof HiqliteError) || e.code === 'HQL_TIMEOUT' || e.code === 'HQL_OUTCOME_UNKNOWN';
}

function fmt(us: number): string {
  return `${(us / 1000).toFixed(3)}ms`;
}
