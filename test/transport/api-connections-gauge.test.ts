/**
 * The API port's connection gauges count what `api_connections_max` bounds: every TCP connection,
 * HTTP keep-alive ones included (`status().connections`, `hiqlite_api_tcp_connections`). Found
 * from outside: with 1,100 authenticated HTTP keep-alive connections the only connection gauge
 * (binary-protocol connections) said 2 while the bound refused new ones.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { test } from 'node:test';
import { ApiServer } from '../../src/node/api-server.js';
import { apiServerOptions, openApiClient, SECRET_API, stubHandler } from './api-helpers.js';
import { HOST, waitFor } from './helpers.js';

function get(port: number, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: HOST, port, path: '/health', agent, headers: { 'x-api-secret': SECRET_API } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('every TCP connection counts, HTTP keep-alive ones included; binary ones also as streams', async () => {
  const api = new ApiServer({ ...apiServerOptions(), handler: stubHandler(async () => null) });
  const { port } = await api.start();
  const agents = Array.from({ length: 5 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
  try {
    for (const agent of agents) assert.equal(await get(port, agent), 200);
    const conn = await openApiClient(port);
    await waitFor(() => api.status().connections === 6, 'six connections counted');
    assert.equal(api.status().streams, 1);
    conn.close();
    for (const agent of agents) agent.destroy();
    await waitFor(() => api.status().connections === 0, 'closed connections uncounted');
  } finally {
    for (const agent of agents) agent.destroy();
    await api.close();
  }
});
