/**
 * A start cancelled during its very last steps (StartOptions.signal aborted after the last wait
 * that checks it: here when the node logs 'node started') is still cancelled: start() rejects
 * with HQL_ABORTED and the node is closed (data directory unlocked, ports free), never handed out
 * running. Before, start() resolved, and `hiqlite serve`, whose SIGTERM had cancelled it, had
 * consumed that signal and served on until the next one (found stopping a three-node cluster
 * whose nodes were still starting). Both thread modes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { HiqliteError, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { lockDataDir } from '../../src/node/data-dir-lock.js';
import { loopbackMembers } from '../support/free-ports.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';
import { within } from '../support/within.js';

/** A logger that aborts `ac` when the node says it started (the last step of a start). */
function abortingLogger(ac: AbortController) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (chunk.toString('utf8').includes('"msg":"node started"')) ac.abort();
      done();
    },
  });
  return pino({ level: 'info' }, sink);
}

for (const thread of ['main', 'worker'] as const) {
  describe(`a start cancelled at its last step (thread '${thread}')`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-start-cancel-'));
    after(() => rmSync(root, { recursive: true, force: true }));

    test('start() rejects HQL_ABORTED and the node is closed', async () => {
      const cfg = await oneNodeConfig(root);
      const ac = new AbortController();
      const outcome = await start(cfg, { thread, signal: ac.signal, logger: abortingLogger(ac) }).then(
        async (node) => {
          await node.close();
          return 'started';
        },
        (e: unknown) => (e instanceof HiqliteError ? e.code : String(e)),
      );
      assert.equal(ac.signal.aborted, true, 'the abort happened during start()');
      assert.equal(outcome, 'HQL_ABORTED');
      // Closed: the same data directory and ports start again at once.
      const again = await start(cfg, { thread });
      await again.execute('CREATE TABLE t (x)');
      await again.close();
    });
  });
}

/**
 * Three nodes of a new cluster started together, all cancelled after a few seconds, wherever
 * each stands (waiting to join, for a majority's clocks with `clock_probe_interval_ms` a minute,
 * or for its read barriers with `proposal_timeout_ms` two): each either started or stopped
 * within the test's bound, none waits out one of those limits. Where they stand is not
 * controlled: in the runs measured they were waiting to join, so this guards the cancellation
 * of a forming cluster as a whole; the clock and barrier waits' own cancellation is proven by
 * the restart below, which stands in each of them when cancelled.
 */
for (const thread of ['main', 'worker'] as const) {
  test(`a start waiting for the cluster stops when cancelled (thread '${thread}')`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-start-cancel-q-'));
    try {
      const members = await loopbackMembers(3);
      const configOf = (id: number): NodeConfig => ({
        nodeId: id,
        nodes: members,
        dataDir: join(root, `node-${id}`),
        clockProbeIntervalMs: 60_000,
        proposalTimeoutMs: 120_000,
        ...TEST_SECRETS,
      });
      const ac = new AbortController();
      const outcomes = [1, 2, 3].map((id) =>
        start(configOf(id), { thread, signal: ac.signal, joinTimeoutMs: 300_000 }).then(
          async (node) => {
            await node.close();
            return 'started';
          },
          (e: unknown) => (e instanceof HiqliteError ? e.code : String(e)),
        ),
      );
      await new Promise((r) => setTimeout(r, 3_000));
      ac.abort();
      const ended = await within(Promise.all(outcomes), 20_000, 'the cancelled starts to end');
      assert.ok(
        ended.every((o) => o === 'HQL_ABORTED' || o === 'started'),
        `outcomes: ${ended.join(', ')}`,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

/**
 * A member restarting while the rest of its cluster is down waits, in order, for a majority's
 * clocks (up to `clock_probe_interval_ms`) and for its read barriers (up to
 * `proposal_timeout_ms`): neither can end with its peers down. Cancelled in either wait, start()
 * rejects HQL_ABORTED at once and the node is closed. Before `unlessStartCancelled`, the start
 * waited out the clock wait (a minute here) and then the barrier wait (two).
 */
for (const thread of ['main', 'worker'] as const) {
  describe(`a restart with its peers down, cancelled (thread '${thread}')`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-start-cancel-r-'));
    after(() => rmSync(root, { recursive: true, force: true }));
    let configOf: (id: number, over: Partial<NodeConfig>) => NodeConfig;

    test('a three-node cluster forms and stops', async () => {
      const members = await loopbackMembers(3);
      configOf = (id, over) => ({
        nodeId: id,
        nodes: members,
        dataDir: join(root, `node-${id}`),
        ...TEST_SECRETS,
        ...over,
      });
      const nodes = await Promise.all([1, 2, 3].map((id) => start(configOf(id, {}), { thread })));
      await nodes[0]?.execute('CREATE TABLE t (x)');
      await Promise.all(nodes.map((n) => n.close()));
    });

    const waits = [
      // Still waiting for the clocks of a majority when cancelled.
      { name: 'for the clocks', over: { clockProbeIntervalMs: 60_000, proposalTimeoutMs: 120_000 } },
      // Past the clock wait (at most one 300 ms interval), waiting for its barriers.
      { name: 'for its read barriers', over: { clockProbeIntervalMs: 300, proposalTimeoutMs: 120_000 } },
    ];
    for (const { name, over } of waits) {
      test(`cancelled while waiting ${name}: start() rejects HQL_ABORTED at once`, async () => {
        const ac = new AbortController();
        const outcome = start(configOf(1, over), { thread, signal: ac.signal }).then(
          async (node) => {
            await node.close();
            return 'started';
          },
          (e: unknown) => (e instanceof HiqliteError ? e.code : String(e)),
        );
        await new Promise((r) => setTimeout(r, 2_500));
        ac.abort();
        assert.equal(await within(outcome, 10_000, 'the cancelled start to end'), 'HQL_ABORTED');
        // Closed: its data directory is unlocked.
        const lock = await lockDataDir(configOf(1, {}).dataDir as string);
        await lock.release();
      });
    }

    test('the cluster then starts and serves what it held', async () => {
      const nodes = await Promise.all([1, 2, 3].map((id) => start(configOf(id, {}), { thread })));
      try {
        assert.deepEqual(
          await nodes[2]?.query('SELECT count(*) AS n FROM t', [], { consistency: 'linearizable' }),
          [{ n: 0 }],
        );
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });
  });
}
