/**
 * Property tests of the cache state machine against simple models (fast-check, fixed seeds):
 * entries with expiry in log time, getRemove, replace, putIfAbsent, counters with saturation;
 * and for locks the safety properties: no two holders of a key whose leases overlap in log
 * time, tokens strictly increasing, FIFO service.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { CacheCommand } from '../../src/sm/cache/command.js';
import type { LockGrant } from '../../src/sm/cache/locks.js';
import type { CacheOutcome } from '../../src/sm/cache/result.js';
import { bytes, Harness, T0, text } from './cache-helpers.js';

const SEED = 0x00c0_ffee;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

const cacheName = fc.constantFrom('x', 'y');
const key = fc.constantFrom('a', 'b', 'c');
const value = fc.constantFrom('1', '2', '3', '');
const ttl = fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined });
const bigDelta = fc.oneof(
  fc.bigInt({ min: -10n, max: 10n }),
  fc.constantFrom(INT64_MAX, INT64_MIN, INT64_MAX / 2n, INT64_MIN / 2n),
);

const kvCommand: fc.Arbitrary<CacheCommand> = fc.oneof(
  fc
    .record({
      c: cacheName,
      k: key,
      v: value,
      t: ttl,
      type: fc.constantFrom('put', 'replace', 'putIfAbsent'),
    })
    .map(
      ({ c, k, v, t, type }) =>
        (t === undefined
          ? { type, cache: c, key: k, value: bytes(v) }
          : { type, cache: c, key: k, value: bytes(v), ttlMs: t }) as CacheCommand,
    ),
  fc
    .record({ c: cacheName, k: key, type: fc.constantFrom('get', 'getRemove', 'delete') })
    .map(({ c, k, type }) => ({ type, cache: c, key: k }) as CacheCommand),
  cacheName.map((c) => ({ type: 'clear', cache: c }) as CacheCommand),
  fc.constant({ type: 'expire' } as CacheCommand),
  fc
    .record({ k: key, d: bigDelta })
    .map(({ k, d }) => ({ type: 'counterAdd', counter: 'n', key: k, delta: d }) as CacheCommand),
  fc
    .record({ k: key, d: bigDelta })
    .map(({ k, d }) => ({ type: 'counterSet', counter: 'n', key: k, value: d }) as CacheCommand),
  key.map((k) => ({ type: 'counterGet', counter: 'n', key: k }) as CacheCommand),
  key.map((k) => ({ type: 'counterDelete', counter: 'n', key: k }) as CacheCommand),
);

const steps = (command: fc.Arbitrary<CacheCommand>) =>
  fc.array(
    fc.record({
      command,
      // Mostly forward, sometimes backward (a leader whose clock is behind).
      dtMs: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: -30, max: 0 })),
    }),
    { maxLength: 120 },
  );

/** The model: plain maps, expiry checked on read, physical removal as the spec says. */
class Model {
  clock = 0;
  readonly caches = new Map<string, Map<string, { v: string; exp: number | null }>>();
  readonly counters = new Map<string, bigint>();

  live(c: string, k: string): string | null {
    const e = this.caches.get(c)?.get(k);
    return e !== undefined && (e.exp === null || e.exp > this.clock) ? e.v : null;
  }

  apply(cmd: CacheCommand, nowMs: number): CacheOutcome {
    this.clock = Math.max(this.clock, nowMs);
    const map = (c: string) => {
      const m = this.caches.get(c) ?? new Map<string, { v: string; exp: number | null }>();
      this.caches.set(c, m);
      return m;
    };
    switch (cmd.type) {
      case 'put':
      case 'replace':
      case 'putIfAbsent': {
        const prev = this.live(cmd.cache, cmd.key);
        if (cmd.type === 'putIfAbsent' && prev !== null) return { type: 'putIfAbsent', stored: false };
        map(cmd.cache).set(cmd.key, {
          v: text(cmd.value)!,
          exp: cmd.ttlMs === undefined ? null : this.clock + cmd.ttlMs,
        });
        if (cmd.type === 'put') return { type: 'put' };
        if (cmd.type === 'replace') return { type: 'replace', previous: prev === null ? null : bytes(prev) };
        return { type: 'putIfAbsent', stored: true };
      }
      case 'get': {
        const v = this.live(cmd.cache, cmd.key);
        return { type: 'get', value: v === null ? null : bytes(v) };
      }
      case 'getRemove':
      case 'delete': {
        const v = this.live(cmd.cache, cmd.key);
        this.caches.get(cmd.cache)?.delete(cmd.key);
        if (cmd.type === 'delete') return { type: 'delete', deleted: v !== null };
        return { type: 'getRemove', value: v === null ? null : bytes(v) };
      }
      case 'clear': {
        const m = this.caches.get(cmd.cache);
        let removed = 0;
        for (const k of m?.keys() ?? []) if (this.live(cmd.cache, k) !== null) removed++;
        this.caches.delete(cmd.cache);
        return { type: 'clear', removed };
      }
      case 'expire': {
        let removed = 0;
        for (const m of this.caches.values()) {
          for (const [k, e] of m) {
            if (e.exp !== null && e.exp <= this.clock) {
              m.delete(k);
              removed++;
            }
          }
        }
        return { type: 'expire', removed, more: false };
      }
      case 'counterAdd': {
        let v = (this.counters.get(cmd.key) ?? 0n) + cmd.delta;
        v = v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : v;
        this.counters.set(cmd.key, v);
        return { type: 'counterAdd', value: v };
      }
      case 'counterSet':
        this.counters.set(cmd.key, cmd.value);
        return { type: 'counterSet' };
      case 'counterGet':
        return { type: 'counterGet', value: this.counters.get(cmd.key) ?? null };
      case 'counterDelete':
        return { type: 'counterDelete', deleted: this.counters.delete(cmd.key) };
      default:
        throw new Error(`not modelled: ${cmd.type}`);
    }
  }
}

describe('cache state machine against a model', () => {
  test('entries with TTL, get, getRemove, replace, putIfAbsent, delete, clear, expire and counters agree with the model', () => {
    fc.assert(
      fc.property(steps(kvCommand), (log) => {
        const h = new Harness();
        const model = new Model();
        let now = T0;
        for (const { command, dtMs } of log) {
          now += dtMs;
          const expected = model.apply(command, now);
          const r = h.run(command, now);
          assert.ok(r.ok, r.ok ? '' : r.error.message);
          assert.deepEqual(r.value, expected, command.type);
          assert.equal(h.sm.clockMs(), model.clock);
          for (const c of ['x', 'y']) {
            for (const k of ['a', 'b', 'c'])
              assert.equal(text(h.sm.get(c, k)), model.live(c, k), `${c}/${k}`);
          }
        }
        // The accounting returns to zero when everything is gone.
        h.run({ type: 'clearAll', counters: true }, now);
        assert.equal(h.sm.stats().bytes, 0);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('getRemove of concurrent takers: exactly one of them gets the value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 0, max: 7 }), (takers, putAfter) => {
        const h = new Harness();
        h.run({ type: 'put', cache: 'c', key: 'k', value: bytes('v') }, T0);
        let winners = 0;
        for (let i = 0; i < takers; i++) {
          // A racing replace lands between the takes: its value may be taken once more, the original never.
          if (i === putAfter) h.run({ type: 'replace', cache: 'c', key: 'k', value: bytes('w') }, T0);
          const r = h.run({ type: 'getRemove', cache: 'c', key: 'k' }, T0);
          assert.ok(r.ok && r.value.type === 'getRemove');
          if (text(r.value.value) === 'v') winners++;
        }
        assert.equal(winners, putAfter === 0 ? 0 : 1);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

// ---- locks -------------------------------------------------------------------------------------

const holder = fc.constantFrom('h1', 'h2', 'h3', 'h4');
const lockKey = fc.constantFrom('L1', 'L2');

type LockOp =
  | {
      op: 'acquire';
      key: string;
      holderId: string;
      leaseMs: number;
      waitMs: number | undefined;
      waitLeaseMs: number | undefined;
    }
  | { op: 'waitRenew'; key: string; holderIds: string[]; waitLeaseMs: number }
  | { op: 'renew' | 'release'; key: string; pick: number; leaseMs: number | undefined }
  | { op: 'cancel'; key: string; holderId: string }
  | { op: 'tick' };

const lockOp: fc.Arbitrary<LockOp> = fc.oneof(
  fc.record({
    op: fc.constant('acquire' as const),
    key: lockKey,
    holderId: holder,
    leaseMs: fc.integer({ min: 1, max: 40 }),
    waitMs: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
    waitLeaseMs: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
  }),
  fc.record({
    op: fc.constant('waitRenew' as const),
    key: lockKey,
    holderIds: fc.uniqueArray(holder, { minLength: 1, maxLength: 4 }),
    waitLeaseMs: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    op: fc.constantFrom('renew' as const, 'release' as const),
    key: lockKey,
    pick: fc.nat(),
    leaseMs: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
  }),
  fc.record({ op: fc.constant('cancel' as const), key: lockKey, holderId: holder }),
  fc.constant({ op: 'tick' } as const),
);

interface Tenure {
  readonly holderId: string;
  readonly token: number;
  readonly startMs: number;
  endMs: number;
  ended: boolean;
}

describe('locks against their safety properties', () => {
  test('no two holders of a key overlap in log time; tokens strictly increase; a passed lease is never reported held; no waiter is granted after its wait lease', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(lockOp, fc.integer({ min: 0, max: 15 })), { maxLength: 150 }), (ops) => {
        const tenures = new Map<string, Tenure[]>();
        /** `key/holderId` of a queued waiter → the end of its wait lease (absent: none). */
        const aliveUntil = new Map<string, number>();
        let clock = 0;
        const onGrant = (g: { key: string; holderId: string; token: number; expiresAtMs: number }) => {
          const alive = aliveUntil.get(`${g.key}/${g.holderId}`);
          assert.ok(alive === undefined || alive > clock, `${g.holderId} granted after its wait lease`);
          aliveUntil.delete(`${g.key}/${g.holderId}`);
          const list = tenures.get(g.key) ?? [];
          const prev = list.at(-1);
          if (prev !== undefined) {
            assert.ok(g.token > prev.token, 'tokens strictly increase per key');
            if (!prev.ended) {
              // The previous lease must have ended by lease expiry no later than this grant.
              assert.ok(prev.endMs <= clock, `lease of ${prev.token} still running at ${clock}`);
              prev.ended = true;
            }
          }
          list.push({
            holderId: g.holderId,
            token: g.token,
            startMs: clock,
            endMs: g.expiresAtMs,
            ended: false,
          });
          tenures.set(g.key, list);
        };
        const h = new Harness({ hooks: { onLockGranted: (g: LockGrant) => onGrant(g) } });
        let now = T0;
        for (const [op, dt] of ops) {
          now += dt;
          clock = Math.max(clock, now);
          // Any command first ends passed leases: close them in the record at their end time.
          for (const list of tenures.values()) {
            const t = list.at(-1);
            if (t !== undefined && !t.ended && t.endMs <= clock) t.ended = true;
          }
          const tokensOf = (key: string) => tenures.get(key)?.map((t) => t.token) ?? [0];
          switch (op.op) {
            case 'acquire': {
              const wasQueued = h.sm.lock(op.key)?.waiters.includes(op.holderId) === true;
              const r = h.run(
                {
                  type: 'lockAcquire',
                  key: op.key,
                  holderId: op.holderId,
                  leaseMs: op.leaseMs,
                  ...(op.waitMs === undefined ? {} : { waitMs: op.waitMs }),
                  ...(op.waitLeaseMs === undefined ? {} : { waitLeaseMs: op.waitLeaseMs }),
                },
                now,
              );
              assert.ok(r.ok && r.value.type === 'lockAcquire');
              const id = `${op.key}/${op.holderId}`;
              if (r.value.state === 'queued') {
                if (op.waitLeaseMs !== undefined) aliveUntil.set(id, clock + op.waitLeaseMs);
                else if (!wasQueued) aliveUntil.delete(id);
              }
              const last = tenures.get(op.key)?.at(-1);
              if (r.value.state === 'granted' && (last === undefined || last.token !== r.value.token)) {
                aliveUntil.delete(id); // granted by its acquire (the lock was free), not from the queue
                onGrant({
                  key: op.key,
                  holderId: op.holderId,
                  token: r.value.token,
                  expiresAtMs: r.value.expiresAtMs,
                });
              }
              break;
            }
            case 'renew': {
              const tokens = tokensOf(op.key);
              const token = Math.max(1, tokens[op.pick % tokens.length]!);
              const cmd: CacheCommand =
                op.leaseMs === undefined
                  ? { type: 'lockRenew', key: op.key, token }
                  : { type: 'lockRenew', key: op.key, token, leaseMs: op.leaseMs };
              const r = h.run(cmd, now);
              assert.ok(r.ok && r.value.type === 'lockRenew');
              const last = tenures.get(op.key)?.at(-1);
              const current = last !== undefined && !last.ended && last.token === token;
              assert.equal(r.value.renewed, current, 'only the current holder renews');
              if (current && r.value.expiresAtMs !== null) last.endMs = r.value.expiresAtMs;
              break;
            }
            case 'release': {
              const tokens = tokensOf(op.key);
              const token = Math.max(1, tokens[op.pick % tokens.length]!);
              const last = tenures.get(op.key)?.at(-1);
              const current = last !== undefined && !last.ended && last.token === token;
              if (current) {
                last.endMs = clock;
                last.ended = true;
              }
              const r = h.run({ type: 'lockRelease', key: op.key, token }, now);
              assert.ok(r.ok && r.value.type === 'lockRelease');
              assert.equal(r.value.released, current, 'a stale token is ignored');
              break;
            }
            case 'cancel': {
              const last = tenures.get(op.key)?.at(-1);
              const holds = last !== undefined && !last.ended && last.holderId === op.holderId;
              if (holds) {
                last.endMs = clock;
                last.ended = true;
              }
              const r = h.run({ type: 'lockCancel', key: op.key, holderId: op.holderId }, now);
              assert.ok(r.ok && r.value.type === 'lockCancel');
              if (holds) assert.equal(r.value.removed, 'holder');
              break;
            }
            case 'waitRenew': {
              const queued = h.sm.lock(op.key)?.waiters ?? [];
              const r = h.run(
                {
                  type: 'lockWaitRenew',
                  waitLeaseMs: op.waitLeaseMs,
                  keys: op.holderIds.map(() => op.key),
                  holderIds: op.holderIds,
                },
                now,
              );
              assert.ok(r.ok && r.value.type === 'lockWaitRenew');
              const renewed = op.holderIds.filter((id) => queued.includes(id));
              assert.equal(r.value.renewed, renewed.length, 'the queued waiters named are renewed');
              for (const id of renewed) aliveUntil.set(`${op.key}/${id}`, clock + op.waitLeaseMs);
              break;
            }
            case 'tick':
              h.run({ type: 'expire' }, now);
              break;
          }
          // The state machine's view agrees with the record, and never shows a passed lease.
          for (const k of ['L1', 'L2']) {
            const view = h.sm.lock(k);
            const last = tenures.get(k)?.at(-1);
            if (view === null)
              assert.ok(last === undefined || last.ended, `${k} free but ${last?.token} not ended`);
            else {
              assert.ok(
                last !== undefined && !last.ended && view.token === last.token,
                `${k} holder disagrees`,
              );
              assert.ok(view.expiresAtMs > clock, 'a passed lease is never reported held');
            }
          }
        }
        // Globally: tenures of a key never overlap.
        for (const list of tenures.values()) {
          for (let i = 1; i < list.length; i++) {
            assert.ok(list[i]!.startMs >= list[i - 1]!.endMs, 'leases overlap');
          }
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('waiters are granted in the order they queued (FIFO), skipping only those that gave up', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.boolean()),
        (ids, cancels) => {
          const order: string[] = [];
          const h = new Harness({ hooks: { onLockGranted: (g) => order.push(g.holderId) } });
          const first = h.run({ type: 'lockAcquire', key: 'k', holderId: '#first', leaseMs: 1000 }, T0);
          assert.ok(first.ok && first.value.type === 'lockAcquire' && first.value.state === 'granted');
          for (const id of ids) h.run({ type: 'lockAcquire', key: 'k', holderId: id, leaseMs: 1000 }, T0);
          const cancelled = new Set(ids.filter((_, i) => cancels[i] === true));
          for (const id of cancelled) h.run({ type: 'lockCancel', key: 'k', holderId: id }, T0);
          let token = first.value.token;
          for (let i = 0; i < ids.length; i++) {
            h.run({ type: 'lockRelease', key: 'k', token }, T0);
            const view = h.sm.lock('k');
            if (view === null) break;
            token = view.token;
          }
          assert.deepEqual(
            order,
            ids.filter((id) => !cancelled.has(id)),
          );
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });
});
