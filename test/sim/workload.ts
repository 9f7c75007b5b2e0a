/**
 * Simulated clients: each runs one operation at a time against a small KV register (write / cas
 * through `propose`, reads through read-index) and records the history the linearizability
 * checker judges. A client sends to the node it believes leads (or a random one) and retries
 * where a retry cannot apply the operation twice:
 *  - HQL_NOT_LEADER and other rejections, node down: never proposed, retry elsewhere;
 *  - a different entry applied at the proposal's index: it never took effect, retry;
 *  - proposer crashed, index skipped by a snapshot, or timeout while waiting: the outcome is
 *    unknown, the op ends with `return: null` and is never retried (it might apply twice).
 * Reads are side-effect free: a failed or timed-out read is dropped from the history.
 */
import { assert, assertNever } from '../../src/lib/assert.js';
import type { Random } from '../../src/lib/prng.js';
import type { NodeId } from '../../src/raft/types.js';
import type { EventQueue } from './event-queue.js';
import type { KvCommand } from './kv.js';
import type { KvOp, KvResult, Operation } from './linearizability.js';
import type { ProposalOutcome, ReadOutcome, SimNode } from './node.js';
import type { Profile } from './profile.js';
import type { Trace } from './trace.js';

export interface WorkloadStats {
  opsStarted: number;
  opsOk: number;
  opsUnknown: number;
  opsDropped: number;
  notLeaderRetries: number;
}

interface ActiveOp {
  readonly op: Operation;
  /** Bumped per attempt: callbacks of an abandoned attempt are ignored. */
  attempt: number;
  /** A proposal of this op is in some node's log with its fate not known. */
  inFlight: boolean;
  readonly probe: boolean;
}

interface Client {
  readonly id: number;
  knownLeader: NodeId | null;
  active: ActiveOp | null;
  /** Probe ops still to run (write, then read) in the liveness phase. */
  probesLeft: Array<'write' | 'read'>;
}

/** Retry delays after a rejection: a client backs off a little before trying another node. */
const RETRY_US_MIN = 1_000;
const RETRY_US_MAX = 20_000;
/** Ops per client at most (bounds the history the checker must search). */
const OPS_PER_CLIENT_MAX = 2_000;

export class Workload {
  readonly history: Operation[] = [];
  readonly stats: WorkloadStats = {
    opsStarted: 0,
    opsOk: 0,
    opsUnknown: 0,
    opsDropped: 0,
    notLeaderRetries: 0,
  };
  private readonly clients: Client[];
  private opIdNext = 1;
  private valueNext = 1;
  private stopped = false;
  /** Latest value per key seen completing: cas expectations that often match. */
  private readonly lastValue = new Map<string, number | null>();

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Random,
    private readonly profile: Profile,
    private readonly trace: Trace,
    private readonly nodes: ReadonlyMap<NodeId, SimNode>,
  ) {
    this.clients = Array.from({ length: profile.clients }, (_, i) => ({
      id: i + 1,
      knownLeader: null,
      active: null,
      probesLeft: [],
    }));
  }

  start(): void {
    for (const c of this.clients) this.scheduleNext(c, this.rng.int(0, 20_000));
  }

  /** No new operations from now on (operations in progress go on). */
  stop(): void {
    this.stopped = true;
  }

  get pendingOps(): number {
    return this.clients.filter((c) => c.active !== null && !c.active.probe).length;
  }

  /** Liveness probes: every client must complete one write and one read with a known outcome. */
  startProbes(): void {
    for (const c of this.clients) {
      c.probesLeft = ['write', 'read'];
      if (c.active === null) this.startProbe(c);
    }
  }

  get probesLeft(): number {
    return this.clients.reduce((n, c) => n + c.probesLeft.length, 0);
  }

  private scheduleNext(c: Client, delayUs: number): void {
    this.queue.after(delayUs, 'client', c.id, () => {
      if (this.stopped || c.active !== null) return;
      if (this.history.length >= OPS_PER_CLIENT_MAX * this.clients.length) return;
      this.begin(c, this.randomOp(), false);
    });
  }

  private startProbe(c: Client): void {
    const kind = c.probesLeft[0];
    if (kind === undefined) return;
    const key = this.rng.pick(this.profile.keys);
    const op: KvOp =
      kind === 'write' ? { type: 'write', key, value: this.valueNext++ } : { type: 'read', key };
    this.begin(c, op, true);
  }

  private randomOp(): KvOp {
    const key = this.rng.pick(this.profile.keys);
    const r = this.rng.next();
    if (r < this.profile.readRate) return { type: 'read', key };
    const value = this.valueNext++;
    if (r < this.profile.readRate + this.profile.casRate) {
      const expected = this.rng.chance(0.7) ? (this.lastValue.get(key) ?? null) : this.rng.int(0, value);
      return { type: 'cas', key, expected, value };
    }
    return { type: 'write', key, value };
  }

  private begin(c: Client, kvOp: KvOp, probe: boolean): void {
    assert(c.active === null, 'client already busy');
    const op: Operation = {
      id: this.opIdNext++,
      clientId: c.id,
      op: kvOp,
      call: this.queue.now,
      return: null,
      result: null,
    };
    const active: ActiveOp = { op, attempt: 0, inFlight: false, probe };
    c.active = active;
    this.stats.opsStarted++;
    // A probe that times out is followed by another (a removed node may never answer a read).
    this.queue.after(this.profile.opTimeoutUs, 'op-timeout', c.id, () => {
      if (c.active === active) this.finish(c, active.inFlight ? 'unknown' : 'dropped', null);
    });
    this.attempt(c, active);
  }

  private attempt(c: Client, a: ActiveOp): void {
    const token = ++a.attempt;
    const target = this.pickNode(c);
    const node = this.nodes.get(target) as SimNode;
    const kvOp = a.op.op;
    if (kvOp.type === 'read') {
      const ok = node.read(kvOp.key, (o) => {
        if (c.active === a && a.attempt === token) this.onRead(c, a, o);
      });
      if (!ok) this.retry(c, a, null);
      return;
    }
    const cmd: KvCommand = { opId: a.op.id, op: kvOp };
    // Set before proposing: until the group refuses it, the op may be in a log.
    a.inFlight = true;
    const ok = node.propose(cmd, (o) => {
      if (c.active === a && a.attempt === token) this.onProposal(c, a, o, target);
    });
    if (!ok) {
      a.inFlight = false;
      this.retry(c, a, null);
    }
  }

  private onProposal(c: Client, a: ActiveOp, o: ProposalOutcome, target: NodeId): void {
    switch (o.kind) {
      case 'applied':
        a.inFlight = false;
        c.knownLeader = target;
        this.finish(c, 'ok', o.result);
        return;
      case 'refused':
        a.inFlight = false;
        if (o.code === 'HQL_NOT_LEADER') this.stats.notLeaderRetries++;
        this.retry(c, a, o.leaderHint);
        return;
      case 'not-applied':
        a.inFlight = false;
        this.retry(c, a, null);
        return;
      case 'unknown':
        this.finish(c, 'unknown', null);
        return;
      default:
        assertNever(o, 'proposal outcome');
    }
  }

  private onRead(c: Client, a: ActiveOp, o: ReadOutcome): void {
    switch (o.kind) {
      case 'value':
        this.finish(c, 'ok', { type: 'read', value: o.value });
        return;
      case 'failed':
        this.retry(c, a, null);
        return;
      default:
        assertNever(o, 'read outcome');
    }
  }

  private retry(c: Client, a: ActiveOp, leaderHint: NodeId | null): void {
    c.knownLeader = leaderHint;
    this.queue.after(this.rng.int(RETRY_US_MIN, RETRY_US_MAX + 1), 'client-retry', c.id, () => {
      if (c.active === a) this.attempt(c, a);
    });
  }

  private pickNode(c: Client): NodeId {
    if (c.knownLeader !== null && this.rng.chance(this.profile.stickToLeaderRate)) return c.knownLeader;
    return this.rng.pick(this.profile.nodeIds);
  }

  private finish(c: Client, how: 'ok' | 'unknown' | 'dropped', result: KvResult | null): void {
    const a = c.active;
    assert(a !== null, 'finish without an active op');
    c.active = null;
    a.attempt++;
    const op = a.op;
    switch (how) {
      case 'ok':
        op.return = this.queue.now;
        op.result = result;
        this.history.push(op);
        this.stats.opsOk++;
        this.noteValue(op, result);
        if (a.probe) c.probesLeft.shift();
        break;
      case 'unknown':
        // A read's unknown outcome constrains nothing: drop it. A write or cas may have applied.
        if (op.op.type !== 'read') {
          this.history.push(op);
          this.stats.opsUnknown++;
        } else {
          this.stats.opsDropped++;
        }
        break;
      case 'dropped':
        this.stats.opsDropped++;
        break;
      default:
        assertNever(how, 'finish');
    }
    this.trace.note(this.queue.now, `c${c.id} op#${op.id} ${op.op.type} ${op.op.key} ${how}`);
    if (a.probe) {
      this.queue.after(0, 'client', c.id, () => {
        if (c.active === null) this.startProbe(c);
      });
      return;
    }
    this.scheduleNext(c, this.rng.int(0, this.profile.thinkUsMax + 1));
  }

  private noteValue(op: Operation, result: KvResult | null): void {
    const k = op.op;
    if (k.type === 'write') this.lastValue.set(k.key, k.value);
    else if (k.type === 'cas' && result?.type === 'cas' && result.ok) this.lastValue.set(k.key, k.value);
    else if (k.type === 'read' && result?.type === 'read') this.lastValue.set(k.key, result.value);
  }
}
