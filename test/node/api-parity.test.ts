/**
 * The embedded node and the remote client answer the same mistake with the same error (class,
 * code, `retryable`), and a remote client's close() lets its calls under way end. Each case was
 * found by an outside probe comparing the two (the embedded node on its own thread and a remote
 * client of it, one node).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CacheError, connect, type HiqliteClient, type HiqliteError } from '../../src/index.js';
import { nodeAndRemote, TEST_SECRETS } from '../support/one-node-config.js';

/** A read that runs until it is stopped (no row limit is reached before the interrupt). */
const ENDLESS = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('the embedded node and a remote client answer alike', () => {
  const f = nodeAndRemote('hq-api-parity-');
  const both = (): Array<[string, HiqliteClient]> => [
    ['embedded', f.node],
    ['remote', f.remote],
  ];

  test('removeNode with an id beyond any node id is HQL_INVALID_PARAMS (was: success embedded, HQL_PROTOCOL remote)', async () => {
    for (const [who, db] of both()) {
      for (const id of [2 ** 32, 2 ** 53 - 1]) {
        await assert.rejects(db.removeNode(id), (e: HiqliteError) => {
          assert.equal(e.code, 'HQL_INVALID_PARAMS', `${who} ${id}: ${e.message}`);
          assert.match(e.message, /1\.\.4294967295/);
          return true;
        });
      }
    }
  });

  test('PRAGMA journal_mode, on the read allowlist, reads (was: HQL_READONLY)', async () => {
    for (const [who, db] of both()) {
      assert.deepEqual(await db.query('PRAGMA journal_mode'), [{ journal_mode: 'wal' }], who);
      assert.deepEqual(
        await db.query('PRAGMA journal_mode', [], { timeoutMs: 5000 }),
        [{ journal_mode: 'wal' }],
        who,
      );
      // Setting it stays refused, however asked.
      await assert.rejects(db.query('PRAGMA journal_mode = DELETE'), { code: 'HQL_STATEMENT_NOT_ALLOWED' });
    }
  });

  test('a lock key over keyBytesMax is a CacheError naming the limit (was: a plain HiqliteError remotely)', async () => {
    for (const [who, db] of both()) {
      // Over the default 4 KiB (the node refuses it), and over any keyBytesMax (the client does).
      for (const key of ['k'.repeat(4097), 'k'.repeat(70_000)]) {
        for (const call of [() => db.lock(key, { waitMs: 1000 }), () => db.tryLock(key)]) {
          await assert.rejects(call(), (e: Error) => {
            assert.ok(e instanceof CacheError, `${who} ${key.length}: ${e.constructor.name} ${e.message}`);
            assert.equal(e.code, 'HQL_CACHE_TOO_LARGE');
            assert.equal(e.retryable, false);
            assert.equal(e.info.limit, 'keyBytesMax', `${who} ${key.length}`);
            return true;
          });
        }
      }
    }
  });

  test('a read stopped by its AbortSignal is HQL_ABORTED and retryable, as documented (was: not retryable remotely)', async () => {
    for (const [who, db] of both()) {
      const ac = new AbortController();
      const running = db.query(ENDLESS, [], { timeoutMs: 30_000, signal: ac.signal });
      setTimeout(() => ac.abort(), 200);
      await assert.rejects(running, (e: HiqliteError) => {
        assert.equal(e.code, 'HQL_ABORTED', `${who}: ${e.message}`);
        assert.equal(e.retryable, true, `${who}: ${e.message}`);
        return true;
      });
      await assert.rejects(
        db.query('SELECT 1', [], { timeoutMs: 5000, signal: AbortSignal.abort() }),
        (e: HiqliteError) => {
          assert.equal(e.code, 'HQL_ABORTED', `${who}: ${e.message}`);
          assert.equal(e.retryable, true, `${who} (already aborted): ${e.message}`);
          return true;
        },
      );
    }
    // The node still serves after the stops.
    assert.deepEqual(await f.remote.query('SELECT 1 AS one'), [{ one: 1 }]);
  });

  test('lock() with a signal that already fired is HQL_ABORTED and takes nothing (was: granted embedded)', async () => {
    for (const [who, db] of both()) {
      const key = `aborted-${who}`;
      await assert.rejects(db.lock(key, { signal: AbortSignal.abort() }), (e: HiqliteError) => {
        assert.equal(e.code, 'HQL_ABORTED', `${who}: ${e.message}`);
        assert.equal(e.retryable, true);
        return true;
      });
      // Nothing was queued or granted: the key is free for the other client at once.
      const other = who === 'embedded' ? f.remote : f.node;
      const lock = await other.tryLock(key);
      assert.ok(lock !== null, `${who}: the key was taken by the aborted call`);
      await lock.release();
    }
  });

  test('a held lock shows its key and token only: logged or serialized, not the client behind it nor its holder id', async () => {
    for (const [who, db] of both()) {
      const lock = await db.lock(`shown-${who}`, { leaseMs: 30_000 });
      try {
        assert.deepEqual(Object.keys(lock), ['key', 'token'], who);
        // It threw on the client's circular internals before, and carried the holder id (which
        // alone lets anyone renew or release the lock).
        assert.deepEqual(JSON.parse(JSON.stringify(lock)), { key: `shown-${who}`, token: lock.token });
        assert.deepEqual({ ...lock }, { key: `shown-${who}`, token: lock.token });
        assert.equal(lock.lost.aborted, false);
        assert.ok(lock.remainingMs() > 0);
        // The cache API's own calls on a lock (release at close(), a grant not handed out, the
        // group founded anew) are no methods a user could call by mistake.
        for (const internal of ['abandon', 'releaseOnClose', 'lostToRefound'])
          assert.equal(internal in lock, false, `${who}: lock.${internal}`);
      } finally {
        await lock.release();
      }
    }
  });

  test("a remote client's close() lets the writes under way end with their outcome (was: HQL_OUTCOME_UNKNOWN, yet applied)", async () => {
    await f.node.execute('CREATE TABLE closing (id INTEGER PRIMARY KEY, v TEXT)');
    const client = await connect({ nodes: [f.cfg.nodes[0]!.addrApi], secretApi: TEST_SECRETS.secretApi });
    const writes = Array.from({ length: 50 }, (_, i) =>
      client.execute('INSERT INTO closing (id, v) VALUES (?, ?)', [i, 'x']),
    );
    const put = client.cache('closing').put('k', 'v');
    // Give the requests time to be sent (the case that was reported unknown), then close.
    await new Promise((r) => setTimeout(r, 2));
    await client.close();
    const outcomes = await Promise.allSettled([...writes, put]);
    const failed = outcomes.filter((o) => o.status === 'rejected');
    assert.deepEqual(
      failed.map((o) => (o as PromiseRejectedResult).reason.message),
      [],
      'every write under way at close() got its outcome',
    );
    assert.deepEqual(await f.node.query('SELECT count(*) AS n FROM closing'), [{ n: 50 }]);
    assert.equal(await f.node.cache('closing').get('k'), 'v');
    // Asked after close(): refused, not carried out.
    await assert.rejects(client.execute('INSERT INTO closing (id, v) VALUES (99, ?)', ['late']), {
      code: 'HQL_CLOSED',
    });
  });
});
