/**
 * A full exactly-once session table refuses a new session instead of forgetting one whose write
 * may still be retried (found from outside: cache_sessions_max 50, 200 concurrent adders and the
 * leader killed applied 100 retries a second time, in silence). Through the node's own writes and
 * a remote client's, which the node stamps with their protection (lib/client-session.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect } from '../../src/index.js';
import { SESSION_PROTECT_MARGIN_MS } from '../../src/lib/client-session.js';
import { nodeAndRemote, TEST_SECRETS } from '../support/one-node-config.js';

const SESSIONS_MAX = 4;
const WRITERS = 12;

/**
 * Two rounds of WRITERS concurrent writes (each holds its own session lane while it runs): how
 * many succeeded; the others must have been refused with HQL_SESSIONS_FULL naming `setting`.
 */
async function writeInRounds(write: (i: number) => Promise<unknown>, setting: string): Promise<number> {
  let applied = 0;
  let refused = 0;
  for (let round = 0; round < 2; round++) {
    const outcomes = await Promise.allSettled(Array.from({ length: WRITERS }, (_, i) => write(i)));
    for (const o of outcomes) {
      if (o.status === 'fulfilled') {
        applied++;
        continue;
      }
      const e = o.reason as Error & { code?: string; retryable?: boolean };
      assert.equal(e.code, 'HQL_SESSIONS_FULL', e.message);
      assert.equal(e.retryable, true);
      assert.match(
        e.message,
        new RegExp(`not started and its write not applied.*may still be retried.*raise ${setting}`),
      );
      refused++;
    }
  }
  assert.ok(refused > 0, 'the table was full');
  assert.ok(applied > 0, 'the sessions in the table kept writing');
  return applied;
}

for (const kind of ['embedded', 'remote'] as const) {
  describe(`a full session table, written by the ${kind} client`, () => {
    const f = nodeAndRemote(`hq-sessions-full-${kind}-`, {
      cacheSessionsMax: SESSIONS_MAX,
      sqlSessionsMax: SESSIONS_MAX,
    });

    test(`refuses new sessions of the ${kind} client while the others are protected; nothing is applied twice or in silence`, async () => {
      const db = kind === 'embedded' ? f.node : f.remote;
      const hits = db.counter(`hits-${kind}`);
      const applied = await writeInRounds(() => hits.add('k', 1n), 'cache_sessions_max');
      assert.equal(await hits.get('k'), BigInt(applied), 'every add that succeeded, and no other, counted');
    });

    test(`the SQL group's table (sql_sessions_max) likewise, for the ${kind} client`, async () => {
      const db = kind === 'embedded' ? f.node : f.remote;
      const table = `rows_${kind}`;
      await db.execute(`CREATE TABLE ${table} (n INTEGER)`);
      const applied = await writeInRounds(
        (i) => db.execute(`INSERT INTO ${table} VALUES (?)`, [i]),
        'sql_sessions_max',
      );
      const [row] = await db.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`);
      assert.equal(row?.n, applied, 'every insert that succeeded, and no other, is there');
    });
  });
}

describe("a session's protection follows its own write's deadline", () => {
  const f = nodeAndRemote('hq-sessions-protect-', { proposalTimeoutMs: 20_000 });

  test("the node's own write: proposal_timeout_ms + margin; a remote client's: its deadline + margin, not the cap", async () => {
    // A client that writes once and leaves holds its place for its deadline and the margin, not
    // for session_protect_ms (5 min): one-shot clients locked everyone out for 5 minutes before.
    await f.node.execute('CREATE TABLE p (n INTEGER)');
    const oneShot = await connect({
      nodes: [f.cfg.nodes[0]!.addrApi],
      secretApi: TEST_SECRETS.secretApi,
      requestTimeoutMs: 5_000,
    });
    try {
      await oneShot.execute('INSERT INTO p VALUES (1)');
    } finally {
      await oneShot.close();
    }
    const rows = await f.node.query<{ client_id: string; protect_ms: number }>(
      'SELECT client_id, protect_ms FROM _hq_sessions',
    );
    const remote = rows.filter((r) => r.client_id.startsWith('c-'));
    const own = rows.filter((r) => !r.client_id.startsWith('c-'));
    assert.equal(remote.length, 1, JSON.stringify(rows));
    assert.ok(own.length >= 1, JSON.stringify(rows));
    // The client sends what is left of its 5 s (less a little slack for the answer).
    const p = Number(remote[0]?.protect_ms);
    assert.ok(p > 4_000 + SESSION_PROTECT_MARGIN_MS && p <= 5_000 + SESSION_PROTECT_MARGIN_MS, String(p));
    for (const r of own) assert.equal(Number(r.protect_ms), 20_000 + SESSION_PROTECT_MARGIN_MS);
  });
});
