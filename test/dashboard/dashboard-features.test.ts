/**
 * The dashboard's Caches and Backups routes over real HTTP, against an in-memory backend: the
 * caches are a real cache state machine (src/sm/cache) fed commands directly; the backups a
 * fake service whose backup the test finishes when it wants. Pages are cut on the server and
 * values shown as bounded previews; a backup is created only with the session's CSRF token, a
 * second request while one runs joins it, and its error comes back with its code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeCacheValue } from '../../src/client/cache-client.js';
import type {
  BackupCreated,
  BackupList,
  CacheKeyPage,
  CacheOverview,
  SessionInfo,
  ValuePreview,
} from '../../src/dashboard/api-types.js';
import type {
  DashboardBackups,
  DashboardCaches,
  LeaderBackups,
  StoredBackup,
} from '../../src/dashboard/backend.js';
import {
  HEX_BYTES_SHOWN,
  KEYS_PAGE_MAX,
  VALUE_DECODE_BYTES_MAX,
  VALUE_PREVIEW_CHARS_MAX,
} from '../../src/dashboard/cache-browser.js';
import { HiqliteError } from '../../src/lib/errors.js';
import type { CacheCommand } from '../../src/sm/cache/command.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { FakeBackend, login, type Served, serveDashboard } from './helpers.js';

type Answer<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };

async function call<T>(
  s: Served,
  method: 'GET' | 'POST',
  path: string,
  o: { cookie: string; csrf?: string },
): Promise<{ status: number; body: Answer<T> }> {
  const r = await fetch(`${s.url}/dashboard/api/${path}`, {
    method,
    headers: { cookie: o.cookie, ...(o.csrf === undefined ? {} : { 'x-csrf-token': o.csrf }) },
  });
  return { status: r.status, body: (await r.json()) as Answer<T> };
}

function ok<T>(r: { status: number; body: Answer<T> }): T {
  assert.ok(r.body.ok, `${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.value;
}

/** The log clock of the fake cache group at the start: entries with a TTL count down against it. */
const NOW_MS = 1_700_000_000_000;

class FakeBackups implements DashboardBackups {
  s3 = true;
  creates = 0;
  local: StoredBackup[] = [];
  s3Error: HiqliteError | null = null;
  /** What the leader answers a follower (null: this node leads), or its error. */
  leader: LeaderBackups | null = null;
  leaderError: HiqliteError | null = null;
  private finish: ((e?: Error) => void) | null = null;

  available(): boolean {
    return true;
  }

  async list(target: 'local' | 's3'): Promise<readonly StoredBackup[]> {
    if (target === 's3' && this.s3Error !== null) throw this.s3Error;
    return this.local;
  }

  async leaderList(): Promise<LeaderBackups | null> {
    if (this.leaderError !== null) throw this.leaderError;
    return this.leader;
  }

  /** Runs until the test calls `end()`. */
  create() {
    this.creates++;
    return new Promise<void>((resolve, reject) => {
      this.finish = (e) => (e === undefined ? resolve() : reject(e));
    }).then(() => {
      const b = {
        name: `backup_20250102T023000.${String(this.creates).padStart(3, '0')}Z_i${40 + this.creates}_n2.hqbak`,
        bytes: 4096,
        createdMs: Date.UTC(2025, 0, 2, 2, 30, 0, this.creates),
        logIndex: 40 + this.creates,
        nodeId: 2,
      };
      this.local.push(b);
      return { ...b, logTerm: 3, databaseBytes: 8192, targets: ['local', 's3'] };
    });
  }

  get running(): boolean {
    return this.finish !== null;
  }

  end(e?: Error): void {
    const f = this.finish;
    this.finish = null;
    f?.(e);
  }
}

class FeatureBackend extends FakeBackend {
  readonly sm = new CacheStateMachine({ limits: { bytesMax: 64 * 1024 * 1024 } });
  private index = 0;
  readonly backups = new FakeBackups();
  readonly caches: DashboardCaches = {
    overview: () => {
      const st = this.sm.stats();
      return {
        ...st,
        nowMs: this.sm.clockMs(),
        bytesMax: this.sm.limits.bytesMax,
        listeners: 2,
        listenerLag: 1,
      };
    },
    entries: (cache, offset, limit) => this.sm.entriesPage(cache, offset, limit),
    counters: (counter, offset, limit) => this.sm.countersPage(counter, offset, limit),
  };

  apply(command: CacheCommand, nowMs = NOW_MS): void {
    const r = this.sm.internals.applyEnvelope({ nowMs, command }, ++this.index);
    if (!r.ok) assert.fail(`${command.type}: ${r.error.code} ${r.error.message}`);
  }

  override features() {
    return { caches: true, backups: true };
  }
}

describe('dashboard: caches and backups', () => {
  let s: Served;
  let b: FeatureBackend;
  let auth: { cookie: string; csrf: string };
  before(async () => {
    b = new FeatureBackend();
    s = await serveDashboard({ backend: b });
    auth = await login(s);
  });
  after(() => s.close());

  test('the session says which feature pages exist; without them their routes do not', async () => {
    const info = ok(await call<SessionInfo>(s, 'GET', 'session', auth));
    assert.deepEqual(info.features, { caches: true, backups: true });
    const plain = await serveDashboard();
    try {
      const a = await login(plain);
      for (const [method, path] of [
        ['GET', 'caches'],
        ['GET', 'cache-keys?name=x'],
        ['GET', 'backups'],
        ['POST', 'backup'],
      ] as const) {
        const r = await call(plain, method, path, a);
        assert.equal(r.status, 404, `${method} ${path}`);
      }
    } finally {
      await plain.close();
    }
  });

  test('the overview: caches with entries and bytes, counter groups, locks, listeners', async () => {
    for (let i = 0; i < 3; i++)
      b.apply({ type: 'put', cache: 'sessions', key: `s${i}`, value: encodeCacheValue({ user: i }) });
    b.apply({ type: 'counterAdd', counter: 'hits', key: 'home', delta: 5n });
    b.apply({ type: 'lockAcquire', key: 'job', holderId: 'w1', leaseMs: 60_000 });
    b.apply({ type: 'lockAcquire', key: 'job', holderId: 'w2', leaseMs: 60_000, waitMs: 60_000 });
    const o = ok(await call<CacheOverview>(s, 'GET', 'caches', auth));
    const sessions = o.caches.find((c) => c.name === 'sessions');
    assert.equal(sessions?.entries, 3);
    assert.ok((sessions?.bytes ?? 0) > 0);
    assert.deepEqual(o.counters, [{ name: 'hits', keys: 1 }]);
    assert.deepEqual([o.locksHeld, o.lockWaiters, o.listeners, o.listenerLag], [1, 1, 2, 1]);
    assert.equal(o.bytesMax, 64 * 1024 * 1024);
    assert.equal(o.truncated, false);
  });

  test('keys page by page on the server, live ones only, never more than the bound', async () => {
    for (let i = 0; i < 120; i++)
      b.apply({
        type: 'put',
        cache: 'many',
        key: `k${String(i).padStart(3, '0')}`,
        value: encodeCacheValue(i),
      });
    b.apply({ type: 'put', cache: 'many', key: 'gone', value: encodeCacheValue(0), ttlMs: 1 });
    // The entry with a 1 ms TTL has expired at the next command's clock.
    b.apply({ type: 'put', cache: 'other', key: 'tick', value: encodeCacheValue(0) }, NOW_MS + 5);
    const pages: CacheKeyPage[] = [];
    for (let offset = 0; pages.length < 5; offset += 50) {
      const p = ok(
        await call<CacheKeyPage>(s, 'GET', `cache-keys?name=many&offset=${offset}&limit=50`, auth),
      );
      pages.push(p);
      if (!p.hasMore) break;
    }
    assert.deepEqual(
      pages.map((p) => p.rows.length),
      [50, 50, 20],
    );
    const keys = pages.flatMap((p) => p.rows.map((r) => r.key));
    assert.equal(new Set(keys).size, 120);
    assert.ok(!keys.includes('gone'), 'an expired entry is not listed');
    assert.deepEqual(pages[2]?.rows.at(-1), {
      key: 'k119',
      value: { kind: 'json', bytes: 1, text: '119', truncated: false },
      ttlMs: null,
    });
    const tooMany = await call(s, 'GET', `cache-keys?name=many&limit=${KEYS_PAGE_MAX + 1}`, auth);
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.ok ? '' : tooMany.body.error.code, 'HQL_INVALID_PARAMS');
    const none = ok(await call<CacheKeyPage>(s, 'GET', 'cache-keys?name=no-such-cache', auth));
    assert.deepEqual([none.rows.length, none.hasMore], [0, false]);
    const counters = ok(await call<CacheKeyPage>(s, 'GET', 'cache-keys?kind=counter&name=hits', auth));
    assert.deepEqual(counters.rows, [{ key: 'home', value: '5', ttlMs: null }]);
  });

  test('values: msgpack shown as JSON and cut, bytes as hex and size, others undecoded; TTL left', async () => {
    const big = new Uint8Array(VALUE_DECODE_BYTES_MAX + 1).fill(7);
    const values: Record<string, Uint8Array> = {
      object: encodeCacheValue({ name: 'apple', tags: ['red'], n: 2n ** 62n }),
      long: encodeCacheValue('x'.repeat(VALUE_PREVIEW_CHARS_MAX * 3)),
      bytes: encodeCacheValue(new Uint8Array(100).fill(0xab)),
      notMsgpack: new Uint8Array([0xc1, 1, 2]),
      large: encodeCacheValue(big),
    };
    for (const [key, value] of Object.entries(values))
      b.apply({ type: 'put', cache: 'values', key, value, ttlMs: 90_000 });
    const p = ok(await call<CacheKeyPage>(s, 'GET', 'cache-keys?name=values', auth));
    const by = new Map(p.rows.map((r) => [r.key, r]));
    const preview = (k: string) => by.get(k)?.value as ValuePreview;
    assert.deepEqual(preview('object'), {
      kind: 'json',
      bytes: values.object?.byteLength,
      text: '{"name":"apple","tags":["red"],"n":"4611686018427387904"}',
      truncated: false,
    });
    const long = preview('long');
    assert.ok(long.kind === 'json' && long.truncated && long.text.length === VALUE_PREVIEW_CHARS_MAX);
    assert.deepEqual(preview('bytes'), {
      kind: 'bytes',
      bytes: values.bytes?.byteLength,
      size: 100,
      hex: 'ab'.repeat(HEX_BYTES_SHOWN),
    });
    assert.deepEqual(preview('notMsgpack'), { kind: 'raw', bytes: 3, hex: 'c10102', reason: 'not-msgpack' });
    const large = preview('large');
    assert.ok(
      large.kind === 'raw' && large.reason === 'too-large' && large.hex.length === 2 * HEX_BYTES_SHOWN,
    );
    // Every entry was put at the group's clock, which has not moved since, with a TTL of 90 s.
    assert.deepEqual(
      p.rows.map((r) => r.ttlMs),
      [90_000, 90_000, 90_000, 90_000, 90_000],
    );
  });

  test('backups: the list of each target (an S3 failure shown with its code), newest first', async () => {
    b.backups.local = [
      { name: 'backup_20250101T000000.000Z_i10_n1.hqbak', bytes: 100, createdMs: 1, logIndex: 10, nodeId: 1 },
      { name: 'backup_20250103T000000.000Z_i30_n1.hqbak', bytes: 300, createdMs: 3, logIndex: 30, nodeId: 1 },
    ];
    b.backups.s3Error = new HiqliteError('HQL_IO', 'the bucket did not answer', { retryable: true });
    const l = ok(await call<BackupList>(s, 'GET', 'backups', auth));
    assert.ok(l.local.ok);
    assert.deepEqual(
      l.local.backups.map((x) => x.logIndex),
      [30, 10],
    );
    assert.ok(l.s3 !== null && !l.s3.ok && l.s3.error.code === 'HQL_IO');
    assert.equal(l.runningSinceWallMs, null);
    assert.equal(l.leader, null, 'the leader lists no other folder');
    b.backups.s3Error = null;
    b.backups.local = [];
  });

  test("backups on a follower: the leader's folder beside its own (newest first), or why it could not be read", async () => {
    b.backups.local = [
      { name: 'backup_20250101T000000.000Z_i10_n2.hqbak', bytes: 100, createdMs: 1, logIndex: 10, nodeId: 2 },
    ];
    b.backups.leader = {
      nodeId: 3,
      backups: [
        {
          name: 'backup_20250104T000000.000Z_i40_n3.hqbak',
          bytes: 400,
          createdMs: 4,
          logIndex: 40,
          nodeId: 3,
        },
        {
          name: 'backup_20250105T000000.000Z_i50_n3.hqbak',
          bytes: 500,
          createdMs: 5,
          logIndex: 50,
          nodeId: 3,
        },
      ],
    };
    const l = ok(await call<BackupList>(s, 'GET', 'backups', auth));
    assert.ok(l.local.ok && l.local.backups.length === 1);
    assert.ok(l.leader?.list.ok);
    assert.equal(l.leader.nodeId, 3);
    assert.deepEqual(
      l.leader.list.backups.map((x) => [x.logIndex, x.nodeId]),
      [
        [50, 3],
        [40, 3],
      ],
    );
    b.backups.leaderError = new HiqliteError('HQL_UNAVAILABLE', 'no leader known', { retryable: true });
    const failed = ok(await call<BackupList>(s, 'GET', 'backups', auth));
    assert.ok(failed.local.ok, "the node's own folder is listed all the same");
    assert.ok(failed.leader !== null && !failed.leader.list.ok);
    assert.equal(failed.leader.list.error.code, 'HQL_UNAVAILABLE');
    b.backups.leaderError = null;
    b.backups.leader = null;
    b.backups.local = [];
  });

  test('create: only with the CSRF token; a second request while one runs joins it', async () => {
    const noToken = await call(s, 'POST', 'backup', { cookie: auth.cookie });
    assert.equal(noToken.status, 403);
    assert.equal(b.backups.creates, 0);
    const first = call<BackupCreated>(s, 'POST', 'backup', auth);
    await until(() => b.backups.running);
    const listed = ok(await call<BackupList>(s, 'GET', 'backups', auth));
    assert.ok(listed.runningSinceWallMs !== null, 'the list says a backup runs');
    const second = call<BackupCreated>(s, 'POST', 'backup', auth);
    // Both requests wait for the one backup.
    await until(() => s.dashboard.backupRequestsWaiting === 2);
    b.backups.end();
    const [a, c] = [ok(await first), ok(await second)];
    assert.equal(b.backups.creates, 1, 'one backup for both requests');
    assert.equal(a.name, c.name);
    assert.equal(a.logIndex, 41);
    assert.deepEqual([a.joined, c.joined], [false, true]);
    const l = ok(await call<BackupList>(s, 'GET', 'backups', auth));
    assert.ok(l.local.ok && l.local.backups.some((x) => x.name === a.name));
    assert.ok(l.last?.ok === true && l.last.backup.name === a.name);
    assert.equal(l.runningSinceWallMs, null);
  });

  test('create: a failed backup answers its error code, and the page is told it afterwards', async () => {
    const r = call(s, 'POST', 'backup', auth);
    await until(() => b.backups.running);
    b.backups.end(
      new HiqliteError('HQL_BACKUP_KEY_UNKNOWN', 'no backup encryption key is configured', {
        retryable: false,
      }),
    );
    const answer = await r;
    // The node's configuration lacks the key: a server-side fault (src/http/http-status.ts).
    assert.equal(answer.status, 500);
    assert.equal(answer.body.ok ? '' : answer.body.error.code, 'HQL_BACKUP_KEY_UNKNOWN');
    const l = ok(await call<BackupList>(s, 'GET', 'backups', auth));
    assert.ok(l.last?.ok === false && l.last.error.code === 'HQL_BACKUP_KEY_UNKNOWN');
  });
});

/** Polls `cond` every 5 ms, failing after 5 s. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail('condition not reached within 5 s');
}
