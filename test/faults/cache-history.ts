/**
 * What the cache workloads of a fault run observed (cache-workload.ts), checked by
 * cache-checks.ts. Times are ms since the history began (performance.now based, like History).
 *
 *   registers   put / get (linearizable) / putIfAbsent on a few keys, as register operations of
 *               the linearizability checker (test/sim/linearizability.ts): a History of its own
 *   takes       getRemove rounds: one value put on a fresh key, then several concurrent takers
 *   holders     lock grants, with their log-time grant, renewals, and how each tenure ended
 *   notifies    notify calls with their outcome (seq when acknowledged)
 *   listeners   per node, the segments of listening: what each delivered, and how it ended
 *   ttls        a value put with a TTL, then linearizable gets at moments of real time before
 *               and after the TTL ends
 */
import { HiqliteError } from '../../src/index.js';
import { History } from './workload.js';

export type CacheOutcomeKind = 'ok' | 'unknown';

/** One getRemove round on one key. */
export interface TakeRound {
  readonly key: string;
  readonly value: number;
  /** Of the put; null: unknown (it may or may not have been stored). */
  put: CacheOutcomeKind | null;
  readonly takers: Array<{ outcome: CacheOutcomeKind | null; value: number | null }>;
  /** A linearizable get after healing (only for rounds the check needs it for); undefined: not read. */
  final?: number | null;
}

/** One granted lock, as its holder saw it. Log times are the cluster's log clock (ms). */
export interface HolderRecord {
  readonly key: string;
  readonly token: number;
  /** The holder id the lock was granted to (renewals and the release name it). */
  readonly holderId: string;
  readonly leaseMs: number;
  /** Log time of the grant (expiresAtMs of the grant - leaseMs). */
  readonly grantAtMs: number;
  /** Log time of the last renewal that was acknowledged (the holder held the lock then). */
  confirmedAtMs: number;
  /** The latest lease end acknowledged (grant or renewal). */
  leaseEndMs: number;
  /** Renewals whose outcome is unknown (each may have extended the lease). */
  unknownRenewals: number;
  /**
   * How the tenure ended: released (the release said so, or its outcome is unknown), expired (a
   * renewal or the release was refused: the lease had run out), abandoned (the holder "died":
   * no renewal, no release), or still held when the workload stopped (then released).
   */
  end: 'released' | 'release-unknown' | 'expired' | 'abandoned' | null;
}

export interface NotifyRecord {
  readonly value: number;
  readonly call: number;
  return: number | null;
  outcome: CacheOutcomeKind | null;
  /** The notification's seq, when acknowledged. */
  seq: number | null;
}

/** One value put with a TTL, and the reads of it (times: this history's real-time clock). */
export interface TtlRound {
  readonly key: string;
  readonly value: number;
  readonly ttlMs: number;
  /** When the put was sent, and when it was acknowledged (null: not acknowledged). */
  readonly putAt: number;
  ackAt: number | null;
  /** Linearizable gets after the acknowledgement: when sent, when answered, what they said. */
  readonly reads: Array<{ readonly start: number; readonly end: number; readonly value: number | null }>;
}

/** One stretch of listening on one node: from opening a listener until it ended or was closed. */
export interface ListenSegment {
  readonly node: number;
  readonly opened: number;
  /** [seq, value] of every notification delivered, in delivery order. */
  readonly items: Array<[number, number]>;
  /** How it ended; null while open, or when closed by the workload. */
  end: { kind: 'lagged'; missed: number; at: number } | { kind: 'error'; code: string; at: number } | null;
}

export class CacheHistory {
  /** put / get / putIfAbsent as register ops (values unique, keys of their own). */
  readonly registers: History;
  readonly takes: TakeRound[] = [];
  readonly holders: HolderRecord[] = [];
  /** Lock attempts: granted, busy (try-lock), not granted in time, outcome unknown. */
  readonly lockAttempts = { granted: 0, timeout: 0, unknown: 0 };
  readonly notifies: NotifyRecord[] = [];
  readonly segments: ListenSegment[] = [];
  readonly ttls: TtlRound[] = [];
  readonly errorCodes = new Map<string, number>();
  readonly errorSamples = new Map<string, string>();
  private nextValue: number;

  constructor(
    firstValue: number,
    readonly t0 = performance.now(),
  ) {
    this.registers = new History(firstValue);
    this.nextValue = firstValue + 5_000_000;
  }

  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  uniqueValue(): number {
    return this.nextValue++;
  }

  noteError(e: unknown): string {
    const code = e instanceof HiqliteError ? e.code : e instanceof Error ? e.name : 'non-error';
    this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
    if (!this.errorSamples.has(code)) this.errorSamples.set(code, e instanceof Error ? e.message : String(e));
    return code;
  }

  /** ok / failed / unknown over every cache op (registers included). */
  counts(): { ok: number; failed: number; unknown: number } {
    const c = this.registers.counts();
    for (const r of this.takes) {
      for (const o of [r.put, ...r.takers.map((t) => t.outcome)]) {
        if (o === 'ok') c.ok++;
        else c.unknown++;
      }
    }
    c.ok += this.lockAttempts.granted;
    c.failed += this.lockAttempts.timeout;
    c.unknown += this.lockAttempts.unknown;
    for (const n of this.notifies) {
      if (n.outcome === 'ok') c.ok++;
      else c.unknown++;
    }
    for (const r of this.ttls) {
      if (r.ackAt === null) c.unknown++;
      else c.ok += 1 + r.reads.length;
    }
    return c;
  }
}
