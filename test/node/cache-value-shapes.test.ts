/**
 * What a cache value may be, on every path into the cache group (src/sm/cache/value.ts): a
 * value reads back as itself or is refused with HQL_INVALID_PARAMS, nothing stored. Found from
 * outside: `put('k', new Map([[{ k: 1 }, 1]]))` was acknowledged, and from then on every read of
 * the key, every `entries()` of its cache (on every node, remote clients too) failed
 * HQL_MALFORMED_COMMAND, as did every listener of a channel notified with such a payload; a Map,
 * Set, typed array, class instance or key `__proto__` read back in another shape.
 *
 * - the clients (embedded and remote) refuse such values at the call (client-args.test.ts lists
 *   each shape); here, what is accepted reads back equal on both;
 * - a remote client that encodes its own bytes (hostile or of another version) is refused by
 *   the node, for put, replace, putIfAbsent and notify, and the cache and listeners go on;
 * - the HTTP routes refuse JSON that would not read back (a key "__proto__", a lone surrogate).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HiqliteNode } from '../../src/client/embedded.js';
import { connect, type HiqliteClient, start } from '../../src/index.js';
import { CLIENT_SESSION_PREFIX } from '../../src/lib/client-session.js';
import { type CacheCommand, encodeCacheCommand } from '../../src/sm/cache/command.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';
import { openApiClient } from '../transport/api-helpers.js';

/** msgpack bytes no reader of cache values decodes, or decodes to a value refused. */
const BAD_VALUES: ReadonlyArray<[string, Uint8Array]> = [
  // { { k: 1 }: 1 }: a map whose key is a map (what msgpackr made of a Map with an object key).
  ['a map keyed by a map', new Uint8Array([0x81, 0x81, 0xa1, 0x6b, 0x01, 0x01])],
  ['an array of 2 with one element', new Uint8Array([0x92, 0x01])],
  ['arrays nested 300 deep', new Uint8Array([...new Array<number>(300).fill(0x91), 0xc0])],
  ['arrays nested 100,000 deep', new Uint8Array([...new Array<number>(100_000).fill(0x91), 0xc0])],
];

async function httpCall(
  port: number,
  method: string,
  path: string,
  body: string | null,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { 'x-api-secret': TEST_SECRETS.secretApi, 'content-type': 'application/json' },
    ...(body === null ? {} : { body }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('cache values read back as themselves or are refused', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-value-shapes-'));
  let node: HiqliteNode;
  let remote: HiqliteClient;
  let apiPort: number;
  before(async () => {
    const cfg = await oneNodeConfig(root);
    apiPort = Number(cfg.nodes[0]?.addrApi.split(':')[1]);
    node = await start(cfg);
    remote = await connect({ nodes: [`127.0.0.1:${apiPort}`], secretApi: TEST_SECRETS.secretApi });
  });
  after(async () => {
    await remote?.close();
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('what is accepted reads back equal, embedded and remote', async () => {
    const values: ReadonlyArray<[string, unknown, unknown?]> = [
      ['null', null],
      ['numbers', [0, 1.5, -7, Number.MAX_SAFE_INTEGER, Number.NaN, Number.POSITIVE_INFINITY]],
      ['-0 reads back as 0', -0, 0],
      ['bigints at the int64 and uint64 bounds', [-(2n ** 63n), 2n ** 64n - 1n]],
      ['strings', ['', 'ünïcödé ✓ 𝄞']],
      ['bytes', new Uint8Array([0, 1, 255])],
      ['a Buffer reads back as a Uint8Array', Buffer.from([1, 2]), new Uint8Array([1, 2])],
      ['dates', [new Date(0), new Date(-8.64e15), new Date(8.64e15)]],
      ['nested objects and arrays', { a: [1, { b: 'x', c: [true, null] }], n: { m: {} } }],
      ['undefined inside an object', { a: undefined, b: 1 }],
      ['nested 256 deep', nested(256)],
    ];
    for (const [name, value, expected = value] of values) {
      for (const [who, db] of [
        ['embedded', node],
        ['remote', remote],
      ] as const) {
        await db.cache('ok').put('k', value);
        const got = await db.cache('ok').get('k');
        assert.deepStrictEqual(got, expected, `${name} (${who})`);
      }
    }
    await assert.rejects(node.cache('ok').put('k', nested(257)), {
      code: 'HQL_INVALID_PARAMS',
      message: /nested more than 256 levels deep/,
    });
  });

  test("a remote client's own bytes that would not read back are refused by the node; the cache and its listeners go on", async () => {
    const cache = 'shapes';
    await node.cache(cache).put('good', { x: 1 });
    const listener = node.listen('ch');
    const conn = await openApiClient(apiPort);
    try {
      let seq = 0;
      const propose = (command: CacheCommand) =>
        conn.request(
          {
            op: 'propose',
            group: 'cache',
            data: encodeCacheCommand({
              nowMs: Date.now(),
              session: { clientId: `${CLIENT_SESSION_PREFIX}shapes-test`, seq: ++seq },
              command,
            }),
          },
          10_000,
        );
      for (const [name, value] of BAD_VALUES) {
        for (const command of [
          { type: 'put', cache, key: 'bad', value },
          { type: 'replace', cache, key: 'bad', value },
          { type: 'putIfAbsent', cache, key: 'bad', value },
          { type: 'notify', channel: 'ch', payload: value },
        ] as const) {
          const answer = await propose(command);
          assert.equal(answer.ok, false, `${name}, ${command.type}: refused`);
          assert.equal(!answer.ok && answer.error.code, 'HQL_INVALID_PARAMS', `${name}, ${command.type}`);
        }
      }
      // Nothing was stored or sent: the cache reads whole, and the listener gets the next one.
      assert.deepEqual(await remote.cache(cache).entries(), [['good', { x: 1 }]]);
      assert.equal(await node.cache(cache).get('bad'), null);
      await node.notify('ch', 'after');
      const next = await listener.next();
      assert.equal(next.done, false);
      assert.equal(next.value.payload, 'after');
    } finally {
      conn.close();
      await listener.return?.();
    }
  });

  test('the HTTP routes refuse JSON that would not read back: a key "__proto__", a lone surrogate', async () => {
    const bodies = ['{"a": {"__proto__": 1}}', '["a\\ud800"]', '{"\\udc00": 1}'];
    for (const body of bodies) {
      const put = await httpCall(apiPort, 'PUT', '/cache/http/k', body);
      assert.equal(put.status, 400, body);
      assert.equal((put.json.error as { code?: string } | undefined)?.code, 'HQL_INVALID_PARAMS', body);
      const notify = await httpCall(apiPort, 'POST', '/notify', `{"channel": "ch", "payload": ${body}}`);
      assert.equal(notify.status, 400, `notify ${body}`);
    }
    assert.equal(await node.cache('http').get('k', { consistency: 'linearizable' }), null);
    // Such JSON without those is stored and read back.
    const ok = await httpCall(apiPort, 'PUT', '/cache/http/k', '{"a": {"proto": 1}}');
    assert.equal(ok.status, 200);
    assert.deepEqual(await node.cache('http').get('k', { consistency: 'linearizable' }), { a: { proto: 1 } });
  });
});

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}
