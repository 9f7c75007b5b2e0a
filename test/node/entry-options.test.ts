/**
 * connect(options) and start(config, options) check their options before opening anything: a
 * misspelled key or a wrong value is HQL_INVALID_CONFIG listing every problem, instead of being
 * ignored (`{ secret }` for `secretApi` connected without a secret; `{ thred: 'main' }` ran the
 * node on its own thread) or failing later somewhere else (a string for `nodes`, a timeout that
 * overflows Node's timers).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

async function configProblems(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, 'HQL_INVALID_CONFIG', e.message);
    assert.equal(e.retryable, false);
    return e.message;
  }
  return assert.fail('accepted');
}

const SECRET = 'x'.repeat(32);

describe('connect() options', () => {
  const cases: [string, unknown, RegExp[]][] = [
    [
      'secret for secretApi',
      { nodes: ['127.0.0.1:1'], secret: SECRET },
      [/secret: unknown option \(did you mean secretApi\?\)/, /secretApi: must be/],
    ],
    [
      'a misspelled timeout',
      { nodes: ['127.0.0.1:1'], secretApi: SECRET, timeoutMs: 5 },
      [/timeoutMs: unknown option/],
    ],
    [
      'nodes as one string',
      { nodes: '127.0.0.1:1', secretApi: SECRET },
      [/nodes: must be a non-empty array/],
    ],
    ['no nodes', { nodes: [], secretApi: SECRET }, [/nodes: must be a non-empty array/]],
    ['a node that is not a string', { nodes: [8200], secretApi: SECRET }, [/nodes\[0\]: must be an address/]],
    [
      'a hole in the nodes (forEach skipped it)',
      { nodes: Object.assign(new Array(2), { 1: '127.0.0.1:1' }), secretApi: SECRET },
      [/nodes\[0\]: must be an address/],
    ],
    [
      'a timeout beyond what a timer keeps',
      { nodes: ['127.0.0.1:1'], secretApi: SECRET, requestTimeoutMs: 2 ** 32 },
      [/requestTimeoutMs: must be a whole number from 1 to 2147483647/],
    ],
    ['writesMax 0', { nodes: ['127.0.0.1:1'], secretApi: SECRET, writesMax: 0 }, [/writesMax: must be/]],
    // No node takes one so short (was: a connection attempt per node, then HQL_UNAUTHORIZED).
    [
      'a secret shorter than any node has',
      { nodes: ['127.0.0.1:1'], secretApi: 'short' },
      [/secretApi: must be the nodes' secret_api, which has at least 16 characters; this has 5/],
    ],
    [
      'tls as a path',
      { nodes: ['127.0.0.1:1'], secretApi: SECRET, tls: '/ca.pem' },
      [/tls: must be true, false or \{ caFile/],
    ],
    ['null', null, [/options: must be an object/]],
  ];
  for (const [name, options, messages] of cases) {
    test(`${name}: HQL_INVALID_CONFIG naming every problem`, async () => {
      const message = await configProblems(() => connect(options as never));
      for (const m of messages) assert.match(message, m);
    });
  }
});

describe('start() options', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-entry-options-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a misspelled or wrong option is refused before anything is opened', async () => {
    const cfg = await oneNodeConfig(root);
    const message = await configProblems(() => start(cfg, { thred: 'main', thread: 'both' } as never));
    assert.match(message, /thred: unknown option \(did you mean thread\?\); known: .*thread/);
    assert.match(message, /thread: must be 'worker' or 'main', got "both"/);
    for (const [options, m] of [
      [{ joinTimeoutMs: -1 }, /joinTimeoutMs: must be a whole number/],
      [{ signal: 'stop' }, /signal: must be an AbortSignal/],
      [{ onFatal: true }, /onFatal: must be a function/],
      [{ cacheMirror: 'no' }, /cacheMirror: must be true or false/],
    ] as const) {
      assert.match(await configProblems(() => start(cfg, options as never)), m);
    }
    // Nothing was created in the data directory.
    assert.deepEqual(
      readdirSync(root).filter((f) => f !== 'data' || readdirSync(join(root, f)).length > 0),
      [],
    );
  });
});

describe("connect() to a node's Raft port", () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-wrong-port-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('says it is the Raft port and names addr_api (was: "closed without answering, does it use TLS?")', async () => {
    const cfg = await oneNodeConfig(root);
    const node = await start(cfg, { thread: 'main' });
    try {
      await node.waitUntilHealthy({ timeoutMs: 20_000 });
      const raft = cfg.nodes[0]?.addrRaft ?? '';
      await assert.rejects(connect({ nodes: [raft], secretApi: SECRET }), (e: unknown) => {
        assert.ok(e instanceof HiqliteError);
        assert.equal(e.code, 'HQL_UNAVAILABLE');
        assert.match(e.message, /Raft port \(addr_raft\), not its API port: connect to its addr_api/);
        return true;
      });
    } finally {
      await node.close();
    }
  });
});
