/**
 * The cache simulation's audit of lock wait leases, per node and life: no queued waiter is
 * granted a lock at or after the end of its wait lease (the node it waits on died or was cut
 * off: nobody would use or release the lock). It follows the commands the node's state machine
 * applies (`CacheGroup.observe`) with their log time, a model of its own of what each waiter's
 * wait lease is (its acquire's, then each `lockWaitRenew` naming it), and checks every grant the
 * state machine reports (`CacheGroupDeps.onLockGranted`) against it.
 *
 * Lenient where the log alone cannot say (never a false alarm): a renewal of a waiter counts
 * even when the state machine ignored it (the waiter was no longer queued, a session retry),
 * a renewal later in the grant's own entry counts, and a waiter whose acquire this life did not
 * see (before a snapshot this node installed) is not checked.
 */

import type { Entry } from '../../../src/raft/types.js';
import {
  type CacheCommandEnvelope,
  isCacheBatch,
  tryDecodeCacheBatch,
  tryDecodeCacheCommand,
} from '../../../src/sm/cache/command.js';
import type { LockGrant } from '../../../src/sm/cache/locks.js';
import { SimFailure } from '../failure.js';

interface WaiterModel {
  readonly leaseMs: number;
  /** The end of its wait lease in log time: null when its acquire carried none (no check). */
  aliveUntilMs: number | null;
}

export class WaitLeaseAudit {
  /** The state machine's log time after the entries seen so far (`max` of their `nowMs`). */
  private clockMs: number;
  private readonly waiters = new Map<string, WaiterModel>();
  /** Grants reported while the entries of the apply under way were applied, in order. */
  private readonly pending: LockGrant[] = [];
  /** Grants checked against a known wait lease (the run's statistics). */
  checked = 0;

  constructor(
    private readonly node: number,
    /** The state machine's log time now (after a snapshot install or a reset). */
    private readonly smClockMs: () => number,
    private readonly failLater: (e: unknown) => void,
  ) {
    this.clockMs = smClockMs();
  }

  /** CacheGroupDeps.onLockGranted: checked once the observer sees the entry that granted it. */
  granted(g: LockGrant): void {
    this.pending.push(g);
  }

  /** CacheApplyObserver.applied. */
  applied(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.kind === 'command') for (const env of envelopesOf(e.data)) this.follow(env);
      while (this.pending.length > 0 && (this.pending[0] as LockGrant).index <= e.index) {
        this.check(this.pending.shift() as LockGrant);
      }
    }
    // Grants of entries this batch did not hold (cannot happen: grants come from applying them).
    this.pending.length = 0;
  }

  /** CacheApplyObserver.replaced: the waiters' history is in the snapshot, not in entries seen. */
  replaced(): void {
    this.waiters.clear();
    this.pending.length = 0;
    this.clockMs = this.smClockMs();
  }

  private follow(env: CacheCommandEnvelope): void {
    if (env.nowMs > this.clockMs) this.clockMs = env.nowMs;
    const c = env.command;
    if (c.type === 'lockAcquire') {
      if (c.waitMs === 0) return;
      const id = waiterId(c.key, c.holderId);
      const aliveUntilMs = c.waitLeaseMs === undefined ? null : this.clockMs + c.waitLeaseMs;
      const known = this.waiters.get(id);
      if (known === undefined) this.waiters.set(id, { leaseMs: c.leaseMs, aliveUntilMs });
      else known.aliveUntilMs = aliveUntilMs;
    } else if (c.type === 'lockWaitRenew') {
      for (let i = 0; i < c.keys.length; i++) {
        const w = this.waiters.get(waiterId(c.keys[i] as string, c.holderIds[i] as string));
        if (w !== undefined && w.aliveUntilMs !== null) w.aliveUntilMs = this.clockMs + c.waitLeaseMs;
      }
    }
  }

  private check(g: LockGrant): void {
    const w = this.waiters.get(waiterId(g.key, g.holderId));
    if (w === undefined || w.aliveUntilMs === null) return;
    this.checked++;
    // The grant's log time: its lease counts from it.
    const grantedAtMs = g.expiresAtMs - w.leaseMs;
    if (grantedAtMs < w.aliveUntilMs) return;
    this.failLater(
      new SimFailure(
        'lock-safety',
        `n${this.node}: lock ${g.key} granted to waiter ${g.holderId} (token ${g.token}, entry ${g.index}) at log time ${grantedAtMs}, ${grantedAtMs - w.aliveUntilMs} ms after its wait lease ended at ${w.aliveUntilMs}`,
      ),
    );
  }
}

function waiterId(key: string, holderId: string): string {
  return `${key}\u0000${holderId}`;
}

function envelopesOf(data: Uint8Array): readonly CacheCommandEnvelope[] {
  if (isCacheBatch(data)) {
    const envs = tryDecodeCacheBatch(data);
    return Array.isArray(envs) ? envs : [];
  }
  const env = tryDecodeCacheCommand(data);
  return 'command' in env ? [env] : [];
}
