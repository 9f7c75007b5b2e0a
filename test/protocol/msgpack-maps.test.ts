/**
 * MapsPackr decodes maps as objects without msgpackr's renaming of a key `__proto__` (to
 * `__proto_`), which lost a row's column and a write's parameter (src/protocol/msgpack-maps.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { holdsProtoKey, MapsPackr } from '../../src/protocol/msgpack-maps.js';
import { decodeResult, encodeResult } from '../../src/sm/sql/result.js';
import { toRow } from '../../src/sm/sql/values.js';

const packr = new MapsPackr({ useRecords: false });
const plain = new Packr({ useRecords: false, mapsAsObjects: true });

function withProto(value: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  Object.defineProperty(o, '__proto__', { value, enumerable: true, writable: true, configurable: true });
  return Object.assign(o, extra);
}

describe('MapsPackr', () => {
  test('a key __proto__ stays an own key at any depth, its object an ordinary one', () => {
    const v = { rows: [withProto(1, { __proto_: 2 }), { a: withProto({ b: [withProto(3)] }) }] };
    const out = packr.unpack(packr.pack(v)) as typeof v;
    const row = out.rows[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(row), ['__proto__', '__proto_']);
    assert.equal(Object.getOwnPropertyDescriptor(row, '__proto__')?.value, 1);
    assert.equal(row.__proto_, 2);
    assert.equal(Object.getPrototypeOf(row), Object.prototype);
    const inner = (out.rows[1] as { a: Record<string, unknown> }).a;
    const deep = Object.getOwnPropertyDescriptor(inner, '__proto__')?.value as { b: unknown[] };
    assert.equal(Object.getOwnPropertyDescriptor(deep.b[0], '__proto__')?.value, 3);
    // What msgpackr alone does (the defect): the key renamed.
    assert.deepEqual(Object.keys(plain.unpack(packr.pack(v.rows[0])) as object), ['__proto_']);
  });

  test('anything else decodes as msgpackr decodes it, whether or not __proto__ is a string in it', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (v, tagged) => {
        // A key __proto__ is the other test's (msgpackr alone renames it).
        fc.pre(!JSON.stringify(v).includes('"__proto__":'));
        const value = tagged ? { v, s: '__proto__' } : v;
        const bytes = packr.pack(value);
        assert.equal(holdsProtoKey(bytes), tagged || JSON.stringify(v).includes('__proto__'));
        assert.deepEqual(packr.unpack(bytes), plain.unpack(bytes));
      }),
      { numRuns: 300 },
    );
  });

  test('holdsProtoKey finds the nine bytes anywhere, and nothing short of them', () => {
    const bytes = (s: string) => new TextEncoder().encode(s);
    for (const yes of ['__proto__', 'x__proto__', '___proto__', '__proto__x', 'a_b__proto___'])
      assert.equal(holdsProtoKey(bytes(yes)), true, yes);
    for (const no of ['', '_', '__proto_', '_proto__', '__proto_ _', '__prot o__', '__PROTO__'])
      assert.equal(holdsProtoKey(bytes(no)), false, no);
    // A view into a larger buffer: only its own bytes count.
    const whole = bytes('__proto__ab');
    assert.equal(holdsProtoKey(whole.subarray(1)), false);
    assert.equal(holdsProtoKey(whole.subarray(0, 9)), true);
  });

  test('bytes and bigints come back as with msgpackr on the slow path too', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const out = packr.unpack(packr.pack(withProto(bytes, { n: 2n ** 63n - 1n }))) as Record<string, unknown>;
    assert.deepEqual(new Uint8Array(Object.getOwnPropertyDescriptor(out, '__proto__')?.value), bytes);
    assert.equal(out.n, 2n ** 63n - 1n);
  });

  test('a stored command result keeps a column __proto__ (exactly-once replies, worker results)', () => {
    const row = toRow(['__proto__', '__proto_'], [1n, 2n]);
    const back = decodeResult(
      encodeResult({
        ok: true,
        type: 'execute',
        value: { rowsAffected: 1, lastInsertRowid: 1, rows: [row] },
      }),
    );
    assert.ok(back.ok && back.type === 'execute');
    assert.deepEqual(Object.keys(back.value.rows![0]!), ['__proto__', '__proto_']);
    assert.equal(Object.getOwnPropertyDescriptor(back.value.rows![0], '__proto__')?.value, 1);
  });
});
