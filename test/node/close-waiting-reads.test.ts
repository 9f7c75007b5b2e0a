/**
 * close() ends the reads waiting on the node: a linearizable read (SQL or cache) or a read
 * waiting for an index to be applied, on a node that cannot reach a leader (its peers are down),
 * rejects with HQL_CLOSED when the node closes, not at its own deadline. Before, the barrier's
 * retry loop took the closed group's HQL_CLOSED (retryable: a client asks another node) as a
 * reason to try again, and ran on to its deadline: the read's caller, and a start cancelled
 * while waiting for its barriers, waited up to a minute after the node was gone. Both threads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HiqliteError, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { loopbackMembers } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';
import { within } from '../support/within.js';

function outcome(r: PromiseSettledResult<unknown>): string {
  if (r.status === 'fulfilled') return `ok ${JSON.stringify(r.value)}`;
  return r.reason instanceof HiqliteError ? r.reason.code : String(r.reason);
}

for (const thread of ['main', 'worker'] as const) {
  describe(`close() with reads waiting for a leader (thread '${thread}')`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-close-reads-'));
    after(() => rmSync(root, { recursive: true, force: true }));

    test('each waiting read rejects HQL_CLOSED when the node closes', async () => {
      const members = await loopbackMembers(3);
      const configOf = (id: number): NodeConfig => ({
        nodeId: id,
        nodes: members,
        dataDir: join(root, `node-${id}`),
        readTimeoutMs: 120_000,
        ...TEST_SECRETS,
      });
      const nodes = await Promise.all([1, 2, 3].map((id) => start(configOf(id), { thread })));
      const [n1, n2, n3] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
      await n1.execute('CREATE TABLE t (x)');
      await n1.cache('c').put('k', 'v');
      await n2.close();
      await n3.close();
      const waiting = Promise.allSettled([
        n1.query('SELECT count(*) AS n FROM t', [], { consistency: 'linearizable', timeoutMs: 120_000 }),
        n1.cache('c').get('k', { consistency: 'linearizable' }),
        n1.query('SELECT 1', [], { minIndex: 1_000_000, timeoutMs: 120_000 }),
      ]);
      // A read's own deadline passes meanwhile: its timeout names the whole wait (it said the
      // last attempt's remainder: "no answer within 1 ms").
      await assert.rejects(
        n1.query('SELECT 1', [], { consistency: 'linearizable', timeoutMs: 1_000 }),
        (e: unknown) =>
          e instanceof HiqliteError && e.code === 'HQL_TIMEOUT' && /no answer within 1000 ms/.test(e.message),
      );
      // Under way: none can end while no leader can be elected.
      await within(n1.close(), 20_000, 'close()');
      const ended = await within(waiting, 10_000, 'the waiting reads to end after close()');
      assert.deepEqual(ended.map(outcome), ['HQL_CLOSED', 'HQL_CLOSED', 'HQL_CLOSED']);
    });
  });
}
