/**
 * The whole replicated state of the cache group and the deterministic application of one
 * command to it. Pure and synchronous: no clock, no randomness, no I/O. Time is the log clock:
 * `clockMs = max(clockMs, entry.nowMs)` at every command (it never goes back, and it is in the
 * snapshot), and every expiry, lease and session decision uses it, so replicas that applied the
 * same log hold identical state, expiry included.
 *
 * Order of one command: decode (malformed → error, nothing changes), advance the clock, end
 * expired leases (passing locks on), look up the session (duplicate → stored result), run the
 * command, record the session.
 */
import { assertNever } from '../../lib/assert.js';
import {
  type CacheCommand,
  type CacheCommandEnvelope,
  isCacheBatch,
  tryDecodeCacheBatch,
  tryDecodeCacheCommand,
} from './command.js';
import type { CacheErrorInfo } from './errors.js';
import { checkBytes, KvStore, tooLargeError } from './kv.js';
import { type LockGrant, LockTable, type LockTablePlantedBugs } from './locks.js';
import { type Notification, NotificationRing } from './notifications.js';
import type { CacheLimits } from './options.js';
import type { CacheOutcome, CacheResult } from './result.js';
import { SessionTable } from './sessions.js';

export interface CacheHooks {
  /** A notification was applied (once per notify command, in log order). */
  onNotification?(n: Notification): void;
  /** A queued waiter was granted a lock (immediate grants are in the acquire's result). */
  onLockGranted?(g: LockGrant): void;
}

/** What an applied command produced for the runtime, handed to the hooks once it is applied. */
export type CacheEvent =
  | { readonly kind: 'notification'; readonly notification: Notification }
  | { readonly kind: 'lockGranted'; readonly grant: LockGrant };

/**
 * The outcome and result of every put that stored its value: shared and frozen (the most common
 * command allocates no result; a session keeps the same object, a caller reads it).
 */
const PUT_OUTCOME: CacheOutcome = Object.freeze({ type: 'put' });
const PUT_RESULT: CacheResult = Object.freeze({ ok: true, value: PUT_OUTCOME });

export class CacheState {
  clockMs = 0;
  /**
   * The log time of the first command this group applied (0: none yet, or a state restored from
   * a snapshot of a version that did not keep it). Every grant of this group is at or after it,
   * so its token is at least `tokenFloor()`; a lock whose token is below was granted by a group
   * founded before this one (a client holding it lost it). In the snapshot.
   */
  foundedAtMs = 0;
  readonly kv: KvStore;
  readonly locks: LockTable;
  readonly sessions: SessionTable;
  readonly ring: NotificationRing;

  /**
   * Events of the command being applied: the state machine hands them to its hooks after the
   * entry is applied, so a hook that throws cannot leave a command half applied.
   */
  readonly events: CacheEvent[] = [];

  constructor(
    readonly limits: CacheLimits,
    plantedBugs: LockTablePlantedBugs = {},
  ) {
    this.kv = new KvStore(limits);
    this.locks = new LockTable(
      limits,
      (grant) => this.events.push({ kind: 'lockGranted', grant }),
      plantedBugs,
    );
    this.sessions = new SessionTable(limits);
    this.ring = new NotificationRing(limits);
  }

  /** Applies the command bytes of the log entry at `index`. */
  applyCommand(data: Uint8Array, index: number): CacheResult {
    const envelope = tryDecodeCacheCommand(data);
    if (!('command' in envelope)) return { ok: false, error: envelope };
    return this.applyEnvelope(envelope, index);
  }

  /**
   * Applies the payload of the log entry at `index`: one command (its result), or a batch
   * (command.ts, CACHE_BATCH_FORMAT_VERSION): its commands one by one at that index, one result
   * each; a malformed batch changes nothing and has one error result.
   */
  applyEntry(data: Uint8Array, index: number): CacheResult | CacheResult[] {
    if (!isCacheBatch(data)) return this.applyCommand(data, index);
    const envelopes = tryDecodeCacheBatch(data);
    if (!Array.isArray(envelopes)) return { ok: false, error: envelopes };
    return this.applyBatch(envelopes, index);
  }

  /** The commands of one batch entry, in order, one result each. */
  applyBatch(envelopes: readonly CacheCommandEnvelope[], index: number): CacheResult[] {
    const results: CacheResult[] = new Array(envelopes.length);
    for (let i = 0; i < envelopes.length; i++) results[i] = this.applyEnvelope(envelopes[i]!, index);
    return results;
  }

  applyEnvelope(envelope: CacheCommandEnvelope, index: number): CacheResult {
    if (envelope.nowMs > this.clockMs) {
      if (this.clockMs === 0) this.foundedAtMs = envelope.nowMs;
      this.clockMs = envelope.nowMs;
    }
    const now = this.clockMs;
    this.locks.expireLeases(now, index);
    const { session } = envelope;
    if (session !== undefined) {
      const tooLarge = checkBytes(
        'session client id',
        session.clientId,
        this.limits.holderIdBytesMax,
        'holderIdBytesMax',
      );
      if (tooLarge !== undefined) return { ok: false, error: tooLarge };
      const found = this.sessions.lookup(session, now);
      if (found.kind === 'duplicate') return found.result;
      if (found.kind === 'stale' || found.kind === 'refused') return { ok: false, error: found.error };
    }
    const outcome = this.run(envelope.command, now, index);
    const result: CacheResult =
      outcome === PUT_OUTCOME
        ? PUT_RESULT
        : 'code' in outcome
          ? { ok: false, error: outcome }
          : { ok: true, value: outcome };
    if (session !== undefined) this.sessions.record(session, now, result);
    return result;
  }

  private run(c: CacheCommand, now: number, index: number): CacheOutcome | CacheErrorInfo {
    const { kv, locks } = this;
    switch (c.type) {
      case 'put':
      case 'replace':
      case 'putIfAbsent': {
        const r = kv.put(c.cache, c.key, c.value, c.ttlMs, now, c.type === 'putIfAbsent');
        if ('code' in r) return r;
        if (c.type === 'put') return PUT_OUTCOME;
        if (c.type === 'replace') return { type: 'replace', previous: r.previous };
        return { type: 'putIfAbsent', stored: r.stored };
      }
      case 'delete':
        return { type: 'delete', deleted: kv.remove(c.cache, c.key, now) !== null };
      case 'getRemove':
        return { type: 'getRemove', value: kv.remove(c.cache, c.key, now) };
      case 'get':
        return { type: 'get', value: kv.get(c.cache, c.key, now) };
      case 'clear':
        return { type: 'clear', removed: kv.clear(c.cache, now) };
      case 'clearAll':
        return { type: 'clearAll', removed: kv.clearAll(c.counters, now) };
      case 'expire': {
        const { removed, more } = kv.purgeExpired(now, this.limits.expireBatchMax);
        return { type: 'expire', removed, more };
      }
      case 'counterAdd':
      case 'counterSet': {
        const add = c.type === 'counterAdd';
        const v = kv.counterWrite(c.counter, c.key, add ? c.delta : c.value, add, now);
        if (typeof v !== 'bigint') return v;
        return add ? { type: 'counterAdd', value: v } : { type: 'counterSet' };
      }
      case 'counterGet':
        return { type: 'counterGet', value: kv.counterGet(c.counter, c.key) };
      case 'counterDelete':
        return { type: 'counterDelete', deleted: kv.counterDelete(c.counter, c.key) };
      case 'counterClear':
        return { type: 'counterClear', removed: kv.counterClear(c.counter) };
      case 'notify': {
        const tooLarge = checkBytes('channel', c.channel, this.limits.keyBytesMax, 'keyBytesMax');
        if (tooLarge !== undefined) return tooLarge;
        if (c.payload.length > this.limits.valueBytesMax) {
          return tooLargeError('payload', c.payload.length, this.limits.valueBytesMax, 'valueBytesMax');
        }
        const n = this.ring.push(c.channel, c.payload, index, now);
        this.events.push({ kind: 'notification', notification: n });
        return { type: 'notify', seq: n.seq, index };
      }
      case 'lockAcquire':
        return locks.acquire(c.key, c.holderId, c.leaseMs, c.waitMs, now, c.waitLeaseMs);
      case 'lockWaitRenew':
        return { type: 'lockWaitRenew', renewed: locks.renewWaits(c.keys, c.holderIds, c.waitLeaseMs, now) };
      case 'lockRenew': {
        const expiresAtMs = locks.renew(c.key, c.token, c.holderId, c.leaseMs, now);
        return { type: 'lockRenew', renewed: expiresAtMs !== null, expiresAtMs };
      }
      case 'lockRelease':
        return { type: 'lockRelease', released: locks.release(c.key, c.token, c.holderId, now, index) };
      case 'lockCancel':
        return { type: 'lockCancel', removed: locks.cancel(c.key, c.holderId, now, index) };
      default:
        return assertNever(c, 'cache command');
    }
  }
}
