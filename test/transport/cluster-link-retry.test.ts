/**
 * The remote client's retries (src/client/cluster-link.ts) against a real API server whose node
 * refuses every write with HQL_UNAVAILABLE (as a joining node does), each answer slow: the call
 * ends with that definite refusal, never with HQL_OUTCOME_UNKNOWN from a last retry sent with too
 * little time left for its answer (seen on a loaded machine: "no answer within 133 ms").
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ClusterLink } from '../../src/client/cluster-link.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { ApiServer } from '../../src/node/api-server.js';
import type { ApiRequest } from '../../src/protocol/api-codec.js';
import { apiServerOptions, SECRET_API, stubHandler } from './api-helpers.js';
import { HOST } from './helpers.js';

const ANSWER_MS = 150;

describe('cluster link: retries of a refused write', () => {
  let api: ApiServer;
  const links: ClusterLink[] = [];
  after(async () => {
    await Promise.all(links.map((l) => l.close()));
    await api?.close();
  });

  test('a write refused slowly until its deadline ends HQL_UNAVAILABLE, not an unknown outcome', async () => {
    let proposals = 0;
    api = new ApiServer({
      ...apiServerOptions({
        frameBytesMax: 1024 * 1024,
        jsonBodyBytesMax: 1024,
        connectionsMax: 16,
        handshakeTimeoutMs: 10_000,
      }),
      handler: {
        ...stubHandler(async (req: ApiRequest) => {
          if (req.op !== 'propose')
            throw new HiqliteError('HQL_NOT_FOUND', `no ${req.op} here`, { retryable: false });
          proposals++;
          await new Promise((r) => setTimeout(r, ANSWER_MS));
          throw new HiqliteError('HQL_UNAVAILABLE', 'this node is joining the cluster', { retryable: true });
        }),
        ready: () => false,
      },
    });
    const { port } = await api.start();
    // Deadlines where the old rule sent a last retry with less than ANSWER_MS left (attempts at
    // about 0, 170, 360, 590, 900 ms of a 1,000 ms deadline), and a few more.
    for (const timeoutMs of [1000, 1300, 1700]) {
      const link = new ClusterLink({
        nodes: [`${HOST}:${port}`],
        secretApi: SECRET_API,
        requestTimeoutMs: timeoutMs,
        connectTimeoutMs: 5000,
        followLeader: false,
        frameBytesMax: 1024 * 1024,
        inflightMax: 16,
      });
      links.push(link);
      const before = proposals;
      await assert.rejects(
        link.call(
          { op: 'propose', group: 'sql', data: new Uint8Array([1]) },
          { kind: 'write', route: 'leader' },
        ),
        (e: unknown) => {
          assert.ok(e instanceof HiqliteError, String(e));
          assert.equal(e.code, 'HQL_UNAVAILABLE', `${timeoutMs} ms: ${e.message}`);
          return true;
        },
      );
      assert.ok(proposals - before >= 2, 'the refusal was retried');
    }
  });
});
