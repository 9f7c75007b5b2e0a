/**
 * msgpack from an untrusted sender, checked without recursion before a decoder sees it
 * (src/protocol/msgpack-check.ts): well formed, one value, bounded nesting, UTF-8 strings. A
 * remote client's cache value with a string that is not UTF-8 was stored and read back with
 * U+FFFD in it; one nested 100,000 deep made the decoder throw a RangeError.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Prng } from '../../src/lib/prng.js';
import { msgpackProblem } from '../../src/protocol/msgpack-check.js';
import { adoptClientCacheCommand } from '../../src/sm/cache/client-proposal.js';
import { encodeCacheCommand } from '../../src/sm/cache/command.js';
import { cacheValuePackr } from '../../src/sm/cache/value.js';
import { CLIENT_SESSION_PREFIX } from '../../src/sm/sql/client-proposal.js';

const bytes = (...b: number[]) => new Uint8Array(b);

/** A random value of every kind cache values take, nested up to `depth`. */
function randomValue(r: Prng, depth: number): unknown {
  switch (r.int(0, depth > 0 ? 12 : 9)) {
    case 0:
      return null;
    case 1:
      return r.int(0, 2) === 0;
    case 2:
      return r.int(-(2 ** 31), 2 ** 31);
    case 3:
      return (r.int(0, 1_000_000) - 500_000) / 7;
    case 4:
      return BigInt(r.int(0, 2 ** 31)) * 2n ** 32n * (r.int(0, 2) === 0 ? 1n : -1n);
    case 5:
      return 'héllo ✓ 😀'.repeat(r.int(0, 40));
    case 6:
      return new Uint8Array(r.int(0, 300)).fill(r.int(0, 256));
    case 7:
      return new Date(r.int(0, 2 ** 41));
    case 8:
      return 'k'.repeat(r.int(0, 70_000));
    case 9:
    case 10:
      return Array.from({ length: r.int(0, 20) }, () => randomValue(r, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(0, 20); i > 0; i--) o[`κ${r.int(0, 1000)}`] = randomValue(r, depth - 1);
      return o;
    }
  }
}

describe('msgpackProblem', () => {
  test('accepts what the cache value codec writes (random values of every kind, 300 seeds)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const v = randomValue(new Prng(seed), 4);
      const packed = cacheValuePackr.pack(v);
      assert.equal(msgpackProblem(packed, 256), null, `seed ${seed}`);
    }
  });

  test('refuses strings that are not UTF-8 (values and map keys), trailing bytes, a value cut short', () => {
    assert.match(msgpackProblem(bytes(0xa2, 0xff, 0xfe), 256) ?? '', /string at byte 1 is not UTF-8/);
    assert.match(msgpackProblem(bytes(0x81, 0xa1, 0xc3, 0x01), 256) ?? '', /not UTF-8/);
    assert.match(msgpackProblem(bytes(0xd9, 0x03, 0xed, 0xa0), 256) ?? '', /ends in the middle/);
    assert.match(msgpackProblem(bytes(0xc0, 0xc0), 256) ?? '', /1 bytes follow the value/);
    assert.match(msgpackProblem(bytes(0x92, 0x01), 256) ?? '', /ends in the middle/);
    assert.match(msgpackProblem(bytes(0xdd, 0xff, 0xff, 0xff, 0xff), 256) ?? '', /ends in the middle/);
    assert.match(msgpackProblem(bytes(0xc1), 256) ?? '', /not a msgpack type/);
    assert.match(msgpackProblem(bytes(), 256) ?? '', /ends in the middle/);
  });

  test('nesting: 256 levels pass, 257 do not; 100,000 levels are refused without recursion', () => {
    const nested = (levels: number) => {
      const b = new Uint8Array(levels + 1).fill(0x91);
      b[levels] = 0xc0;
      return b;
    };
    assert.equal(msgpackProblem(nested(256), 256), null);
    assert.match(msgpackProblem(nested(257), 256) ?? '', /nest more than 256 levels deep/);
    assert.match(msgpackProblem(nested(100_000), 256) ?? '', /nest more than 256 levels deep/);
  });

  test("a remote client's cache value or payload with such bytes is refused when the node takes it over", () => {
    const command = (value: Uint8Array) =>
      encodeCacheCommand({
        nowMs: 1,
        session: { clientId: `${CLIENT_SESSION_PREFIX}abc`, seq: 1 },
        command: { type: 'put', cache: 'c', key: 'k', value },
      });
    for (const value of [bytes(0xa2, 0xff, 0xfe), bytes(0x81, 0xa2, 0xc3, 0x28, 0x01)]) {
      assert.throws(
        () => adoptClientCacheCommand(command(value), { nowMs: 2 }),
        (e: unknown) => {
          assert.equal((e as { code?: string }).code, 'HQL_INVALID_PARAMS');
          assert.match((e as Error).message, /not UTF-8/);
          return true;
        },
      );
    }
    const deep = new Uint8Array(100_001).fill(0x91);
    deep[100_000] = 0xc0;
    assert.throws(() => adoptClientCacheCommand(command(deep), { nowMs: 2 }), {
      code: 'HQL_INVALID_PARAMS',
      message: /nest more than 256 levels deep/,
    });
    assert.doesNotThrow(() =>
      adoptClientCacheCommand(command(cacheValuePackr.pack({ a: ['ü'] })), { nowMs: 2 }),
    );
  });
});
