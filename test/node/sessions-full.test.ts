/**
 * A full exactly-once session table refuses a new session instead of forgetting one whose write
 * may still be retried (found from outside: cache_sessions_max 50, 200 concurrent adders and the
 * leader killed applied 100 retries a second time, in silence). Through the node's own writes and
 * a remote client's, which the node stamps with their protection (lib/client-session.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeAndRemote } from '../support/one-node-config.js';

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
