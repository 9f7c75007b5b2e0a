/**
 * What an application passes to the client API is checked before anything is encoded or sent,
 * the same way on an embedded node and on a remote client: a wrong type or range is
 * HQL_INVALID_PARAMS naming the argument. Before, these surfaced as HQL_MALFORMED_COMMAND (meant
 * for bytes that do not decode), HQL_PROTOCOL (the remote client's own encoder), or were taken
 * (a misspelled consistency read locally; a function was stored as nothing).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteClient, HiqliteError, type HiqliteNode, start } from '../../src/index.js';
import { freePorts } from '../support/free-ports.js';

const SECRET_API = 'api-secret-for-tests-0123456789';

// biome-ignore lint/suspicious/noExplicitAny: deliberately wrong arguments
type Loose = any;

/** An array of `length` with `entries` set and holes elsewhere. */
const holed = (length: number, entries: Record<number, unknown>): unknown[] =>
  Object.assign(new Array(length), entries);

const CASES: ReadonlyArray<[string, (db: Loose) => unknown, RegExp]> = [
  // null is not "the default" for one option and refused for another (ttlMs: null is refused).
  ['tryLock with leaseMs null', (db) => db.tryLock('k', { leaseMs: null }), /leaseMs must be a whole number/],
  ['lock with leaseMs null', (db) => db.lock('k', { leaseMs: null }), /leaseMs must be a whole number/],
  ['put with ttlMs null', (db) => db.cache('c').put('k', 1, { ttlMs: null }), /ttlMs must be a whole number/],
  ['put with ttlMs -1', (db) => db.cache('c').put('k', 1, { ttlMs: -1 }), /ttlMs must be a whole number/],
  ['put with ttlMs 0', (db) => db.cache('c').put('k', 1, { ttlMs: 0 }), /ttlMs must be a whole number/],
  ['put with ttlMs 1.5', (db) => db.cache('c').put('k', 1, { ttlMs: 1.5 }), /ttlMs must be a whole number/],
  [
    "put with ttlMs '5'",
    (db) => db.cache('c').replace('k', 1, { ttlMs: '5' }),
    /ttlMs must be a whole number/,
  ],
  ['put with a number key', (db) => db.cache('c').put(5, 1), /cache 'c': key must be a string/],
  ['getRemove with an object key', (db) => db.cache('c').getRemove({}), /key must be a string/],
  [
    'put of an invalid Date (it read back as null)',
    (db) => db.cache('c').put('k', { at: new Date(Number.NaN) }),
    /^the value\.at is an invalid Date \(it would read back as null\)$/,
  ],
  [
    'put of a function',
    (db) => db.cache('c').put('k', () => 1),
    /^the value is a function: not a msgpack value$/,
  ],
  // msgpackr stored a nested function as nothing: `{ f, x: 1 }` read back as `{ x: 1 }`.
  [
    'put of an object holding a function',
    (db) => db.cache('c').put('k', { f: () => 1, x: 1 }),
    /^the value\.f is a function: not a msgpack value$/,
  ],
  [
    'replace with an array holding a function',
    (db) => db.cache('c').replace('k', [1, () => 1]),
    /^the value\[1\] is a function: not a msgpack value$/,
  ],
  [
    'notify of an object holding a function',
    (db) => db.notify('ch', { m: { f: () => 1 } }),
    /^the value\.m\.f is a function: not a msgpack value$/,
  ],
  [
    'put of a bigint beyond 64 bits, inside an object',
    (db) => db.cache('c').put('k', { n: 10n ** 30n }),
    /^a cache value must be a msgpack value: the bigint 1000000000000000000000000000000 is outside the 64-bit range$/,
  ],
  ['notify of a symbol', (db) => db.notify('ch', Symbol('s')), /^the value is a symbol/],
  // Values that would not read back as themselves (msgpackr stored each in another shape, and a
  // Map with an object key as msgpack no reader could decode: every read of the cache failed).
  [
    'put of a Map with an object key',
    (db) => db.cache('c').put('k', new Map([[{ k: 1 }, 1]])),
    /is a Map, .*Object\.fromEntries/,
  ],
  [
    'notify of a Map inside an object',
    (db) => db.notify('ch', { m: new Map([['a', 1]]) }),
    /^the value\.m is a Map/,
  ],
  ['put of a Set', (db) => db.cache('c').put('k', new Set([1])), /is a Set, .*\[\.\.\.set\]/],
  [
    'put of a Float32Array',
    (db) => db.cache('c').put('k', new Float32Array([1.5])),
    /is a Float32Array, .*Uint8Array/,
  ],
  [
    'put of a DataView',
    (db) => db.cache('c').put('k', [new DataView(new ArrayBuffer(2))]),
    /^the value\[0\] is a DataView/,
  ],
  [
    'put of an ArrayBuffer',
    (db) => db.cache('c').put('k', new ArrayBuffer(4)),
    /is an ArrayBuffer: pass a Uint8Array/,
  ],
  ['put of a RegExp', (db) => db.cache('c').put('k', /ab+c/), /is an instance of RegExp/],
  [
    'put of an Error',
    (db) => db.cache('c').put('k', { e: new Error('boom') }),
    /^the value\.e is an instance of Error/,
  ],
  [
    'put of a class instance',
    (db) =>
      db.cache('c').putIfAbsent(
        'k',
        new (class Foo {
          x = 1;
        })(),
      ),
    /is an instance of Foo/,
  ],
  ['put of a boxed string', (db) => db.cache('c').put('k', new String('s')), /is an instance of String/],
  [
    'put of an Array subclass',
    (db) => db.cache('c').put('k', new (class L extends Array {})()),
    /subclass of Array/,
  ],
  [
    'put of an array with a named property',
    (db) => db.cache('c').put('k', { list: Object.assign([1, 2], { total: 2 }) }),
    /^the value\.list is an array with the named property "total" beside its elements \(it would be left out\)/,
  ],
  [
    'put of an array with a symbol property',
    (db) => db.cache('c').put('k', Object.assign([1], { [Symbol('s')]: 1 })),
    /^the value is an array with a symbol beside its elements/,
  ],
  [
    'put of a key "__proto__"',
    (db) => db.cache('c').put('k', JSON.parse('{"a": {"__proto__": 1}}')),
    /^the value\.a has the key "__proto__"/,
  ],
  [
    'put of a lone surrogate',
    (db) => db.cache('c').put('k', ['a\ud800b']),
    /^the value\[0\] holds a lone UTF-16 surrogate/,
  ],
  [
    'put of a key with a lone surrogate',
    (db) => db.cache('c').put('k', { '\udc00': 1 }),
    /has a key with a lone UTF-16 surrogate/,
  ],
  ['put of a symbol key', (db) => db.cache('c').put('k', { [Symbol('s')]: 1, x: 1 }), /has a symbol key/],
  [
    'put of a cycle',
    (db) => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return db.cache('c').put('k', o);
    },
    /nested more than 256 levels deep \(or is part of a cycle\)/,
  ],
  ['a cache named by a number', (db) => db.cache(5), /a cache name must be a string/],
  [
    'get with a misspelled consistency',
    (db) => db.cache('c').get('k', { consistency: 'linearisable' }),
    /consistency must be/,
  ],
  ['counter add of 1.5', (db) => db.counter('n').add('k', 1.5), /delta must be an integer/],
  [
    'counter add beyond 64 bits',
    (db) => db.counter('n').add('k', 2n ** 70n),
    /delta must be a 64-bit integer/,
  ],
  ['counter set of a string', (db) => db.counter('n').set('k', '1'), /value must be an integer/],
  ['notify on a number channel', (db) => db.notify(5, 'x'), /channel must be a string/],
  ['notify on an empty channel', (db) => db.notify('', 'x'), /channel must not be empty/],
  ['listen to an empty channel', (db) => db.listen(''), /channel must not be empty/],
  ['a cache with an empty name', (db) => db.cache(''), /a cache name must not be empty/],
  ['a counter with an empty name', (db) => db.counter(''), /a counter name must not be empty/],
  ['listen to a number channel', (db) => db.listen(5), /channel must be a string/],
  ['lock of a number key', (db) => db.lock(5), /key must be a string/],
  // A lone surrogate becomes U+FFFD in UTF-8: '\uD800' and '\uD801' named one entry, one lock.
  [
    'put with a lone-surrogate key',
    (db) => db.cache('c').put('k\uD800', 1),
    /key holds a lone UTF-16 surrogate/,
  ],
  [
    'get with a lone low surrogate',
    (db) => db.cache('c').get('\uDC00x'),
    /key holds a lone UTF-16 surrogate/,
  ],
  [
    'a cache named with a lone surrogate',
    (db) => db.cache('a\uD801'),
    /cache name holds a lone UTF-16 surrogate/,
  ],
  [
    'a counter key with a lone surrogate',
    (db) => db.counter('n').add('\uD800', 1),
    /key holds a lone UTF-16 surrogate/,
  ],
  ['lock of a lone-surrogate key', (db) => db.lock('L\uD800'), /key holds a lone UTF-16 surrogate/],
  ['tryLock of a lone-surrogate key', (db) => db.tryLock('L\uD801'), /key holds a lone UTF-16 surrogate/],
  [
    'notify on a lone-surrogate channel',
    (db) => db.notify('c\uD800', 1),
    /channel holds a lone UTF-16 surrogate/,
  ],
  [
    'listen to a lone-surrogate channel',
    (db) => db.listen('c\uDBFF'),
    /channel holds a lone UTF-16 surrogate/,
  ],
  [
    'query with a misspelled consistency',
    (db) => db.query('SELECT 1', [], { consistency: 'strong' }),
    /consistency must be/,
  ],
  // A misspelled option is refused, not ignored (`ttl` stored an entry that never expires).
  [
    'put with { ttl }',
    (db) => db.cache('c').put('k', 1, { ttl: 60_000 }),
    /put: unknown option "ttl", did you mean "ttlMs"\? \(it takes ttlMs\)/,
  ],
  [
    'replace with { expiresIn }',
    (db) => db.cache('c').replace('k', 1, { expiresIn: 5 }),
    /replace: unknown option "expiresIn"/,
  ],
  [
    'putIfAbsent with { ttl }',
    (db) => db.cache('c').putIfAbsent('k', 1, { ttl: 5 }),
    /putIfAbsent: unknown option "ttl"/,
  ],
  ['put with null options', (db) => db.cache('c').put('k', 1, null), /put: options must be an object/],
  [
    'cache get with { consistancy }',
    (db) => db.cache('c').get('k', { consistancy: 'linearizable' }),
    /get: unknown option "consistancy", did you mean "consistency"\?/,
  ],
  [
    'counter get with { linearizable: true }',
    (db) => db.counter('n').get('k', { linearizable: true }),
    /get: unknown option "linearizable"/,
  ],
  ['lock with { lease }', (db) => db.lock('l', { lease: 60_000 }), /lock: unknown option "lease"/],
  [
    'lock with { timeoutMs }',
    (db) => db.lock('l', { timeoutMs: 5 }),
    /lock: unknown option "timeoutMs" \(it takes leaseMs, waitMs, signal\)/,
  ],
  [
    'lock with a signal that is not one',
    (db) => db.lock('l', { signal: true }),
    /signal must be an AbortSignal/,
  ],
  ['tryLock with { waitMs }', (db) => db.tryLock('l', { waitMs: 5 }), /tryLock: unknown option "waitMs"/],
  [
    'query with { timeout }',
    (db) => db.query('SELECT 1', [], { timeout: 5_000 }),
    /query: unknown option "timeout"/,
  ],
  [
    'queryOne with { consistancy }',
    (db) => db.queryOne('SELECT 1', [], { consistancy: 'linearizable' }),
    /unknown option "consistancy"/,
  ],
  // Past what a timer holds, Node fires it after 1 ms: the read failed HQL_TIMEOUT at once.
  [
    'query with timeoutMs 3e9',
    (db) => db.query('SELECT 1', [], { timeoutMs: 3e9 }),
    /timeoutMs must be a positive number of milliseconds up to 2147483647/,
  ],
  [
    'query with timeoutMs -1',
    (db) => db.query('SELECT 1', [], { timeoutMs: -1 }),
    /timeoutMs must be a positive number/,
  ],
  [
    "query with minIndex '5'",
    (db) => db.query('SELECT 1', [], { minIndex: '5' }),
    /minIndex must be a log index/,
  ],
  [
    'query with minIndex -1',
    (db) => db.query('SELECT 1', [], { minIndex: -1 }),
    /minIndex must be a log index/,
  ],
  [
    'waitUntilHealthy with { timeout }',
    (db) => db.waitUntilHealthy({ timeout: 5 }),
    /waitUntilHealthy: unknown option "timeout"/,
  ],
  [
    'waitUntilHealthy with timeoutMs 0',
    (db) => db.waitUntilHealthy({ timeoutMs: 0 }),
    /timeoutMs must be a positive number/,
  ],
  // Arguments past a method's last parameter were ignored without a word (found from outside:
  // `entries({ consistency: 'linearizable' })` read locally, `execute(…, { timeoutMs })` had none).
  ...(
    [
      [
        'entries',
        (db: Loose) => db.cache('c').entries({ consistency: 'linearizable' }),
        /entries takes \(\)/,
      ],
      ['getRemove', (db: Loose) => db.cache('c').getRemove('k', { ttlMs: 5 }), /getRemove takes \(key\)/],
      ['cache delete', (db: Loose) => db.cache('c').delete('k', { bogus: 1 }), /delete takes \(key\)/],
      ['clear', (db: Loose) => db.cache('c').clear('all'), /clear takes \(\)/],
      ['put', (db: Loose) => db.cache('c').put('k', 1, {}, 'more'), /put takes \(key, value, options\)/],
      ['getLocal', (db: Loose) => db.cache('c').getLocal('k', {}), /getLocal takes \(key\)/],
      ['counter add', (db: Loose) => db.counter('n').add('k', 1, { bogus: 1 }), /add takes \(key, delta\)/],
      ['counter set', (db: Loose) => db.counter('n').set('k', 1, {}), /set takes \(key, value\)/],
      ['counter delete', (db: Loose) => db.counter('n').delete('k', {}), /delete takes \(key\)/],
      ['notify', (db: Loose) => db.notify('ch', 1, { bogus: 1 }), /notify takes \(channel, payload\)/],
      ['listen', (db: Loose) => db.listen('ch', { bogus: 1 }), /listen takes \(channel\?\)/],
      ['clearCaches', (db: Loose) => db.clearCaches({}), /clearCaches takes \(\)/],
      [
        'execute',
        (db: Loose) => db.execute('SELECT 1', [], { timeoutMs: 5 }),
        /execute takes \(sql, params\)/,
      ],
      ['query', (db: Loose) => db.query('SELECT 1', [], {}, {}), /query takes \(sql, params, options\)/],
      ['queryConsistent', (db: Loose) => db.queryConsistent('SELECT 1', [], {}), /queryConsistent takes/],
      ['txn', (db: Loose) => db.txn([['SELECT 1']], {}), /txn takes \(statements\)/],
      ['batch', (db: Loose) => db.batch('SELECT 1', {}), /batch takes \(sql\)/],
      ['lock', (db: Loose) => db.lock('l', {}, {}), /lock takes \(key, options\)/],
      ['metrics', (db: Loose) => db.metrics(1), /metrics takes \(\)/],
      ['waitUntilHealthy', (db: Loose) => db.waitUntilHealthy({}, 2), /waitUntilHealthy takes \(options\)/],
    ] as const
  ).map(([what, call, message]): [string, (db: Loose) => unknown, RegExp] => [
    `${what} with an argument past its last`,
    call,
    message,
  ]),
  // The SQL API: what was HQL_MALFORMED_COMMAND (meant for bytes that do not decode), a
  // TypeError or a raw ENOENT is HQL_INVALID_PARAMS naming the argument.
  ['execute of a number', (db) => db.execute(5), /execute: sql must be a string/],
  // UTF-8 cannot carry a lone surrogate: SQLite stored bytes that read back as U+FFFD.
  [
    'execute with a lone-surrogate parameter',
    (db) => db.execute('SELECT ?', ['a\ud800']),
    /params\[0\] holds a lone UTF-16 surrogate/,
  ],
  [
    'execute with a lone surrogate in its SQL',
    (db) => db.execute("SELECT '\udc00'"),
    /^sql holds a lone UTF-16 surrogate/,
  ],
  // A read bound something else (the embedded reader the bytes ED A0 80, a remote client U+FFFD).
  [
    'query with a lone-surrogate parameter',
    (db) => db.query('SELECT hex(?)', ['\ud800']),
    /params\[0\] holds a lone UTF-16 surrogate/,
  ],
  [
    'query with a lone surrogate in its SQL',
    (db) => db.query("SELECT hex('\ud800')"),
    /sql holds a lone UTF-16 surrogate/,
  ],
  [
    'queryConsistent with a lone-surrogate named parameter',
    (db) => db.queryConsistent('SELECT :a', { a: 'x\udfff' }),
    /params\.a holds a lone UTF-16 surrogate/,
  ],
  [
    'txn with a lone-surrogate named parameter',
    (db) => db.txn([['SELECT 1'], ['SELECT :n', { n: '\udbff' }]]),
    /statements\[1\]\.params\.n holds a lone UTF-16 surrogate/,
  ],
  ['executeReturning of null', (db) => db.executeReturning(null), /executeReturning: sql must be a string/],
  ['query of undefined', (db) => db.query(undefined), /query: sql must be a string/],
  ['execute with params a string', (db) => db.execute('SELECT ?', 'abc'), /execute: params must be an array/],
  ['query with params a number', (db) => db.query('SELECT ?', 5), /query: params must be an array/],
  ['txn of a string', (db) => db.txn('SELECT 1'), /txn: statements must be a non-empty array/],
  ['txn of null', (db) => db.txn(null), /txn: statements must be a non-empty array/],
  ['txn of nothing', (db) => db.txn([]), /txn: statements must be a non-empty array/],
  [
    'txn of bare strings',
    (db) => db.txn(['SELECT 1']),
    /txn: statements\[0\] must be \[sql\] or \[sql, params\]/,
  ],
  [
    'txn with params a number',
    (db) => db.txn([['SELECT 1'], ['SELECT ?', 5]]),
    /txn: statements\[1\]: params must be/,
  ],
  ['batch of null', (db) => db.batch(null), /batch: sql must be a string/],
  ['migrate of null', (db) => db.migrate(null), /migrate: migrations must be an array/],
  ['migrate of an object', (db) => db.migrate({ id: 1 }), /migrate: migrations must be an array/],
  [
    "migrate with id '1'",
    (db) => db.migrate([{ id: '1', name: 'a', sql: 'SELECT 1' }]),
    /migrations\[0\]\.id must be a whole number/,
  ],
  [
    'migrate without a name',
    (db) => db.migrate([{ id: 1, sql: 'SELECT 1' }]),
    /migrations\[0\]\.name must be a string/,
  ],
  [
    'migrate with sql a number',
    (db) => db.migrate([{ id: 1, name: 'a', sql: 5 }]),
    /migrations\[0\]\.sql must be a string/,
  ],
  // Holes: forEach skipped them and a TypeError came later (found from outside).
  [
    'txn with a hole',
    (db) => db.txn(holed(2, { 1: ['SELECT 1'] })),
    /statements\[0\] must be \[sql\] or \[sql, params\], got undefined/,
  ],
  [
    'migrate with a hole',
    (db) =>
      db.migrate(
        holed(3, { 0: { id: 1, name: 'a', sql: 'SELECT 1' }, 2: { id: 3, name: 'c', sql: 'SELECT 1' } }),
      ),
    /migrations\[1\] must be \{ id, name, sql \}/,
  ],
  // Named parameters: one rule for reads and writes (a Map was "an array or a map" for a
  // write and "Missing named parameter" for a read; so was an empty name).
  [
    'execute with a Map',
    (db) => db.execute('SELECT :a', new Map([['a', 1]])),
    /got a Map \(pass Object\.fromEntries\(map\)\)/,
  ],
  [
    'query with a Map',
    (db) => db.query('SELECT :a', new Map([['a', 1]])),
    /got a Map \(pass Object\.fromEntries\(map\)\)/,
  ],
  ['execute with an empty name', (db) => db.execute('SELECT 1', { '': 1 }), /invalid parameter name ""/],
  ['query with an empty name', (db) => db.query('SELECT 1', { '': 1 }), /invalid parameter name ""/],
  [
    'txn with a name that is no name',
    (db) => db.txn([['SELECT :a', { 'a b': 1 }]]),
    /statements\[0\]: invalid parameter name "a b"/,
  ],
  [
    'migrate from a folder that is not there',
    (db) => db.migrate('/nonexistent/hq-migrations'),
    /migrations folder "\/nonexistent\/hq-migrations" cannot be read \(ENOENT\)/,
  ],
];

async function invalidParams(call: () => unknown, message: RegExp): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await call();
  } catch (e) {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, 'HQL_INVALID_PARAMS', e.message);
    assert.equal(e.retryable, false);
    assert.match(e.message, message);
    return;
  }
  assert.fail(`accepted: ${String(outcome)}`);
}

describe('client arguments', () => {
  let root: string;
  let node: HiqliteNode;
  let remote: HiqliteClient;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hq-args-'));
    const [raft, api] = await freePorts(2);
    node = await start({
      nodeId: 1,
      nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
      dataDir: join(root, 'data'),
      secretRaft: 'raft-secret-for-tests-0123456789',
      secretApi: SECRET_API,
    });
    remote = await connect({ nodes: [`127.0.0.1:${api}`], secretApi: SECRET_API });
  });
  after(async () => {
    await remote?.close();
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  for (const [name, call, message] of CASES) {
    test(`${name}: HQL_INVALID_PARAMS on the embedded node and the remote client`, async () => {
      await invalidParams(() => call(node), message);
      await invalidParams(() => call(remote), message);
    });
  }

  test("a node's isLeader() takes no argument", () => {
    assert.throws(() => (node as Loose).isLeader(5), {
      code: 'HQL_INVALID_PARAMS',
      message: /isLeader takes \(\)/,
    });
  });

  test('strings longer than any key or than a request carries: the same answers on both', async () => {
    const long = 'k'.repeat(300_000); // more than a request to a node carries
    const overKey = 'k'.repeat(5_000); // more than keyBytesMax (4096), less than that
    for (const [name, db] of [
      ['embedded', node],
      ['remote', remote],
    ] as [string, Loose][]) {
      const c = db.cache('c');
      for (const key of [long, overKey]) {
        // Nothing is stored under such a key: reads find nothing.
        assert.equal(await c.get(key), null, name);
        assert.equal(await c.get(key, { consistency: 'linearizable' }), null, name);
        assert.equal(await db.cache(key).get('a'), null, name);
        assert.deepEqual(await db.cache(key).entries(), [], name);
        assert.equal(await db.counter('n').get(key), null, name);
        assert.equal(await c.delete(key), false, name);
        // Writes under it are refused as too large.
        for (const call of [
          () => c.put(key, 1),
          () => db.lock(key),
          () => db.tryLock(key),
          () => db.notify(key, 1),
        ])
          await assert.rejects(call(), { code: 'HQL_CACHE_TOO_LARGE' }, name);
        // A listener on a channel no notification can have says so at its first next().
        const it = db.listen(key);
        let timer: NodeJS.Timeout | undefined;
        const first: unknown = await Promise.race([
          it.next().then(
            () => 'a notification',
            (e: unknown) => e,
          ),
          new Promise((r) => {
            timer = setTimeout(() => r('still waiting after 5 s'), 5000);
          }),
        ]);
        clearTimeout(timer);
        void it.return?.();
        assert.ok(first instanceof HiqliteError, `${name}: ${String(first)}`);
        assert.equal(first.code, 'HQL_CACHE_TOO_LARGE', `${name}: ${first.message}`);
        assert.match(first.message, /^channel of \d+ bytes is larger than/);
      }
      // An empty query is the SQL layer's to refuse, remote as embedded.
      await assert.rejects(db.query(''), { code: 'HQL_SQL', message: /no SQL statement/ }, name);
    }
    // SQL text longer than a request carries (1 Mi characters): runs on the embedded node; the
    // remote client says why it cannot send it.
    const sql = `SELECT 1 AS x${' '.repeat(1_100_000)}`;
    assert.deepEqual(await node.query(sql), [{ x: 1 }]);
    await assert.rejects(remote.query(sql), (e: unknown) => {
      assert.ok(e instanceof HiqliteError);
      assert.equal(e.code, 'HQL_REQUEST_TOO_LARGE');
      assert.match(
        e.message,
        /the SQL text is 1100013 characters long, more than a request to a node carries \(1048576\)/,
      );
      return true;
    });
    // Named as the caller knows it: the key, not the codec's 'command.key' (found by an outside
    // probe), with the bound that applies to a key.
    for (const db of [node, remote] as Loose[]) {
      await assert.rejects(db.cache('c').put('k'.repeat(1_100_000), 1), (e: HiqliteError) => {
        assert.equal(e.code, 'HQL_CACHE_TOO_LARGE');
        assert.match(
          e.message,
          /^key of 1100000 (characters|bytes) is larger than any can be \(keyBytesMax is at most \d+ bytes\)$/,
        );
        return true;
      });
    }
  });

  // Found by an outside probe: sent, the node closed the connection at the frame's header, the
  // client tried every node until its deadline and said HQL_UNAVAILABLE, retryable, after 10 s.
  test('a query whose parameters make a request larger than the node takes: HQL_REQUEST_TOO_LARGE, not retryable; the embedded node runs it', async () => {
    const big = 'a'.repeat(17 * 1024 * 1024); // frame_bytes_max is 16 MiB by default
    assert.deepEqual(await node.query('SELECT length(?) AS n', [big]), [{ n: big.length }]);
    for (const consistency of ['local', 'linearizable'] as const) {
      await assert.rejects(remote.query('SELECT length(?) AS n', [big], { consistency }), (e: unknown) => {
        assert.ok(e instanceof HiqliteError);
        assert.equal(e.code, 'HQL_REQUEST_TOO_LARGE', e.message);
        assert.equal(e.retryable, false);
        assert.match(
          e.message,
          /the query request is \d+ bytes encoded, more than the node takes in one \(frame_bytes_max = 16777216\)/,
        );
        return true;
      });
    }
    // The connection is still the client's: the next request goes through.
    assert.deepEqual(await remote.query('SELECT 1 AS x'), [{ x: 1 }]);
  });

  // Found by an outside probe: refused with msgpackr's advice on encoder options.
  test('an object of more than 65,535 keys in a cache value or payload is refused saying so; 65,535 are stored', async () => {
    const keyed = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 1]));
    for (const db of [node, remote] as Loose[]) {
      for (const call of [
        () => db.cache('wide').put('k', { inner: keyed(65_536) }),
        () => db.notify('wide', keyed(65_536)),
      ])
        await assert.rejects(call(), {
          code: 'HQL_INVALID_PARAMS',
          message:
            /^the value(\.inner)? has 65536 keys, more than an object in a cache value can have \(65535\)/,
        });
      await db.cache('wide').put('ok', keyed(65_535));
      assert.equal(Object.keys((await db.cache('wide').get('ok')) as object).length, 65_535);
    }
  });

  test('a value whose getters answer differently each time is stored as it was checked (each getter runs once)', async () => {
    for (const [name, db] of [
      ['embedded', node],
      ['remote', remote],
    ] as [string, Loose][]) {
      let reads = 0;
      // A plain object when checked; a Map with an object key (msgpack no reader decodes) after.
      const fickle = {
        get x(): unknown {
          reads++;
          return reads === 1 ? { ok: true } : new Map([[{}, 1]]);
        },
      };
      await db.cache('fickle').put('k', fickle);
      assert.equal(reads, 1, `${name}: the getter ran once`);
      assert.deepEqual(await db.cache('fickle').get('k'), { x: { ok: true } }, name);
      assert.deepEqual(await db.cache('fickle').entries(), [['k', { x: { ok: true } }]], name);
      await db.cache('fickle').delete('k');
    }
  });

  test('the valid forms still work on both', async () => {
    for (const [i, db] of ([node, remote] as Loose[]).entries()) {
      await db.cache('c').put('k', { a: 1 }, { ttlMs: 60_000 });
      assert.deepEqual(await db.cache('c').get('k', { consistency: 'linearizable' }), { a: 1 });
      assert.equal(await db.counter('n').add('k', 2n ** 62n), 2n ** 62n);
      await db.counter('n').delete('k');
      assert.deepEqual(await db.query('SELECT 1 AS x', [], { consistency: 'local' }), [{ x: 1 }]);
      // No params as null, like absent (a txn statement's null was taken before too).
      assert.deepEqual(await db.query('SELECT 3 AS x', null), [{ x: 3 }]);
      assert.equal((await db.txn([['SELECT 1', null]])).length, 1);
      // Every option each call takes, by its right name.
      await db.cache('c').put('k2', 2, {});
      await db.cache('c').put('k3', 3, undefined);
      assert.equal(await db.cache('c').replace('k2', 4, { ttlMs: 60_000 }), 2);
      assert.equal(await db.cache('c').putIfAbsent(`k4-${i}`, 5, { ttlMs: 60_000 }), true);
      assert.equal(await db.counter('n').get('k', { consistency: 'local' }), null);
      const signal = new AbortController().signal;
      const rows = await db.query('SELECT 2 AS x', [], {
        consistency: 'linearizable',
        minIndex: 1,
        timeoutMs: 5_000,
        signal,
      });
      assert.deepEqual(rows, [{ x: 2 }]);
      await db.waitUntilHealthy({ timeoutMs: 5_000 });
      const lock = await db.lock('valid-forms', { leaseMs: 5_000, waitMs: 5_000, signal });
      await lock.release();
      const tried = await db.tryLock('valid-forms', { leaseMs: 5_000 });
      assert.ok(tried !== null);
      await tried.release();
      // Surrogate pairs (emoji) are well-formed: their own keys and locks, apart from U+FFFD.
      await db.cache(`pairs-${i}`).put('\uD83D\uDE00', 'grin');
      await db.cache(`pairs-${i}`).put('\uFFFD', 'replacement');
      assert.equal(await db.cache(`pairs-${i}`).get('\uD83D\uDE00'), 'grin');
      assert.equal(await db.cache(`pairs-${i}`).get('\uFFFD'), 'replacement');
      const grin = await db.tryLock(`L\uD83D\uDE00-${i}`);
      const other = await db.tryLock(`L\uFFFD-${i}`);
      assert.ok(grin !== null && other !== null, 'two keys, two locks');
      await grin.release();
      await other.release();
    }
  });
});
