/**
 * Determinism and snapshots of the cache state machine: the same log gives byte-identical
 * snapshots whatever the batch boundaries and wherever a snapshot was taken and restored;
 * snapshots stream in chunks, are written atomically, and a damaged one changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { Prng } from '../../src/lib/prng.js';
import type { GroupStateMachine } from '../../src/node/seams.js';
import { type Entry, logIndex, nodeId, term } from '../../src/raft/types.js';
import type { CacheCommand, CacheSession } from '../../src/sm/cache/command.js';
import type { LockGrant } from '../../src/sm/cache/locks.js';
import type { Notification } from '../../src/sm/cache/notifications.js';
import { SNAPSHOT_CHUNK_BYTES } from '../../src/sm/cache/snapshot.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { bytes, chunksOf, commandEntry, Harness, snapshotBytes, T0, text } from './cache-helpers.js';

const SEEDS = [1, 2, 3, 42, 0xdecade];

function randomCommand(r: Prng): CacheCommand {
  const cache = r.pick(['a', 'b', 'c']);
  const key = `k${r.int(0, 12)}`;
  const value = new Uint8Array(r.int(0, 40)).map(() => r.int(0, 256));
  // Few distinct TTLs and many commands at the same instant: expiries tie, which orders must break alike.
  const ttl = r.chance(0.5) ? { ttlMs: r.pick([10, 50, 100, r.int(1, 300)]) } : {};
  switch (r.int(0, 18)) {
    case 0:
    case 1:
      return { type: 'put', cache, key, value, ...ttl };
    case 2:
      return { type: 'replace', cache, key, value, ...ttl };
    case 3:
      return { type: 'putIfAbsent', cache, key, value, ...ttl };
    case 4:
      return { type: 'getRemove', cache, key };
    case 5:
      return { type: 'delete', cache, key };
    case 6:
      return { type: 'get', cache, key };
    case 7:
      return r.chance(0.1) ? { type: 'clear', cache } : { type: 'expire' };
    case 8:
      return {
        type: 'counterAdd',
        counter: cache,
        key,
        delta: BigInt(r.int(-1000, 1000)) * (r.chance(0.1) ? 2n ** 53n : 1n),
      };
    case 9:
      return r.chance(0.2)
        ? { type: 'counterDelete', counter: cache, key }
        : { type: 'counterSet', counter: cache, key, value: BigInt(r.int(-5, 5)) };
    case 10:
    case 11:
      return { type: 'notify', channel: cache, payload: value };
    case 12:
    case 13:
      return {
        type: 'lockAcquire',
        key: `L${r.int(0, 3)}`,
        holderId: `h${r.int(0, 6)}`,
        leaseMs: r.int(1, 200),
        ...(r.chance(0.3) ? { waitMs: r.int(0, 200) } : {}),
        ...(r.chance(0.5) ? { waitLeaseMs: r.int(1, 200) } : {}),
      };
    case 14:
      return { type: 'lockRelease', key: `L${r.int(0, 3)}`, token: r.int(1, 40) };
    case 15:
      return {
        type: 'lockRenew',
        key: `L${r.int(0, 3)}`,
        token: r.int(1, 40),
        ...(r.chance(0.5) ? { leaseMs: r.int(1, 200) } : {}),
      };
    case 16: {
      const key = `L${r.int(0, 3)}`;
      if (r.chance(0.5)) return { type: 'lockCancel', key, holderId: `h${r.int(0, 6)}` };
      return {
        type: 'lockWaitRenew',
        waitLeaseMs: r.int(1, 200),
        keys: [key, key],
        holderIds: ['h1', `h${r.int(2, 6)}`],
      };
    }
    default:
      return r.chance(0.05) ? { type: 'clearAll', counters: r.chance(0.5) } : { type: 'get', cache, key };
  }
}

/** A log of commands (some under sessions, some retried), no-ops and configuration entries. */
function randomLog(seed: number, n: number): Entry[] {
  const r = new Prng(seed);
  const log: Entry[] = [];
  let now = T0;
  const seqs = new Map<string, number>();
  for (let i = 1; i <= n; i++) {
    now += r.chance(0.1) ? -r.int(0, 50) : r.chance(0.4) ? 0 : r.int(0, 30);
    if (r.chance(0.03)) {
      log.push({ kind: 'noop', index: logIndex(i), term: term(1 + Math.floor(i / 100)) });
      continue;
    }
    if (r.chance(0.01)) {
      const membership = { voters: [nodeId(1), nodeId(2), nodeId(r.int(3, 6))], learners: [nodeId(9)] };
      log.push({ kind: 'config', index: logIndex(i), term: term(1 + Math.floor(i / 100)), membership });
      continue;
    }
    let session: CacheSession | undefined;
    if (r.chance(0.3)) {
      const clientId = `client${r.int(0, 4)}`;
      const seq = (seqs.get(clientId) ?? 0) + (r.chance(0.2) ? 0 : 1);
      seqs.set(clientId, seq);
      session = { clientId, seq };
    }
    log.push(commandEntry(i, randomCommand(r), now, session));
  }
  return log;
}

interface Replica {
  readonly sm: CacheStateMachine;
  readonly results: unknown[];
  readonly notifications: Notification[];
  readonly grants: LockGrant[];
}

function replica(limits = {}): Replica {
  const notifications: Notification[] = [];
  const grants: LockGrant[] = [];
  const sm = new CacheStateMachine({
    limits: {
      sessionsMax: 3,
      notificationsRingMax: 20,
      entriesPerCacheMax: 8,
      expireBatchMax: 2,
      lockWaitersPerKeyMax: 3,
      ...limits,
    },
    hooks: { onNotification: (n) => notifications.push(n), onLockGranted: (g) => grants.push(g) },
  });
  return { sm, results: [], notifications, grants };
}

/** Applies `entries` in batches whose sizes the PRNG picks. */
function applyInBatches(rep: Replica, entries: readonly Entry[], r: Prng | null): void {
  let i = 0;
  while (i < entries.length) {
    const n = r === null ? entries.length : r.int(1, 20);
    const batch = entries.slice(i, i + n);
    rep.results.push(
      ...rep.sm.applySync(
        batch,
        batch.map(() => true),
      ),
    );
    i += batch.length;
  }
}

const CHECKPOINT_EVERY = 25;

/**
 * Applies the log from the replica's applied index on, in random batches, and returns its
 * snapshot at every multiple of CHECKPOINT_EVERY (physical state differences that later
 * commands would hide, such as which of several tied expired entries an `expire` removed,
 * show there).
 */
async function applyWithCheckpoints(
  rep: Replica,
  log: readonly Entry[],
  r: Prng | null,
): Promise<Map<number, Uint8Array>> {
  const out = new Map<number, Uint8Array>();
  let at: number = rep.sm.appliedIndex();
  while (at < log.length) {
    const next = Math.min(log.length, (Math.floor(at / CHECKPOINT_EVERY) + 1) * CHECKPOINT_EVERY);
    applyInBatches(rep, log.slice(at, next), r);
    at = next;
    out.set(at, await snapshotBytes(rep.sm));
  }
  return out;
}

describe('determinism', () => {
  for (const seed of SEEDS) {
    test(`seed ${seed}: the same log in different batch splits and across snapshot/restore gives byte-identical snapshots`, async () => {
      const log = randomLog(seed, 1500);
      const whole = replica();
      const expected = await applyWithCheckpoints(whole, log, null);
      const split = replica();
      const splitSnapshots = await applyWithCheckpoints(split, log, new Prng(seed ^ 0x55));
      assert.deepEqual(split.results, whole.results, 'same results');
      assert.deepEqual(split.notifications, whole.notifications, 'same notifications');
      assert.deepEqual(split.grants, whole.grants, 'same lock grants');
      assert.deepEqual(splitSnapshots, expected);

      // A replica that took a snapshot mid-way, was restored from it into a fresh machine, and
      // applied the rest of the log.
      const cut = new Prng(seed).int(1, log.length);
      const first = replica();
      applyInBatches(first, log.slice(0, cut), new Prng(seed + 1));
      const mid = await snapshotBytes(first.sm);
      const restored = replica();
      await restored.sm.restoreFrom(chunksOf(mid, 333));
      assert.equal(restored.sm.appliedIndex(), cut);
      assert.deepEqual(await snapshotBytes(restored.sm), mid, 'a restored state snapshots identically');
      const restoredSnapshots = await applyWithCheckpoints(restored, log, new Prng(seed + 2));
      assert.deepEqual(restored.results, whole.results.slice(cut), 'same results after the restore');
      for (const [index, snap] of restoredSnapshots)
        assert.deepEqual(snap, expected.get(index), `at ${index}`);
      assert.deepEqual(restored.sm.stats(), whole.sm.stats());
    });
  }

  test('the generated logs exercise every part of the state (the test can fail)', async () => {
    const rep = replica();
    applyInBatches(rep, randomLog(SEEDS[0]!, 1500), null);
    const kinds = new Set(
      rep.results.flatMap((r) => {
        const x = r as
          | { ok: boolean; value?: { type: string; more?: boolean }; error?: { code: string } }
          | undefined;
        if (x === undefined) return [];
        if (x.ok && x.value!.type === 'expire' && x.value!.more === true) return ['expire-more'];
        return [x.ok ? x.value!.type : x.error!.code];
      }),
    );
    for (const k of [
      'put',
      'getRemove',
      'expire',
      'expire-more',
      'counterAdd',
      'notify',
      'lockAcquire',
      'lockRelease',
      'HQL_CACHE_FULL',
    ]) {
      assert.ok(kinds.has(k), `no ${k} in the log`);
    }
    assert.ok(rep.grants.length > 5, 'waiters were granted');
    const s = rep.sm.stats();
    assert.ok(s.caches.length > 0 && s.sessions > 0 && s.notificationsHeld > 0);
  });
});

describe('snapshots', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'hq-cache-snap-'));
    dirs.push(d);
    return d;
  };

  test('a snapshot file is written atomically and restores the state it was taken at', async () => {
    const dir = await tempDir();
    const h = new Harness();
    h.sm.applySync(randomLog(7, 300), new Array(300).fill(false));
    const config: Entry = {
      kind: 'config',
      index: logIndex(h.next),
      term: term(3),
      membership: { voters: [nodeId(1)], learners: [] },
    };
    h.sm.applySync([config], [false]);
    const path = join(dir, 'snap');
    const info = await h.sm.snapshot(path);
    assert.deepEqual(info, { index: 301, term: 3, membership: { voters: [1], learners: [] } });
    assert.deepEqual(await readdir(dir), ['snap'], 'no partial file is left');
    const other = new CacheStateMachine({ limits: h.sm.limits });
    await other.restore(path, { index: info.index, term: info.term, membership: info.membership! });
    assert.deepEqual(await snapshotBytes(other), await snapshotBytes(h.sm));
    assert.deepEqual(new Uint8Array(await readFile(path)), new Uint8Array(await snapshotBytes(h.sm)));
    await assert.rejects(
      other.restore(path, { index: logIndex(300), term: term(3), membership: info.membership! }),
      (e: Error & { code?: string }) => e.code === 'HQL_CORRUPTION',
    );
  });

  test('it is a GroupStateMachine: driven through the seam alone, a follower catches up from a snapshot and the log', async () => {
    const dir = await tempDir();
    const log = randomLog(5, 200);
    const leader: GroupStateMachine = new CacheStateMachine();
    const results = await leader.apply(
      log.slice(0, 120),
      log.slice(0, 120).map(() => true),
    );
    assert.equal(results.length, 120);
    assert.ok(results.some((r) => r !== undefined));
    const path = join(dir, 'seam');
    const info = await leader.snapshot(path);
    assert.equal(info.index, 120);
    await leader.apply(
      log.slice(120),
      log.slice(120).map(() => false),
    );
    const follower: GroupStateMachine = new CacheStateMachine();
    await follower.restore(path, {
      index: info.index,
      term: info.term,
      membership: info.membership ?? { voters: [], learners: [] },
    });
    assert.equal(follower.appliedIndex(), 120);
    await follower.apply(
      log.slice(120),
      log.slice(120).map(() => false),
    );
    assert.deepEqual(
      await snapshotBytes(follower as CacheStateMachine),
      await snapshotBytes(leader as CacheStateMachine),
    );
    assert.ok((leader.sizeBytes?.() ?? 0) > 0);
    await follower.reset();
    assert.equal(follower.appliedIndex(), 0);
    await leader.close();
    await follower.close();
  });

  test('a damaged or truncated snapshot is refused with HQL_CORRUPTION and the state stays as it was', async () => {
    const source = new Harness();
    source.sm.applySync(randomLog(9, 400), new Array(400).fill(false));
    const good = await snapshotBytes(source.sm);
    const target = new Harness();
    target.ok({ type: 'put', cache: 'mine', key: 'k', value: bytes('v') }, T0);
    const before = await snapshotBytes(target.sm);
    const r = new Prng(11);
    const damaged: Uint8Array[] = [
      good.subarray(0, good.length - 1),
      good.subarray(0, r.int(1, good.length)),
      new Uint8Array(0),
    ];
    for (let i = 0; i < 40; i++) {
      const copy = new Uint8Array(good);
      const at = r.int(0, copy.length);
      copy[at] = copy[at]! ^ (1 << r.int(0, 8));
      damaged.push(copy);
    }
    damaged.push(new Uint8Array([...good, 0]));
    for (const d of damaged) {
      await assert.rejects(
        target.sm.restoreFrom(chunksOf(d, 1000)),
        (e: Error & { code?: string }) => e.code === 'HQL_CORRUPTION',
      );
    }
    assert.deepEqual(await snapshotBytes(target.sm), before);
    await target.sm.restoreFrom(chunksOf(good, 1));
    assert.deepEqual(await snapshotBytes(target.sm), good, 'read byte by byte');
  });

  test('a snapshot streams in bounded chunks and holds the state as of its start while commands apply', async () => {
    const h = new Harness();
    for (let i = 0; i < 5; i++) {
      h.ok({ type: 'put', cache: 'big', key: `k${i}`, value: new Uint8Array(600 * 1024).fill(i) }, T0);
    }
    const expected = await snapshotBytes(h.sm);
    const chunks: Uint8Array[] = [];
    let applied = 0;
    await h.sm.writeSnapshot(async (chunk) => {
      assert.ok(chunk.length <= SNAPSHOT_CHUNK_BYTES, `chunk of ${chunk.length} bytes`);
      chunks.push(chunk);
      // Commands keep applying between chunks.
      h.ok({ type: 'put', cache: 'big', key: `k${applied}`, value: bytes('changed') }, T0 + 1);
      h.ok({ type: 'lockAcquire', key: 'L', holderId: `h${applied}`, leaseMs: 5 }, T0 + 1);
      applied++;
      await new Promise((resolve) => setImmediate(resolve));
    });
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(expected));
  });

  test('reset forgets everything; a closed machine refuses work', async () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v') }, T0);
    await h.sm.reset();
    assert.equal(h.sm.appliedIndex(), 0);
    assert.deepEqual(await snapshotBytes(h.sm), await snapshotBytes(new CacheStateMachine()));
    await h.sm.close();
    assert.throws(
      () => h.sm.applySync([], []),
      (e: Error & { code?: string }) => e.code === 'HQL_CLOSED',
    );
  });

  test("the token floor: the first command's log time in tokens, kept by snapshots; 0 before and after reset", async () => {
    const h = new Harness();
    assert.equal(h.sm.tokenFloor(), 0, 'nothing applied: not known');
    h.ok({ type: 'expire' }, T0 + 7);
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v') }, T0 + 50);
    const grant = h.ok({ type: 'lockAcquire', key: 'l', holderId: 'h', leaseMs: 1000 }, T0 + 60);
    assert.equal(h.sm.tokenFloor(), (T0 + 7) * 1000);
    assert.ok(grant.state === 'granted' && grant.token >= h.sm.tokenFloor(), 'every grant is at or above it');
    const other = new CacheStateMachine({ limits: h.sm.limits });
    await other.restoreFrom(chunksOf(await snapshotBytes(h.sm), 100));
    assert.equal(other.tokenFloor(), (T0 + 7) * 1000, 'a snapshot keeps it');
    await h.sm.reset();
    assert.equal(h.sm.tokenFloor(), 0);
  });

  test('a snapshot of a version that kept no token floor restores with none (0), the rest as it was', async () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v') }, T0);
    const current = await snapshotBytes(h.sm);
    // Rewritten as an older writer wrote it: the header without its last item.
    const frames: unknown[][] = [];
    for (let at = 8; at < current.length - 4; ) {
      const len = new DataView(current.buffer, current.byteOffset + at).getUint32(0);
      frames.push(unpack(current.subarray(at + 4, at + 4 + len)) as unknown[]);
      at += 4 + len;
    }
    assert.equal(frames[0]?.[0], 'H');
    assert.equal(frames[0]?.length, 9);
    frames[0] = frames[0]!.slice(0, 8);
    const parts: Uint8Array[] = [current.subarray(0, 8)];
    for (const f of frames) {
      const packed = pack(f);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, packed.length);
      parts.push(len, packed);
    }
    const body = Buffer.concat(parts);
    const crc = new Uint8Array(4);
    new DataView(crc.buffer).setUint32(0, crc32(body));
    const older = new CacheStateMachine({ limits: h.sm.limits });
    await older.restoreFrom(chunksOf(Buffer.concat([body, crc]), 64));
    assert.equal(older.tokenFloor(), 0);
    assert.equal(text(older.get('c', 'k')), 'v');
  });

  test('an unknown file is refused, not parsed', async () => {
    const dir = await tempDir();
    const path = join(dir, 'not-a-snapshot');
    await writeFile(path, 'SQLite format 3\0 and so on');
    const sm = new CacheStateMachine();
    await assert.rejects(
      sm.restore(path, { index: logIndex(1), term: term(1), membership: { voters: [], learners: [] } }),
      (e: Error & { code?: string }) => e.code === 'HQL_CORRUPTION' && /magic/.test(e.message),
    );
  });
});

describe('snapshot reader on hostile input', () => {
  test('fuzz: any bytes after the magic are HQL_CORRUPTION, never another error', async () => {
    const magic = new TextEncoder().encode('HQLCACHE');
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 1, max: 64 }),
        async (tail, chunk) => {
          const sm = new CacheStateMachine();
          await assert.rejects(
            sm.restoreFrom(chunksOf(new Uint8Array([...magic, ...tail]), chunk)),
            (e: Error & { code?: string }) => e.code === 'HQL_CORRUPTION',
          );
          assert.equal(sm.appliedIndex(), 0);
        },
      ),
      { seed: 0xbadf00d, numRuns: 500 },
    );
  });

  test('a source that fails is HQL_IO, not corruption', async () => {
    const sm = new CacheStateMachine();
    await assert.rejects(
      sm.restore(join(tmpdir(), 'hq-cache-no-such-dir', 'snap'), {
        index: logIndex(1),
        term: term(1),
        membership: { voters: [], learners: [] },
      }),
      (e: Error & { code?: string }) => e.code === 'HQL_IO',
    );
  });
});
