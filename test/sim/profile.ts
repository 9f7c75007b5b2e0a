/**
 * A scenario drawn from the seed: cluster shape, Raft settings, network and disk behaviour, how
 * often faults strike, and the client workload. Intensities are randomized per seed, so some
 * seeds are calm and some brutal. Planted-bug hunts bias the mix towards the faults that provoke
 * each bug (the same checkers still do the catching).
 */
import { assertNever } from '../../src/lib/assert.js';
import type { Random } from '../../src/lib/prng.js';
import type { RuntimePlantedBugs } from '../../src/node/raft-group.js';
import type { NodeId, PlantedBugs } from '../../src/raft/types.js';
import { nodeId } from '../../src/raft/types.js';
import type { NetworkFaults } from './network.js';

export type Intensity = 'calm' | 'moderate' | 'brutal';
/** A bug planted in the core (RaftConfig.plantedBugs) or in the runtime (RaftGroupOptions.plantedBugs). */
export type PlantedBugName = keyof PlantedBugs | keyof RuntimePlantedBugs;

export const PLANTED_BUGS: readonly PlantedBugName[] = [
  'commitPreviousTermByCount',
  'voteWithoutLogCheck',
  'voteBeforePersist',
  'readIndexWithoutQuorum',
  'applyBeforeCommit',
  'ackBeforePersist',
  'readBeforeApply',
  'leaderCountsSelfBeforePersist',
  'snapshotKeepsConflictingTail',
  'snapshotFailureStops',
];

const RUNTIME_BUGS: ReadonlySet<PlantedBugName> = new Set<keyof RuntimePlantedBugs>([
  'ackBeforePersist',
  'readBeforeApply',
  'snapshotKeepsConflictingTail',
  'snapshotFailureStops',
]);

/** Relative weights of the fault actions the nemesis picks from. */
export interface NemesisWeights {
  readonly crash: number;
  /** Crash the leader (elections under churn: Figure 8 patterns). */
  readonly crashLeader: number;
  /** Crash a node whose Ready is still being written (lost and torn writes). */
  readonly crashMidPersist: number;
  /** Stall a node's process (GC pause): it handles nothing, then everything at once. */
  readonly pause: number;
  readonly isolate: number;
  readonly isolateLeader: number;
  readonly split: number;
  readonly oneWay: number;
  readonly heal: number;
  readonly membership: number;
  readonly transfer: number;
  /** Kill a process: the machine stays up, the OS writes out what the process wrote. */
  readonly kill: number;
  /** Every machine loses power at once (a data-centre outage): unsynced data gone everywhere. */
  readonly powerLossAll: number;
  /** An operator deletes a stopped node's log, snapshots, database or whole data directory. */
  readonly wipe: number;
  /** Every node goes down; one voter (node 1 too) is wiped and starts alone, the others later. */
  readonly wipeAlone: number;
  /** A membership change, and its leader or its target crashes while it is in flight. */
  readonly crashDuringMembership: number;
  /**
   * The operator restores an older copy of a stopped node's data directory: it comes back with
   * less of the log than it acknowledged; the leader must find out and send it what it lacks.
   */
  readonly restoreOlderCopy: number;
}

export interface Profile {
  readonly intensity: Intensity;
  readonly nodeIds: readonly NodeId[];
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly inflightMessagesMax: number;
  readonly appendBytesMax: number;
  readonly tickUs: number;
  /** Each node's tick interval differs from tickUs by up to this many percent (clock drift). */
  readonly tickSkewPct: number;
  readonly network: NetworkFaults;
  /** Call reportUnreachable on the sender when a cut link drops an append. */
  readonly reportUnreachableRate: number;
  readonly diskLatencyUsMin: number;
  readonly diskLatencyUsMax: number;
  /** Probability that one write is much slower (a long window for crashes mid-persist). */
  readonly slowDiskRate: number;
  readonly slowDiskUsMax: number;
  /** Given a crash with a write in flight: probability it is torn (a prefix kept) rather than lost. */
  readonly tornWriteRate: number;
  /** Mean virtual time between fault actions; 0 = no faults. */
  readonly nemesisIntervalUs: number;
  readonly nemesis: NemesisWeights;
  /** Probability that a newly elected leader is crashed soon after (Figure 8 style churn). */
  readonly crashNewLeaderRate: number;
  readonly crashNewLeaderUsMax: number;
  readonly pauseUsMax: number;
  readonly downtimeUsMin: number;
  readonly downtimeUsMax: number;
  /** Maximum nodes down at once (the nemesis restarts before crashing more). */
  readonly crashedMax: number;
  readonly compactEveryEntries: number;
  readonly compactTailMax: number;
  readonly clients: number;
  readonly keys: readonly string[];
  readonly readRate: number;
  readonly casRate: number;
  readonly thinkUsMax: number;
  /** Probability that a client sends to the node it believes is the leader (else a random node). */
  readonly stickToLeaderRate: number;
  readonly opTimeoutUs: number;
  readonly chaosUs: number;
  /** After healing: the bound within which the cluster must be live and converged. */
  readonly livenessUs: number;
  /** How long the state machine takes per batch at most (0: it applies at once). */
  readonly applyLatencyUsMax: number;
  /** Committed entries queued for apply before the group pauses its Readies (backpressure). */
  readonly applyQueueEntriesMax: number;
  /** Probability that a node receiving a snapshot crashes while it installs it. */
  readonly crashOnSnapshotInstallRate: number;
  /**
   * Probability that a snapshot the node takes fails (its copy does not fit on the disk): the
   * runtime must go on with its log uncompacted and try again later, never stop or diverge.
   */
  readonly snapshotFailRate: number;
  readonly plantedBugs: PlantedBugs;
  readonly runtimePlantedBugs: RuntimePlantedBugs;
}

export interface ProfileOptions {
  /** Length of the fault phase (virtual ms). */
  readonly chaosMs?: number;
  readonly plantedBug?: PlantedBugName;
}

export const CHAOS_MS_DEFAULT = 3_000;

const ZERO_WEIGHTS: NemesisWeights = {
  crash: 0,
  crashLeader: 0,
  crashMidPersist: 0,
  pause: 0,
  isolate: 0,
  isolateLeader: 0,
  split: 0,
  oneWay: 0,
  heal: 0,
  membership: 0,
  transfer: 0,
  kill: 0,
  powerLossAll: 0,
  wipe: 0,
  wipeAlone: 0,
  crashDuringMembership: 0,
  restoreOlderCopy: 0,
};

function pickIntensity(rng: Random): Intensity {
  const r = rng.next();
  return r < 0.2 ? 'calm' : r < 0.65 ? 'moderate' : 'brutal';
}

export function makeProfile(rng: Random, options: ProfileOptions = {}): Profile {
  const intensity = pickIntensity(rng);
  const brutal = intensity === 'brutal';
  const calm = intensity === 'calm';
  const nodeCount = rng.chance(0.08) ? rng.int(1, 3) : rng.int(3, 8);
  const nodeIds = Array.from({ length: nodeCount }, (_, i) => nodeId(i + 1));
  const votersCount = Math.min(nodeCount, rng.chance(0.5) ? 3 : rng.int(1, 6));
  const learnersCount = rng.int(0, nodeCount - votersCount + 1);
  const voters = nodeIds.slice(0, votersCount);
  const learners = nodeIds.slice(votersCount, votersCount + learnersCount);
  const electionTimeoutTicks = rng.chance(0.2) ? rng.int(3, 8) : rng.int(8, 16);
  const chaosUs = (options.chaosMs ?? CHAOS_MS_DEFAULT) * 1_000;
  const latencyUsMax = rng.int(1_000, brutal ? 8_000 : 4_000);
  const base: Profile = {
    intensity,
    nodeIds,
    voters,
    learners,
    preVote: rng.chance(0.7),
    checkQuorum: rng.chance(0.7),
    electionTimeoutTicks,
    heartbeatIntervalTicks: rng.int(1, Math.min(4, electionTimeoutTicks)),
    inflightMessagesMax: rng.pick([1, 4, 16, 64]),
    appendBytesMax: rng.pick([64, 512, 4096, 65_536]),
    tickUs: 10_000,
    tickSkewPct: rng.chance(0.5) ? 0 : rng.int(1, 20),
    network: calm
      ? { dropRate: 0, dupRate: 0, latencyUsMin: 200, latencyUsMax, longDelayRate: 0, longDelayUsMax: 0 }
      : {
          dropRate: rng.next() * (brutal ? 0.25 : 0.06),
          dupRate: rng.next() * (brutal ? 0.1 : 0.03),
          latencyUsMin: 200,
          latencyUsMax,
          longDelayRate: rng.next() * (brutal ? 0.05 : 0.01),
          longDelayUsMax: rng.int(10_000, 300_000),
        },
    reportUnreachableRate: rng.next(),
    diskLatencyUsMin: 50,
    diskLatencyUsMax: rng.int(200, 5_000),
    slowDiskRate: calm ? 0 : rng.next() * 0.05,
    slowDiskUsMax: rng.int(5_000, 60_000),
    tornWriteRate: rng.next(),
    nemesisIntervalUs: calm ? 0 : brutal ? rng.int(20_000, 150_000) : rng.int(100_000, 600_000),
    nemesis: {
      crash: rng.int(0, 4),
      crashLeader: rng.int(0, 3),
      crashMidPersist: rng.int(0, 3),
      pause: rng.int(0, 3),
      isolate: rng.int(0, 3),
      isolateLeader: rng.int(0, 3),
      split: rng.int(0, 3),
      oneWay: rng.int(0, 2),
      heal: rng.int(2, 5),
      membership: rng.int(0, 3),
      transfer: rng.int(0, 3),
      // Drawn last (below), so a seed's other choices stay what they were before these existed.
      kill: 0,
      powerLossAll: 0,
      wipe: 0,
      wipeAlone: 0,
      crashDuringMembership: 0,
      restoreOlderCopy: 0,
    },
    crashNewLeaderRate: brutal && rng.chance(0.3) ? rng.next() * 0.5 : 0,
    crashNewLeaderUsMax: rng.int(1_000, 50_000),
    pauseUsMax: rng.int(20_000, 1_000_000),
    downtimeUsMin: 1_000,
    downtimeUsMax: rng.int(20_000, brutal ? 400_000 : 1_500_000),
    crashedMax: brutal ? nodeCount : Math.max(1, Math.floor((votersCount - 1) / 2)),
    compactEveryEntries: rng.int(5, 80),
    compactTailMax: rng.int(0, 6),
    clients: rng.int(1, 5),
    keys: ['x', 'y', 'z'].slice(0, rng.int(1, 4)),
    readRate: 0.2 + rng.next() * 0.5,
    casRate: rng.next() * 0.4,
    thinkUsMax: rng.int(0, 40_000),
    stickToLeaderRate: rng.next(),
    opTimeoutUs: rng.int(300_000, 2_000_000),
    chaosUs,
    livenessUs: 30_000_000,
    // Drawn after every other field: adding them left the rest of a seed's scenario as it was.
    applyLatencyUsMax: rng.chance(0.5) ? 0 : rng.pick([500, 5_000, 50_000]),
    applyQueueEntriesMax: rng.pick([2, 16, 4_096]),
    crashOnSnapshotInstallRate: 0,
    snapshotFailRate: 0,
    plantedBugs: {},
    runtimePlantedBugs: {},
  };
  // Power loss vs a killed process, operator wipes, crashes during membership changes and
  // snapshot installs (issue 11). Faults on every node at once only in brutal seeds (they take
  // more than a minority down).
  const withNemeses: Profile = {
    ...base,
    nemesis: {
      ...base.nemesis,
      kill: rng.int(0, 3),
      powerLossAll: brutal ? rng.int(0, 2) : 0,
      wipe: rng.int(0, 3),
      wipeAlone: brutal ? rng.int(0, 2) : 0,
      crashDuringMembership: rng.int(0, 3),
    },
    crashOnSnapshotInstallRate: rng.chance(0.3) ? rng.next() * 0.5 : 0,
    // Drawn last, as above: the seeds' earlier draws are unchanged.
    snapshotFailRate: rng.chance(0.3) ? rng.next() * 0.8 : 0,
  };
  if (options.plantedBug !== undefined) return biasForBug(withNemeses, options.plantedBug, rng);
  // Drawn after everything above, for the same reason (and not for planted-bug hunts, whose
  // seeds keep the draws they were found with).
  return { ...withNemeses, nemesis: { ...withNemeses.nemesis, restoreOlderCopy: calm ? 0 : rng.int(0, 3) } };
}

/**
 * The scenario mix that provokes each planted bug. Each bias only turns knobs the normal mix
 * also turns (the bug is still caught by the ordinary checkers).
 */
function biasForBug(p: Profile, bug: PlantedBugName, rng: Random): Profile {
  const five = [1, 2, 3, 4, 5].map(nodeId);
  /** Every node a voter, no pre-vote, no check quorum: elections as the bug needs them. */
  const allVotersNoPreVote = (ids: NodeId[]) =>
    ({ nodeIds: ids, voters: ids, learners: [], preVote: false, checkQuorum: false }) as const;
  const threeVoters = p.nodeIds.length >= 3 ? p.nodeIds.slice(0, 3) : p.voters;
  const withBug = {
    ...p,
    ...(RUNTIME_BUGS.has(bug)
      ? { runtimePlantedBugs: { [bug]: true } as RuntimePlantedBugs }
      : { plantedBugs: { [bug]: true } as PlantedBugs }),
    intensity: 'brutal' as const,
    crashOnSnapshotInstallRate: 0,
    snapshotFailRate: 0,
  };
  switch (bug) {
    case 'commitPreviousTermByCount':
      // Figure 8: a leader replicating a previous term's entries one per message (so a quorum
      // holds them before its own noop) dies young, and a node holding a conflicting entry of a
      // later term wins the next election. Short elections, slow links, leaders that die young.
      return {
        ...withBug,
        ...allVotersNoPreVote(five),
        electionTimeoutTicks: 4,
        heartbeatIntervalTicks: 1,
        inflightMessagesMax: 1,
        appendBytesMax: 1,
        network: {
          dropRate: 0.05,
          dupRate: 0,
          latencyUsMin: 500,
          latencyUsMax: 12_000,
          longDelayRate: 0,
          longDelayUsMax: 0,
        },
        nemesisIntervalUs: rng.int(20_000, 150_000),
        nemesis: { ...ZERO_WEIGHTS, crashLeader: 2, isolateLeader: 2, isolate: 1, heal: 2 },
        crashNewLeaderRate: 0.9,
        crashNewLeaderUsMax: 60_000,
        downtimeUsMin: 1_000,
        downtimeUsMax: 100_000,
        crashedMax: 2,
        clients: 4,
        stickToLeaderRate: 0.9,
        thinkUsMax: 2_000,
        readRate: 0.1,
      };
    case 'voteWithoutLogCheck':
      return {
        ...withBug,
        ...allVotersNoPreVote(five),
        nemesisIntervalUs: rng.int(30_000, 100_000),
        nemesis: { ...ZERO_WEIGHTS, isolate: 3, crash: 2, crashLeader: 2, heal: 3 },
        downtimeUsMax: 300_000,
        crashedMax: 2,
        clients: 3,
      };
    case 'voteBeforePersist':
      // A voter crashes while its vote is being written and comes straight back, while the vote
      // requests of a rival candidate in the same term are still in flight (delays, duplicates).
      return {
        ...withBug,
        ...allVotersNoPreVote(five.slice(0, 3)),
        electionTimeoutTicks: 3,
        heartbeatIntervalTicks: 1,
        network: { ...p.network, dropRate: 0.2, dupRate: 0.3, longDelayRate: 0.3, longDelayUsMax: 40_000 },
        diskLatencyUsMin: 2_000,
        diskLatencyUsMax: 20_000,
        tornWriteRate: 0,
        nemesisIntervalUs: rng.int(5_000, 20_000),
        nemesis: { ...ZERO_WEIGHTS, crashMidPersist: 6, crashLeader: 1, isolateLeader: 1, heal: 1 },
        downtimeUsMin: 100,
        downtimeUsMax: 3_000,
        crashedMax: 1,
      };
    case 'readIndexWithoutQuorum':
      // A leader cut off from the majority keeps answering reads while the majority moves on.
      return {
        ...withBug,
        checkQuorum: false,
        nemesisIntervalUs: rng.int(100_000, 300_000),
        nemesis: { ...ZERO_WEIGHTS, isolateLeader: 4, heal: 1 },
        clients: 4,
        readRate: 0.5,
        stickToLeaderRate: 0.95,
        thinkUsMax: 5_000,
      };
    case 'applyBeforeCommit':
      return {
        ...withBug,
        voters: threeVoters,
        nemesisIntervalUs: rng.int(50_000, 150_000),
        nemesis: { ...ZERO_WEIGHTS, isolateLeader: 3, crashLeader: 1, heal: 2 },
        clients: 3,
      };
    case 'ackBeforePersist':
      // Followers acknowledge appends (and grant votes) while the write is still in flight: slow
      // disks make the window wide; crashes in it lose what was acknowledged.
      return {
        ...withBug,
        voters: threeVoters,
        diskLatencyUsMin: 1_000,
        diskLatencyUsMax: 10_000,
        nemesisIntervalUs: rng.int(20_000, 100_000),
        nemesis: { ...ZERO_WEIGHTS, crashMidPersist: 4, crashLeader: 1, heal: 1 },
        crashedMax: 1,
      };
    case 'readBeforeApply':
      // Reads go to followers whose apply lags the leader's commit (slow disks: a follower
      // applies only what it has made durable), right after writes complete on the leader.
      return {
        ...withBug,
        diskLatencyUsMin: 1_000,
        diskLatencyUsMax: 10_000,
        nemesisIntervalUs: 0,
        clients: 4,
        readRate: 0.5,
        stickToLeaderRate: 0,
        thinkUsMax: 2_000,
      };
    case 'leaderCountsSelfBeforePersist':
      // The leader's own disk is slow and its followers' acknowledgements come back first: it
      // commits on its own unwritten copy plus a minority, then dies mid-persist.
      return {
        ...withBug,
        voters: threeVoters,
        network: { ...p.network, latencyUsMin: 200, latencyUsMax: 1_000 },
        diskLatencyUsMin: 500,
        diskLatencyUsMax: 3_000,
        slowDiskRate: 0.2,
        slowDiskUsMax: 30_000,
        tornWriteRate: 0,
        nemesisIntervalUs: rng.int(20_000, 100_000),
        nemesis: { ...ZERO_WEIGHTS, crashMidPersist: 3, crashLeader: 2, heal: 1 },
        crashedMax: 1,
        clients: 3,
        stickToLeaderRate: 0.9,
      };
    case 'snapshotKeepsConflictingTail':
      // An old leader cut off with entries of its own term comes back to a cluster that has
      // compacted past them: it is sent a snapshot whose index its stale tail covers.
      return {
        ...withBug,
        voters: threeVoters,
        checkQuorum: false,
        nemesisIntervalUs: rng.int(100_000, 300_000),
        nemesis: { ...ZERO_WEIGHTS, isolateLeader: 3, heal: 2 },
        compactEveryEntries: 5,
        compactTailMax: 0,
        clients: 4,
        readRate: 0.1,
        stickToLeaderRate: 0.95,
        thinkUsMax: 2_000,
      };
    case 'snapshotFailureStops':
      // Snapshots often, and a disk too full for half of them: every node fails one soon, and a
      // group that stops for it takes the cluster's majority with it.
      return {
        ...withBug,
        compactEveryEntries: 5,
        snapshotFailRate: 0.5,
        clients: 3,
      };
    default:
      return assertNever(bug, 'planted bug');
  }
}

/** One line describing a profile, for --verbose and failure reports. */
export function describeProfile(p: Profile): string {
  const n = p.network;
  return [
    `${p.intensity}`,
    `nodes=${p.nodeIds.length} voters=[${p.voters.join(',')}] learners=[${p.learners.join(',')}]`,
    `preVote=${p.preVote} checkQuorum=${p.checkQuorum} election=${p.electionTimeoutTicks}t hb=${p.heartbeatIntervalTicks}t`,
    `drop=${n.dropRate.toFixed(3)} dup=${n.dupRate.toFixed(3)} longDelay=${n.longDelayRate.toFixed(3)}`,
    `nemesis=${p.nemesisIntervalUs === 0 ? 'off' : `${Math.round(p.nemesisIntervalUs / 1000)}ms`}`,
    `clients=${p.clients} keys=${p.keys.length} compactEvery=${p.compactEveryEntries}`,
    Object.keys({ ...p.plantedBugs, ...p.runtimePlantedBugs }).length > 0
      ? `bug=${Object.keys({ ...p.plantedBugs, ...p.runtimePlantedBugs }).join(',')}`
      : '',
  ]
    .filter((s) => s !== '')
    .join(' ');
}
