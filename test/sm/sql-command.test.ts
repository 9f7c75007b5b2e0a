import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import {
  COMMAND_FORMAT_VERSION,
  type CommandEnvelope,
  type CommandInput,
  decodeCommand,
  encodeCommand,
  type ParamInput,
  type TxnCommand,
} from '../../src/sm/sql/command.js';
import { SqlError } from '../../src/sm/sql/errors.js';

const base = { nowMs: 1_700_000_000_000, seed: 42 };

function roundTrip(envelope: CommandEnvelope<ParamInput>): CommandEnvelope {
  return decodeCommand(encodeCommand(envelope));
}

function isCode(code: string) {
  return (e: unknown) => e instanceof SqlError && e.sqlCode === code;
}

/** Encodes an arbitrary object the way a foreign client would, bypassing our validation. */
function rawCommand(value: unknown): Uint8Array {
  const packed = new Packr({ useRecords: false }).pack(value);
  return new Uint8Array([COMMAND_FORMAT_VERSION, ...packed]);
}

describe('command codec', () => {
  test('every command type round-trips with its session', () => {
    const commands: CommandInput[] = [
      { type: 'execute', sql: 'INSERT INTO t VALUES (?, ?)', params: [1, 'a'], returning: true },
      { type: 'execute', sql: 'SELECT :a', params: { a: null }, returning: false },
      {
        type: 'txn',
        statements: [
          { sql: 'INSERT INTO p VALUES (1) RETURNING id', params: [] },
          { sql: 'INSERT INTO c VALUES (?)', params: [{ $ref: [0, 0, 'id'] }] },
          { sql: 'INSERT INTO c VALUES (:x)', params: { x: { $ref: [1, 2, 3] } } },
        ],
      },
      { type: 'batch', sql: 'CREATE TABLE a (x); CREATE TABLE b (y);' },
      { type: 'migrate', migrations: [{ id: 1, name: 'init', sql: 'CREATE TABLE a (x)', checksum: 'abc' }] },
    ];
    for (const command of commands) {
      const envelope = { ...base, command, session: { clientId: 'client-1', seq: 9 } };
      assert.deepEqual(roundTrip(envelope), envelope);
    }
    assert.deepEqual(roundTrip({ ...base, command: commands[3]! }), { ...base, command: commands[3] });
  });

  test('parameter values keep their SQLite type; booleans and Dates are normalized', () => {
    const big = -(2n ** 63n);
    const buffer = Buffer.from([1, 2, 3]);
    const decoded = roundTrip({
      ...base,
      command: {
        type: 'execute',
        sql: 'SELECT 1',
        params: [
          null,
          1.5,
          -7,
          big,
          2n ** 53n + 1n,
          5n,
          'text',
          buffer,
          true,
          false,
          new Date(Date.UTC(2020, 1, 3)),
        ],
        returning: false,
      },
    });
    assert.ok(decoded.command.type === 'execute');
    assert.deepEqual(decoded.command.params, [
      null,
      1.5,
      -7,
      big,
      2n ** 53n + 1n,
      5,
      'text',
      new Uint8Array([1, 2, 3]),
      1,
      0,
      '2020-02-03T00:00:00.000Z',
    ]);
    const blob = (decoded.command.params as unknown[])[7];
    assert.equal(Object.getPrototypeOf(blob), Uint8Array.prototype);
  });

  test('values SQLite cannot bind are HQL_INVALID_PARAMS when encoding', () => {
    for (const bad of [undefined, 2n ** 63n, { a: 1 }, () => 1, new Date(Number.NaN), Symbol('x')]) {
      assert.throws(
        () =>
          encodeCommand({
            ...base,
            command: { type: 'execute', sql: 'SELECT ?', params: [bad as never], returning: false },
          }),
        isCode('HQL_INVALID_PARAMS'),
        String(typeof bad),
      );
    }
  });

  test("a $ref is only valid towards an earlier statement of a txn: the caller's error", () => {
    const ref = { $ref: [0, 0, 'id'] as const };
    const refused = (message: RegExp) => (e: unknown) => {
      assert.ok(isCode('HQL_INVALID_PARAMS')(e), String(e));
      assert.match((e as Error).message, message);
      return true;
    };
    assert.throws(
      () =>
        encodeCommand({
          ...base,
          command: { type: 'execute', sql: 'SELECT ?', params: [ref], returning: false },
        }),
      refused(/^params\[0\]: \$ref is only valid in a later statement of a txn$/),
    );
    assert.throws(
      () =>
        encodeCommand({
          ...base,
          command: { type: 'txn', statements: [{ sql: 'SELECT ?', params: [ref] }] },
        }),
      refused(/^statements\[0\]\.params\[0\]: \$ref is only valid in a later statement/),
    );
    assert.throws(
      () => encodeCommand({ ...base, command: { type: 'txn', statements: [] } }),
      refused(/^statements: empty$/),
    );
  });

  test('a txn carries each distinct SQL text once; statements repeating it name the first', () => {
    const insert = 'INSERT INTO t (k, v) VALUES (?, ?)';
    const statements = Array.from({ length: 200 }, (_, i) => ({
      sql: i % 50 === 7 ? 'UPDATE t SET v = v WHERE k = ?' : insert,
      params: i % 50 === 7 ? [i] : [i, 'v'],
    }));
    const encoded = encodeCommand({ ...base, command: { type: 'txn', statements } });
    const text = Buffer.from(encoded).toString('latin1');
    assert.equal(text.split(insert).length - 1, 1, 'the INSERT text is in the entry once');
    const back = decodeCommand(encoded).command;
    assert.equal(back.type, 'txn');
    assert.deepEqual(
      back.type === 'txn' && back.statements.map((s) => s.sql),
      statements.map((s) => s.sql),
    );
    // Foreign encoders may repeat the text or name an earlier statement; nothing else.
    const wire = (sql: unknown) =>
      rawCommand({
        ...base,
        command: {
          type: 'txn',
          statements: [
            { sql: 'SELECT 1', params: [] },
            { sql, params: [] },
          ],
        },
      });
    assert.equal((decodeCommand(wire(0)).command as TxnCommand).statements[1]?.sql, 'SELECT 1');
    for (const bad of [1, 2, -1, 0.5])
      assert.throws(() => decodeCommand(wire(bad)), isCode('HQL_MALFORMED_COMMAND'));
  });

  test('envelope fields are range-checked', () => {
    const command: CommandInput = { type: 'batch', sql: 'SELECT 1' };
    for (const envelope of [
      { nowMs: -1, seed: 1, command },
      { nowMs: 1.5, seed: 1, command },
      { nowMs: 1, seed: 2 ** 32, command },
      { nowMs: 1, seed: 1, command, session: { clientId: '', seq: 1 } },
      { nowMs: 1, seed: 1, command, session: { clientId: 'x'.repeat(257), seq: 1 } },
      { nowMs: 1, seed: 1, command, session: { clientId: 'c', seq: -1 } },
    ]) {
      assert.throws(() => encodeCommand(envelope), isCode('HQL_INVALID_PARAMS'), JSON.stringify(envelope));
    }
  });

  test('decoding rejects wrong versions, truncation, unknown fields and wrong types', () => {
    const valid = encodeCommand({ ...base, command: { type: 'batch', sql: 'SELECT 1' } });
    const cases: Uint8Array[] = [
      new Uint8Array(),
      new Uint8Array([COMMAND_FORMAT_VERSION]),
      new Uint8Array([99, ...valid.subarray(1)]),
      valid.subarray(0, valid.length - 2),
      new Uint8Array([...valid, 0]),
      rawCommand({ ...base, command: { type: 'batch', sql: 'x' }, extra: 1 }),
      rawCommand({ ...base, command: { type: 'drop-everything' } }),
      rawCommand({ ...base, command: { type: 'execute', sql: 1, params: [], returning: false } }),
      rawCommand({ ...base, command: { type: 'execute', sql: 'x', params: 'nope', returning: false } }),
      rawCommand({ ...base, command: { type: 'execute', sql: 'x', params: [[1]], returning: false } }),
      rawCommand({
        ...base,
        command: { type: 'execute', sql: 'x', params: { 'bad name': 1 }, returning: false },
      }),
      rawCommand({ ...base, command: { type: 'txn', statements: [] } }),
      rawCommand({
        ...base,
        command: { type: 'migrate', migrations: [{ id: 0, name: 'a', sql: '', checksum: '' }] },
      }),
      rawCommand([1, 2, 3]),
    ];
    for (const bytes of cases) assert.throws(() => decodeCommand(bytes), isCode('HQL_MALFORMED_COMMAND'));
  });

  test('arbitrary bytes never crash the decoder: a valid command or HQL_MALFORMED_COMMAND', () => {
    const valid = encodeCommand({
      ...base,
      session: { clientId: 'c', seq: 1 },
      command: {
        type: 'txn',
        statements: [
          { sql: 'INSERT INTO t VALUES (?) RETURNING id', params: [new Uint8Array([1])] },
          { sql: 'SELECT ?', params: [{ $ref: [0, 0, 0] }] },
        ],
      },
    });
    const outcome = (bytes: Uint8Array) => {
      try {
        decodeCommand(bytes);
      } catch (e) {
        assert.ok(isCode('HQL_MALFORMED_COMMAND')(e), `unexpected ${String(e)}`);
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) =>
        outcome(new Uint8Array([COMMAND_FORMAT_VERSION, ...tail])),
      ),
      { seed: 20240506, numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: valid.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        (at, byte) => {
          const mutated = valid.slice();
          mutated[at] = byte;
          outcome(mutated);
        },
      ),
      { seed: 7, numRuns: 2000 },
    );
    // Deep nesting exhausts the decoder's stack: still a typed error.
    outcome(new Uint8Array([COMMAND_FORMAT_VERSION, ...new Uint8Array(100_000).fill(0x91)]));
  });
});
