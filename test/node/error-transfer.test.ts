/**
 * Errors that cross a thread boundary (node/error-transfer.ts) come back as the class they left
 * as, with their code, retry safety and fields: users keep `instanceof` and `e.info` when the
 * node runs on its own thread. `structuredClone` stands in for postMessage.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, HiqliteError, LogCorruptionError, ProtocolError, SqlError } from '../../src/index.js';
import { rebuildError, transferError } from '../../src/node/error-transfer.js';
import { PeerUnreachableError } from '../../src/transport/transport-errors.js';

const across = (e: unknown) => rebuildError(structuredClone(transferError(e)));

test('a SqlError keeps its class, code, retryable and info', () => {
  const original = new SqlError({
    code: 'HQL_CONSTRAINT',
    message: 'UNIQUE failed',
    sqliteCode: 'SQLITE_CONSTRAINT_UNIQUE',
  });
  const e = across(original);
  assert.ok(e instanceof SqlError && e instanceof HiqliteError && e instanceof Error);
  assert.equal(e.code, 'HQL_CONSTRAINT');
  assert.equal(e.retryable, false);
  assert.equal(e.sqlCode, 'HQL_CONSTRAINT');
  assert.deepEqual(e.info, original.info);
  assert.equal(e.message, 'UNIQUE failed');
  assert.equal(e.name, 'SqlError');
  assert.equal(e.stack, original.stack);
});

test('subclasses keep their own fields; extra fields set on an error survive', () => {
  const config = across(new ConfigError([{ key: 'nodeId', message: 'must be a positive integer' }], null));
  assert.ok(config instanceof ConfigError);
  assert.deepEqual(config.problems, [{ key: 'nodeId', message: 'must be a positive integer' }]);
  const peer = across(new PeerUnreachableError(3, 'connection refused'));
  assert.ok(peer instanceof PeerUnreachableError);
  assert.equal(peer.peerId, 3);
  assert.equal(peer.retryable, true);
  const notLeader = across(
    Object.assign(new HiqliteError('HQL_NOT_LEADER', 'not the leader', { retryable: true }), { leaderId: 2 }),
  );
  assert.equal((notLeader as HiqliteError & { leaderId: number }).leaderId, 2);
  assert.ok(across(new ProtocolError('frame-too-large', 'bad frame')) instanceof ProtocolError);
  assert.ok(across(new LogCorruptionError('segment-3', 64, 'checksum')) instanceof LogCorruptionError);
});

test('the chain of causes is kept, with the fields of plain errors (a failed listen)', () => {
  const listen = Object.assign(new Error('listen EADDRINUSE'), {
    code: 'EADDRINUSE',
    syscall: 'listen',
    port: 8100,
  });
  const e = across(
    new HiqliteError('HQL_IO', 'cannot start the transport', { retryable: false, cause: listen }),
  );
  const cause = e.cause as Error & { code: string; syscall: string; port: number };
  assert.ok(cause instanceof Error);
  assert.deepEqual(
    [cause.message, cause.code, cause.syscall, cause.port],
    ['listen EADDRINUSE', 'EADDRINUSE', 'listen', 8100],
  );
});

test('what is not an Error, or has fields that cannot be cloned, still crosses', () => {
  assert.equal(across('a string').message, 'a string');
  const withFn = Object.assign(new TypeError('bad'), { callback: () => 1, at: { line: 3 } });
  const e = across(withFn);
  assert.ok(e instanceof TypeError);
  assert.deepEqual((e as unknown as { at: unknown }).at, { line: 3 });
  assert.equal((e as unknown as { callback?: unknown }).callback, undefined);
});
