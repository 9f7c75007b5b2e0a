/**
 * The proxy's configuration (TOML `[hiqlite]` + `HQL_*` variables) and its routing table: what
 * a valid file becomes, every problem named by its key, every key documented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/node/config/config.js';
import type { ApiRequest } from '../../src/protocol/api-codec.js';
import { routeOf } from '../../src/proxy/op-routes.js';
import { parseProxyConfig } from '../../src/proxy/proxy-config.js';
import { PROXY_KEYS } from '../../src/proxy/proxy-config-keys.js';

const SECRET = 'a-secret-of-enough-length';

function problemsOf(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseProxyConfig(text, env, 'proxy.toml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.map((p) => `${p.key}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

/** A proxy file listening on 127.0.0.1:8300 with these `nodes` (TOML) and the test secret. */
function proxyToml(nodes: string): string {
  return [
    '[hiqlite]',
    'proxy_addr_api = "127.0.0.1:8300"',
    `nodes = ${nodes}`,
    `secret_api = "${SECRET}"`,
  ].join('\n');
}

describe('proxy configuration', () => {
  test('a minimal file: node-style entries and plain addresses, defaults as a node', () => {
    const c = parseProxyConfig(
      proxyToml('["1 127.0.0.1:8100 127.0.0.1:8200", "127.0.0.1:8201", "https://db.example:8202"]'),
      {},
    );
    assert.deepEqual(c.nodes, ['127.0.0.1:8200', '127.0.0.1:8201', 'https://db.example:8202']);
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8300 });
    assert.equal(c.secretApiCluster, SECRET);
    assert.equal(c.tlsApi, null);
    assert.equal(c.tlsCluster, false);
    assert.equal(c.limits.api_connections_max, 1024);
    assert.equal(c.limits.request_timeout_ms, 10_000);
  });

  test("a node config's table entries give their API address; a wrong one is named", () => {
    const c = parseProxyConfig(
      proxyToml('[{ id = 1, addr_raft = "127.0.0.1:8100", addr_api = "127.0.0.1:8200" }, "127.0.0.1:8201"]'),
      {},
    );
    assert.deepEqual(c.nodes, ['127.0.0.1:8200', '127.0.0.1:8201']);
    const problems = problemsOf(
      proxyToml(
        '[{ id = 1, addr_api = "127.0.0.1:8200" }, { id = 2, addr_raft = "a:1", addr_api = "ftp://x:1" }, 7]',
      ),
    );
    assert.deepEqual(problems, [
      'nodes[0]: a table: lacks addr_raft: a node table takes { id = <id>, addr_raft = "<host:port>", addr_api = "<host:port>" }',
      problems[1] as string,
      'nodes[2]: must be an API address string (or a node entry), got 7',
    ]);
    assert.match(problems[1] as string, /^nodes\[1\]: .*scheme "ftp:\/\/"/);
  });

  test('variables override the file', () => {
    const c = parseProxyConfig(
      ['[hiqlite]', 'proxy_addr_api = "127.0.0.1:8300"', 'nodes = ["127.0.0.1:8200"]'].join('\n'),
      {
        HQL_SECRET_API: SECRET,
        HQL_SECRET_API_CLUSTER: `${SECRET}-cluster`,
        HQL_NODES: '10.0.0.1:8200,10.0.0.2:8200',
        HQL_LISTEN_ADDR_API: '0.0.0.0',
        HQL_TLS_CLUSTER_CA: 'ca.pem',
        HQL_TLS_AUTO_CERTIFICATES: 'true',
        HQL_REQUEST_TIMEOUT_MS: '2500',
      },
    );
    assert.deepEqual(c.nodes, ['10.0.0.1:8200', '10.0.0.2:8200']);
    assert.deepEqual(c.listen, { host: '0.0.0.0', port: 8300 });
    assert.equal(c.secretApiCluster, `${SECRET}-cluster`);
    assert.deepEqual(c.tlsCluster, { caFile: 'ca.pem' });
    assert.equal(c.tlsApi, 'self-signed');
    assert.equal(c.limits.request_timeout_ms, 2500);
  });

  test('every problem is reported at once, naming its key', () => {
    const problems = problemsOf(
      [
        '[hiqlite]',
        'nodes = ["1 127.0.0.1:8100", "ftp://x:1"]',
        'secret_api = "short"',
        'secret_raft = "a node key"',
        'request_timout_ms = 5',
        'tls_api_cert = "cert.pem"',
      ].join('\n'),
      { HQL_CONNECT_TIMEOUT_MS: 'soon' },
    );
    const text = problems.join('\n');
    assert.match(text, /proxy_addr_api: is required/);
    assert.match(text, /nodes\[0\]: .*expected "<id> <raft host:port> <api host:port>"/);
    assert.match(text, /nodes\[1\]: .*scheme "ftp:\/\/"/);
    assert.match(text, /secret_api: must be at least 16 characters/);
    assert.match(text, /secret_raft: not a proxy key/);
    assert.match(text, /request_timout_ms: not a proxy key \(did you mean request_timeout_ms\?\)/);
    assert.match(text, /tls_api_cert: tls_api_cert and tls_api_key go together/);
    assert.match(text, /connect_timeout_ms \(from HQL_CONNECT_TIMEOUT_MS\): must be an integer/);
    assert.ok(!text.includes('short'), 'a secret never appears in a message');
  });

  test('docs/CONFIGURATION.md documents every proxy key', () => {
    const docs = readFileSync(resolve(import.meta.dirname, '../../docs/CONFIGURATION.md'), 'utf8');
    const section = docs.slice(docs.indexOf('## The proxy'));
    assert.deepEqual(
      Object.keys(PROXY_KEYS).filter((k) => !section.includes(`\`${k}\``)),
      [],
    );
  });
});

describe('proxy routing table', () => {
  test('writes and linearizable reads to the leader, other reads to any node, leader answered by the proxy', () => {
    const propose: ApiRequest = { id: 1, op: 'propose', group: 'sql', data: new Uint8Array() };
    assert.deepEqual(routeOf(propose), { forward: true, kind: 'write', route: 'leader' });
    const read = { id: 1, op: 'query', sql: 'SELECT 1', params: [], minIndex: 0 } as const;
    assert.deepEqual(routeOf({ ...read, consistency: 'local' }), {
      forward: true,
      kind: 'read',
      route: 'any',
    });
    assert.deepEqual(routeOf({ ...read, consistency: 'linearizable' }), {
      forward: true,
      kind: 'read',
      route: 'leader',
    });
    assert.deepEqual(routeOf({ id: 1, op: 'leader' }), { forward: false, answer: 'leader' });
    assert.deepEqual(routeOf({ id: 1, op: 'promote', nodeId: 2 }), { forward: false, answer: 'refuse' });
  });

  test('an op without a rule goes to the leader, sent at most once', () => {
    const future = { id: 1, op: 'cacheIncrement' } as unknown as ApiRequest;
    assert.deepEqual(routeOf(future), { forward: true, kind: 'once', route: 'leader' });
  });
});
