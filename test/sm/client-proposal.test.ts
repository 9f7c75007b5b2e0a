/**
 * A remote client's command as the node takes it over (issue 9, item 2): the node's time
 * replaces the client's, a session outside the clients' namespace is refused, and the node
 * checks the command itself.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { adoptClientCacheCommand } from '../../src/sm/cache/client-proposal.js';
import { decodeCacheCommand, encodeCacheCommand } from '../../src/sm/cache/command.js';
import { adoptClientCommand, CLIENT_SESSION_PREFIX } from '../../src/sm/sql/client-proposal.js';
import { decodeCommand, encodeCommand } from '../../src/sm/sql/command.js';

const NODE_NOW_MS = Date.UTC(2026, 0, 1);
const CLIENT_NOW_MS = NODE_NOW_MS + 2 * 3600 * 1000;

function clientBytes(sql: string, clientId = `${CLIENT_SESSION_PREFIX}abc-0`): Uint8Array {
  return encodeCommand({
    command: { type: 'execute', sql, params: [], returning: false },
    nowMs: CLIENT_NOW_MS,
    seed: 7,
    session: { clientId, seq: 1 },
  });
}

function refusedWith(code: string) {
  return (e: unknown) => e instanceof HiqliteError && e.code === code;
}

describe("a client's command taken over by a node", () => {
  test("carries the node's time, keeps the client's session, seed and statement", () => {
    const { data } = adoptClientCommand(clientBytes('INSERT INTO t VALUES (1)'), { nowMs: NODE_NOW_MS });
    const e = decodeCommand(data);
    assert.equal(e.nowMs, NODE_NOW_MS);
    assert.equal(e.seed, 7);
    assert.deepEqual(e.session, { clientId: `${CLIENT_SESSION_PREFIX}abc-0`, seq: 1 });
    assert.equal(e.command.type === 'execute' && e.command.sql, 'INSERT INTO t VALUES (1)');
  });

  test("carries the node's session protection window, not the client's", () => {
    // A client that stamped its own window could keep its sessions from ever being forgotten
    // (or have others' forgotten): the window is the node's setting.
    const bytes = encodeCommand({
      command: { type: 'execute', sql: 'INSERT INTO t VALUES (1)', params: [], returning: false },
      nowMs: CLIENT_NOW_MS,
      seed: 7,
      session: { clientId: `${CLIENT_SESSION_PREFIX}abc-0`, seq: 1, protectMs: 3_600_000 },
    });
    const stamped = decodeCommand(
      adoptClientCommand(bytes, { nowMs: NODE_NOW_MS, sessionProtectMs: 60_000 }).data,
    );
    assert.deepEqual(stamped.session, {
      clientId: `${CLIENT_SESSION_PREFIX}abc-0`,
      seq: 1,
      protectMs: 60_000,
    });
    const unstamped = decodeCommand(adoptClientCommand(bytes, { nowMs: NODE_NOW_MS }).data);
    assert.deepEqual(unstamped.session, { clientId: `${CLIENT_SESSION_PREFIX}abc-0`, seq: 1 });
  });

  test("cannot claim a node's session, nor any id outside the clients' namespace", () => {
    for (const id of ['n1-0123456789abcdef-0', 'x', '']) {
      assert.throws(
        () => adoptClientCommand(clientBytes('INSERT INTO t VALUES (1)', id), { nowMs: NODE_NOW_MS }),
        (err: unknown) => refusedWith('HQL_MALFORMED_COMMAND')(err) || refusedWith('HQL_INVALID_PARAMS')(err),
        id,
      );
    }
  });

  test('is checked by the node: a statement the proposer must refuse is refused here too', () => {
    assert.throws(
      () => adoptClientCommand(clientBytes('BEGIN'), { nowMs: NODE_NOW_MS }),
      refusedWith('HQL_STATEMENT_NOT_ALLOWED'),
    );
    assert.throws(
      () => adoptClientCommand(new Uint8Array([1, 2, 3]), { nowMs: NODE_NOW_MS }),
      refusedWith('HQL_MALFORMED_COMMAND'),
    );
  });
});

describe("a client's cache command taken over by a node (the same rules in the cache group)", () => {
  function cacheBytes(clientId: string): Uint8Array {
    return encodeCacheCommand({
      nowMs: CLIENT_NOW_MS,
      session: { clientId, seq: 3 },
      command: { type: 'put', cache: 'sessions', key: 'k', value: new Uint8Array([1]) },
    });
  }

  test("carries the node's time and keeps the client's session", () => {
    const { data } = adoptClientCacheCommand(cacheBytes(`${CLIENT_SESSION_PREFIX}abc`), {
      nowMs: NODE_NOW_MS,
    });
    const e = decodeCacheCommand(data);
    assert.equal(e.nowMs, NODE_NOW_MS);
    assert.deepEqual(e.session, { clientId: `${CLIENT_SESSION_PREFIX}abc`, seq: 3 });
    assert.equal(e.command.type, 'put');
  });

  test("carries the node's session protection window, not the client's", () => {
    const bytes = encodeCacheCommand({
      nowMs: CLIENT_NOW_MS,
      session: { clientId: `${CLIENT_SESSION_PREFIX}abc`, seq: 3, protectMs: 3_600_000 },
      command: { type: 'put', cache: 'sessions', key: 'k', value: new Uint8Array([1]) },
    });
    const { data } = adoptClientCacheCommand(bytes, { nowMs: NODE_NOW_MS, sessionProtectMs: 60_000 });
    assert.deepEqual(decodeCacheCommand(data).session, {
      clientId: `${CLIENT_SESSION_PREFIX}abc`,
      seq: 3,
      protectMs: 60_000,
    });
  });

  test("cannot claim a node's session, nor any id outside the clients' namespace", () => {
    for (const id of ['n1-0123456789abcdef-0', 'c1-0', 'x', '']) {
      assert.throws(
        () => adoptClientCacheCommand(cacheBytes(id), { nowMs: NODE_NOW_MS }),
        refusedWith('HQL_MALFORMED_COMMAND'),
        id,
      );
    }
  });

  test('undecodable bytes are refused as malformed', () => {
    assert.throws(
      () => adoptClientCacheCommand(new Uint8Array([1, 2, 3]), { nowMs: NODE_NOW_MS }),
      refusedWith('HQL_MALFORMED_COMMAND'),
    );
  });
});
