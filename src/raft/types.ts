/**
 * Types of the pure Raft core. Nothing here does I/O; see docs/internals/raft.md.
 */
import type { Brand } from '../lib/brand.js';

export type NodeId = Brand<number, 'NodeId'>;
export type Term = Brand<number, 'Term'>;
export type LogIndex = Brand<number, 'LogIndex'>;

export const nodeId = (n: number): NodeId => n as NodeId;
export const term = (n: number): Term => n as Term;
export const logIndex = (n: number): LogIndex => n as LogIndex;

/** The cluster membership: voters decide elections and commitment; learners only receive the log. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * A log entry. `command` carries opaque application bytes; `noop` is appended by every new
 * leader (Raft §5.4.2/§8); `config` carries the complete new membership (thesis §4.1: it takes
 * effect on every server as soon as it is appended to its log, committed or not).
 */
export type Entry =
  | { readonly kind: 'command'; readonly index: LogIndex; readonly term: Term; readonly data: Uint8Array }
  | { readonly kind: 'noop'; readonly index: LogIndex; readonly term: Term }
  | {
      readonly kind: 'config';
      readonly index: LogIndex;
      readonly term: Term;
      readonly membership: Membership;
    };

/** What must survive a crash, written atomically before any message that depends on it is sent. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly commit: LogIndex;
}

/** Identifies a state-machine snapshot: it contains every entry up to and including `index`. */
export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  readonly membership: Membership;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** A completed read-index request: the read may be served once `appliedIndex >= index`. */
export interface ReadState {
  readonly requestId: number;
  readonly index: LogIndex;
}

/** A read-index request that could not be served (no leader, leadership lost, …); retry. */
export interface ReadFailure {
  readonly requestId: number;
  readonly reason: 'no-leader' | 'not-leader' | 'leadership-lost' | 'transfer-in-progress';
}

export type Message =
  | {
      readonly type: 'append';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      readonly prevIndex: LogIndex;
      readonly prevTerm: Term;
      readonly entries: readonly Entry[];
      readonly commit: LogIndex;
      /** The leader's id of the progress record it sent this under (see `Progress.epoch`); echoed back. */
      readonly epoch: number;
    }
  | {
      readonly type: 'append-response';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      /** On success: the index of the last entry the follower now matches. */
      readonly matchIndex: LogIndex;
      readonly reject: boolean;
      /** On reject: the prevIndex of the append that was rejected. */
      readonly rejectedIndex: LogIndex;
      /** On reject: the follower's hint for fast back-off (its last index or conflict point). */
      readonly rejectHint: LogIndex;
      /** On reject: the term of the follower's entry at `rejectHint` (0 when none). */
      readonly rejectHintTerm: Term;
      /** The `epoch` of the append or snapshot answered (0 for an answer to a stale leader). */
      readonly epoch: number;
    }
  | {
      readonly type: 'heartbeat';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      readonly commit: LogIndex;
      /**
       * The term of the leader's entry at `commit` (0: unknown, compacted). The follower commits
       * only when its own entry there has that term: a follower that came back holding an older
       * log than it acknowledged (an older copy of its data restored) may hold another entry at
       * an index the leader believes it matches, and must not apply it.
       */
      readonly commitTerm: Term;
      /**
       * The leader's last log index. A follower that holds more than that committed holds
       * entries the cluster lost (leader completeness: every leader holds every committed entry).
       */
      readonly lastIndex: LogIndex;
      /** Non-zero when the heartbeat confirms leadership for pending read-index requests. */
      readonly readContext: number;
    }
  | {
      readonly type: 'heartbeat-response';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      readonly readContext: number;
      readonly matchHint: LogIndex;
    }
  | {
      readonly type: 'vote' | 'pre-vote';
      readonly from: NodeId;
      readonly to: NodeId;
      /** For pre-vote: the term the candidate would campaign in (its term + 1). */
      readonly term: Term;
      readonly lastIndex: LogIndex;
      readonly lastTerm: Term;
      /** Set when campaigning because of a leadership transfer: overrides the leader lease. */
      readonly transfer: boolean;
    }
  | {
      readonly type: 'vote-response' | 'pre-vote-response';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      readonly granted: boolean;
    }
  | {
      readonly type: 'snapshot';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      /** The snapshot to install. The runtime streams its data in chunks next to this message. */
      readonly snapshot: SnapshotMeta;
      /** As in `append`: echoed in the answer. */
      readonly epoch: number;
    }
  | {
      readonly type: 'timeout-now';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
    }
  | {
      readonly type: 'read-index';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      readonly requestId: number;
    }
  | {
      readonly type: 'read-index-response';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly term: Term;
      readonly requestId: number;
      /** 0 with `ok: false` when the leader could not serve it. */
      readonly index: LogIndex;
      readonly ok: boolean;
    };

export type MessageType = Message['type'];

/**
 * Control messages must never wait behind bulk traffic (DESIGN.md, "Liveness under load"):
 * the transport sends them on their own lane.
 */
export function isControlMessage(m: Message): boolean {
  return m.type !== 'append' && m.type !== 'snapshot';
}

/**
 * The batch of work the core hands to its embedder. The contract, in order:
 *
 * 1. Send `messages` at once: they do not depend on anything in this Ready being durable
 *    (the leader's AppendEntries may go out in parallel with its own disk write, thesis §10.2.1).
 * 2. Persist durably: `snapshot` (install it into the state machine and log store first), then
 *    `truncateFrom`/`entries` (drop every entry at index >= entries[0].index, then append),
 *    then `hardState`. A crash after this step must find all of it on disk.
 * 3. Only then send `messagesAfterPersist` (votes, append acknowledgements: they promise
 *    that what was persisted in step 2 is durable).
 * 4. Apply `committed` to the state machine, in order. They are committed on a quorum and
 *    never change. Those below `entries[0].index` are durable here from earlier Readies and may
 *    be applied while step 2 is still in flight.
 * 5. Call `advance(ready)`.
 *
 * `readStates` may be served once the state machine has applied `readState.index`.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: SnapshotMeta | null;
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly readFailures: readonly ReadFailure[];
  /** Changes to role or leader since the previous Ready (for metrics, proposals, logs). */
  readonly softState: { readonly role: Role; readonly leaderId: NodeId | null } | null;
}

export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly firstIndex: LogIndex;
  readonly snapshotIndex: LogIndex;
  readonly membership: Membership;
  readonly transferTarget: NodeId | null;
  /** Leader only: the replication progress of every other member. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | null;
}

/**
 * This node's committed log differs from its leader's (RaftCore.divergence): an entry this node
 * holds as committed has another term in the leader's log. Raft never does this by itself; the
 * cluster lost entries a majority had committed (an operator restored older copies, or wiped a
 * majority), and this node still holds them.
 */
export interface Divergence {
  readonly index: LogIndex;
  /** The term of this node's committed entry there. */
  readonly ours: Term;
  /** The term of the leader's entry there; 0 when the leader's log ends before it. */
  readonly leaders: Term;
  /** When `leaders` is 0: the leader's last index (its log ends there). */
  readonly leaderLastIndex: LogIndex;
  readonly leader: NodeId;
}

export interface ProgressStatus {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly inflightCount: number;
  readonly inflightBytes: number;
  readonly recentActive: boolean;
  /** Which record of the follower this is (`Progress.epoch`). */
  readonly epoch: number;
  /** How often the follower was found holding less of the log than it had acknowledged. */
  readonly regressions: number;
}

/**
 * Bugs that can be planted in the core to prove that the simulator's checkers catch them.
 * Never set outside the simulator; the runtime rejects a config that sets any.
 */
export interface PlantedBugs {
  /** Commit an entry of a previous term by counting replicas (violates Raft §5.4.2). */
  readonly commitPreviousTermByCount?: boolean;
  /** Grant votes without the log up-to-date check (violates Raft §5.4.1). */
  readonly voteWithoutLogCheck?: boolean;
  /** Send vote responses before the vote is persisted (violates Raft Figure 2 "before responding"). */
  readonly voteBeforePersist?: boolean;
  /** Answer read-index without confirming leadership with a quorum (thesis §6.4 step 3). */
  readonly readIndexWithoutQuorum?: boolean;
  /** Hand entries to the state machine before they are committed. */
  readonly applyBeforeCommit?: boolean;
  /**
   * The leader counts its own log up to its last entry, not up to what is durable on its disk,
   * when it computes the commit index (violates thesis §10.2.1: the leader's own write counts
   * towards a quorum only once it is persisted).
   */
  readonly leaderCountsSelfBeforePersist?: boolean;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [t, 2t). */
  readonly electionTimeoutTicks: number;
  /** Ticks between leader heartbeats; must be well below the election timeout. */
  readonly heartbeatIntervalTicks: number;
  /** Pre-vote (thesis §9.6): a node rejoining from a partition does not disturb a healthy leader. */
  readonly preVote: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down (thesis §6.2). */
  readonly checkQuorum: boolean;
  /** Bounded in-flight window per follower in replicate state: messages. */
  readonly inflightMessagesMax: number;
  /** Bounded in-flight window per follower in replicate state: entry payload bytes. */
  readonly inflightBytesMax: number;
  /** Entry payload bytes per AppendEntries message (at least one entry is always sent). */
  readonly appendBytesMax: number;
  /**
   * Largest command payload a proposal may carry, in bytes. A larger one is refused at once
   * (HQL_ENTRY_TOO_LARGE): it must never reach the log, where every store refuses it and the
   * node would stop. The embedder derives it from its log store's entry limit.
   */
  readonly commandBytesMax: number;
  /** Proposals beyond these many uncommitted entries / bytes are rejected as overloaded. */
  readonly uncommittedEntriesMax: number;
  readonly uncommittedBytesMax: number;
  /** Pending read-index requests on this node; beyond it requests are rejected. */
  readonly pendingReadsMax: number;
  /** Injected randomness (election timeouts). */
  readonly random: { int(lo: number, hiExclusive: number): number };
  /**
   * Reads durable entries back from the embedder's log store: [lo, hiExclusive), at most
   * `bytesMax` payload bytes but at least one entry, synchronously (etcd's Storage.Entries).
   * With it, the core drops the payload of entries that are durable here and handed out for
   * applying, and reads them back when a peer that lags needs them: its memory no longer
   * grows with the log between snapshots. Without it, entries stay in memory until compaction.
   */
  readonly readEntries?: (lo: LogIndex, hiExclusive: LogIndex, bytesMax: number) => Entry[];
  /**
   * While this returns true the node neither votes nor campaigns, whatever membership its log
   * shows: a node that lost its state and joins again may have voted in a term it no longer
   * remembers, and a log or snapshot it receives may list it as a voter before the leader has
   * removed and re-added it. The embedder keeps this true (durably) until that join completes.
   */
  readonly abstain?: () => boolean;
  readonly plantedBugs?: PlantedBugs;
}

/** What the embedder recovered from disk at start. */
export interface RaftBootState {
  readonly hardState: HardState;
  /** The snapshot the state machine holds (index 0 with the initial membership when none). */
  readonly snapshot: SnapshotMeta;
  /**
   * Every persisted entry after `snapshot.index`, contiguous. With `RaftConfig.readEntries`, the
   * payload of command entries at or below `appliedIndex` is never used (the core reads it back
   * when a peer needs it): the embedder may pass them with an empty `data`.
   */
  readonly entries: readonly Entry[];
  /** The index the state machine has applied (>= snapshot.index, <= hardState.commit). */
  readonly appliedIndex: LogIndex;
}

export type ProposeResult =
  | { readonly ok: true; readonly index: LogIndex; readonly term: Term }
  | { readonly ok: false; readonly error: ProposeError };

export type ProposeError =
  | { readonly code: 'HQL_NOT_LEADER'; readonly leaderId: NodeId | null }
  | { readonly code: 'HQL_OVERLOADED'; readonly reason: 'uncommitted-entries' | 'uncommitted-bytes' }
  | { readonly code: 'HQL_ENTRY_TOO_LARGE'; readonly bytes: number; readonly bytesMax: number }
  | { readonly code: 'HQL_LEADERSHIP_TRANSFER'; readonly target: NodeId }
  | { readonly code: 'HQL_CONFIG_CHANGE_PENDING' }
  | { readonly code: 'HQL_INVALID_CONFIG_CHANGE'; readonly reason: string };

export type MembershipChange =
  | { readonly type: 'add-learner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };
