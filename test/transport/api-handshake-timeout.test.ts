/**
 * A node that accepts the API upgrade and then says nothing (stopped with SIGSTOP, or too busy
 * to answer) makes the client's handshake time out. That is not a refusal of the secret: the
 * client must report it as HQL_UNAVAILABLE (retryable: try again, or another node), never as
 * HQL_UNAUTHORIZED (not retryable), which made callers give up on a live cluster. Found by the
 * fault suite (mixed nemesis, seed 12004: a node paused while clients connected to it).
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { ApiConnection, REMOTE_CLIENT_ID } from '../../src/transport/api-connection.js';
import { HOST } from './helpers.js';

const sockets = new Set<Socket>();
let server: Server | null = null;

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (server === null ? r() : server.close(() => r())));
});

/** Answers the HTTP upgrade, then reads and ignores everything (a node that stopped right after). */
async function silentAfterUpgrade(): Promise<number> {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: hiqlite\r\nConnection: Upgrade\r\n\r\n');
      socket.resume();
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server?.listen(0, HOST, r));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

describe('the API handshake against a node that does not answer', () => {
  test('times out as HQL_UNAVAILABLE (retryable), not as a refused secret', async () => {
    const port = await silentAfterUpgrade();
    await assert.rejects(
      ApiConnection.open({
        host: HOST,
        port,
        secret: 'some-api-secret-0123456789',
        localId: REMOTE_CLIENT_ID,
        connectTimeoutMs: 300,
        frameBytesMax: 1024 * 1024,
        inflightMax: 4,
      }),
      (e: unknown) => {
        assert.ok(e instanceof HiqliteError, String(e));
        assert.equal(e.code, 'HQL_UNAVAILABLE', e.message);
        assert.equal(e.retryable, true);
        assert.match(e.message, /no handshake answer within 300 ms/);
        return true;
      },
    );
  });
});
