/**
 * A read's `timeoutMs` and `signal` stop it, on every client: embedded (either thread) and
 * remote, a signal alone too, and an already-aborted signal reads nothing. Found from outside:
 * the remote client sent neither (a read ran to the node's query_timeout_ms whatever the caller
 * asked, an aborted one returned its rows), and an embedded read with a signal and no timeoutMs
 * ran to its end on the caller's thread, its wait for an index too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HiqliteClient, HiqliteError } from '../../src/index.js';
import { oneNodeConfig, startOneNodeAs } from '../support/one-node-config.js';
import { within } from '../support/within.js';

/** Runs for many seconds (a count over 200 million generated rows). */
const LONG =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000000) SELECT count(*) AS n FROM c';

function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'rows',
    (e: unknown) => (e instanceof HiqliteError ? e.code : String(e)),
  );
}

function abortAfter(ms: number): AbortSignal {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), ms);
  return ac.signal;
}

for (const who of ['embedded worker', 'embedded main', 'remote'] as const) {
  describe(`a read's timeoutMs and signal (${who})`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-read-stop-'));
    let db: Pick<HiqliteClient, 'query' | 'close'>;
    let close: () => Promise<void>;
    before(async () => {
      // The node's own limit far away: what stops the reads is the caller's.
      const cfg = await oneNodeConfig(root, { queryTimeoutMs: 600_000, readTimeoutMs: 600_000 });
      ({ db, close } = await startOneNodeAs(who, cfg, { requestTimeoutMs: 600_000 }));
    });
    after(async () => {
      await close?.();
      rmSync(root, { recursive: true, force: true });
    });

    test('timeoutMs: HQL_TIMEOUT at it', async () => {
      assert.equal(
        await within(codeOf(db.query(LONG, [], { timeoutMs: 300 })), 10_000, 'the timeout'),
        'HQL_TIMEOUT',
      );
    });

    // One form whichever side stops it (the read thread's interrupt, the pool's deadline): it
    // said "ran longer than 300 ms and was interrupted" (retryable) or "ran longer than its
    // limit" (not), by a race. A remote client's own timer, should the node's answer come after
    // it on a loaded machine, says "no answer" (retryable): not asserted there.
    test('timeoutMs: the error is not retryable (the same query runs as long again)', async () => {
      for (let i = 0; i < 3; i++) {
        const e = await within(
          db.query(LONG, [], { timeoutMs: 300 }).then(
            () => null,
            (err: unknown) => err,
          ),
          10_000,
          'the timeout',
        );
        assert.ok(e instanceof HiqliteError, String(e));
        assert.equal(e.code, 'HQL_TIMEOUT');
        if (who === 'remote' && /no answer/.test(e.message)) continue;
        assert.match(e.message, /the query ran longer than its limit of \d+ ms and was interrupted/);
        assert.equal(e.retryable, false, e.message);
      }
    });

    test('a signal alone: HQL_ABORTED when it aborts', async () => {
      assert.equal(
        await within(codeOf(db.query(LONG, [], { signal: abortAfter(300) })), 10_000, 'the abort'),
        'HQL_ABORTED',
      );
    });

    test('an aborted signal: nothing is read', async () => {
      const ac = new AbortController();
      ac.abort();
      assert.equal(await codeOf(db.query('SELECT 1 AS n', [], { signal: ac.signal })), 'HQL_ABORTED');
    });

    test("an index beyond the cluster's log is refused at once, not at the deadline", async () => {
      // No write of this cluster has it (another cluster's, one from before a restore): it
      // waited for the whole deadline (600 s here), and a caller's signal was its only way out.
      const p = db.query('SELECT 1 AS n', [], { minIndex: 1_000_000_000 }).catch((e: unknown) => e);
      const e = await within(p, 10_000, 'the refusal');
      assert.ok(e instanceof HiqliteError, String(e));
      assert.equal(e.code, 'HQL_INVALID_PARAMS');
      assert.match(e.message, /minIndex 1000000000 is beyond the cluster's log \(committed: \d+\)/);
    });

    test('and the node serves on', async () => {
      assert.deepEqual(await db.query('SELECT 1 AS n'), [{ n: 1 }]);
    });
  });
}
