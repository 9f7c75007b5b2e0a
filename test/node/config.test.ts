import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import {
  ConfigError,
  type ConfigProblem,
  generateConfig,
  INTEGER_SETTINGS,
  loadEnvConfig,
  loadTomlConfig,
  type NodeConfig,
  type NodeEntry,
  parseTomlConfig,
  readTomlConfig,
  resolveConfig,
  writeGeneratedConfig,
} from '../../src/node/config/config.js';
import { RUST_ONLY_KEYS, TOML_KEYS } from '../../src/node/config/config-keys.js';

const SECRET_RAFT = 'raft-secret-0123456789';
const SECRET_API = 'api-secret-0123456789';
/** A backup encryption key: base64 of 32 bytes. */
const KEY_B64 = Buffer.alloc(32, 7).toString('base64');
/** The Argon2id reference test vector, as `password_dashboard`. */
const DASHBOARD_PHC =
  '$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc';

function base(overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    nodeId: 1,
    nodes: [
      { id: 1, addrRaft: '127.0.0.1:8100', addrApi: '127.0.0.1:8200' },
      { id: 2, addrRaft: '127.0.0.2:8100', addrApi: '127.0.0.2:8200' },
      { id: 3, addrRaft: '127.0.0.3:8100', addrApi: '127.0.0.3:8200' },
    ],
    dataDir: 'data',
    secretRaft: SECRET_RAFT,
    secretApi: SECRET_API,
    ...overrides,
  };
}

const BASE_TOML = `
[hiqlite]
node_id = 1
nodes = [
  "1 127.0.0.1:8100 127.0.0.1:8200",
  "2 127.0.0.2:8100 127.0.0.2:8200",
  "3 127.0.0.3:8100 127.0.0.3:8200",
]
data_dir = "data"
secret_raft = "${SECRET_RAFT}"
secret_api = "${SECRET_API}"
`;

/** The problems of a config that must fail with HQL_INVALID_CONFIG. */
function problemsOf(fn: () => unknown): ConfigProblem[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.ok(e instanceof HiqliteError);
    assert.equal(e.code, 'HQL_INVALID_CONFIG');
    assert.equal(e.retryable, false);
    for (const p of e.problems) assert.ok(e.message.includes(`${p.key}: ${p.message}`), 'message lists each');
    return [...e.problems];
  }
  return assert.fail('expected a ConfigError');
}

/** Exactly one problem, for `key`, whose message matches `re`. */
function assertOneProblem(fn: () => unknown, key: string, re: RegExp): void {
  const problems = problemsOf(fn);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]?.key, key);
  assert.match(problems[0]?.message ?? '', re);
}

const bad = (o: Record<string, unknown>) => () => resolveConfig(base(o as Partial<NodeConfig>));

describe('resolveConfig', () => {
  test('fills in every default and derives the paths under dataDir', () => {
    const c = resolveConfig(base());
    assert.equal(c.nodeId, 1);
    assert.equal(c.dataDir, resolve('data'));
    assert.equal(c.filenameDb, 'hiqlite.db');
    assert.deepEqual(c.paths, {
      logsDir: join(resolve('data'), 'logs'),
      dbDir: join(resolve('data'), 'state_machine', 'db'),
      dbFile: join(resolve('data'), 'state_machine', 'db', 'hiqlite.db'),
      snapshotsDir: join(resolve('data'), 'state_machine', 'snapshots'),
      backupsDir: join(resolve('data'), 'state_machine', 'backups'),
      cacheLogsDir: join(resolve('data'), 'logs_cache'),
      cacheSnapshotsDir: join(resolve('data'), 'state_machine', 'cache_snapshots'),
    });
    assert.equal(c.cacheStorageDisk, true);
    assert.equal(c.sqlite, true);
    assert.equal(c.learnerOnly, false);
    assert.equal(c.logStatements, false);
    assert.deepEqual(c.tls, { raft: null, api: null });
    for (const s of INTEGER_SETTINGS) assert.equal(c[s.key], s.default, s.key);
    assert.equal(c.logsUntilSnapshot, 10_000);
    assert.equal(c.heartbeatIntervalTicks, c.heartbeatIntervalMs / c.tickIntervalMs);
    assert.equal(c.electionTimeoutTicks, c.electionTimeoutMs / c.tickIntervalMs);
  });

  test('the database file name is configurable', () => {
    const c = resolveConfig(base({ filenameDb: 'app.sqlite', dataDir: '/srv/hq' }));
    assert.equal(c.paths?.dbFile, join(resolve('/srv/hq'), 'state_machine', 'db', 'app.sqlite'));
  });

  test('only a cache-only node that keeps its cache in memory has no data directory', () => {
    const noDataDir = (o: Partial<NodeConfig>) => {
      const c = base(o);
      delete c.dataDir;
      return c;
    };
    const inMemory = resolveConfig(noDataDir({ sqlite: false, cacheStorageDisk: false }));
    assert.equal(inMemory.dataDir, null);
    assert.equal(inMemory.paths, null);
    // One given is not used: such a node writes no file.
    assert.equal(resolveConfig(base({ sqlite: false, cacheStorageDisk: false })).dataDir, null);
    const onDisk = resolveConfig(base({ sqlite: false }));
    assert.equal(onDisk.paths?.cacheLogsDir, join(resolve('data'), 'logs_cache'));
    for (const o of [{ sqlite: false }, { cacheStorageDisk: false }, {}]) {
      assertOneProblem(
        () => resolveConfig(noDataDir(o)),
        'dataDir',
        /is required: .*only a cache-only node that keeps its cache in memory/,
      );
    }
  });

  test('a node listens on the host of its own entry, never on all interfaces by default', () => {
    const c = resolveConfig(base({ nodeId: 2 }));
    assert.deepEqual(c.self.raft, { host: '127.0.0.2', port: 8100 });
    assert.deepEqual(c.listenRaft, { host: '127.0.0.2', port: 8100 });
    assert.deepEqual(c.listenApi, { host: '127.0.0.2', port: 8200 });
  });

  test('listenAddrRaft / listenAddrApi replace the host only; the port stays the entry’s', () => {
    const c = resolveConfig(base({ nodeId: 3, listenAddrRaft: '0.0.0.0', listenAddrApi: '[::]' }));
    assert.deepEqual(c.listenRaft, { host: '0.0.0.0', port: 8100 });
    assert.deepEqual(c.listenApi, { host: '::', port: 8200 });
  });

  test('IPv6 addresses are written in brackets and resolved without them', () => {
    const c = resolveConfig(
      base({ nodes: [{ id: 1, addrRaft: '[::1]:8100', addrApi: '[fe80::1]:8200' }], listenAddrApi: '::1' }),
    );
    assert.deepEqual(c.self.raft, { host: '::1', port: 8100 });
    assert.equal(c.self.addrRaft, '[::1]:8100');
    assert.deepEqual(c.listenRaft, { host: '::1', port: 8100 });
    assert.deepEqual(c.listenApi, { host: '::1', port: 8200 });
  });

  test('nodes come out sorted by id, whatever the order written', () => {
    const nodes = [...base().nodes].reverse();
    assert.deepEqual(
      resolveConfig(base({ nodes })).nodes.map((n) => n.id),
      [1, 2, 3],
    );
  });

  test('TLS files and self-signed certificates pass through', () => {
    const tls = {
      raft: 'self-signed' as const,
      api: { certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem' },
    };
    assert.deepEqual(resolveConfig(base({ tls })).tls, tls);
  });

  test('a learner-only node other than node 1 is accepted', () => {
    assert.equal(resolveConfig(base({ nodeId: 3, learnerOnly: true })).learnerOnly, true);
  });
});

describe('resolveConfig validation: each message names its key', () => {
  test('a missing secret', () => {
    assertOneProblem(bad({ secretRaft: undefined }), 'secretRaft', /is required.*16 characters/);
    assertOneProblem(bad({ secretApi: '' }), 'secretApi', /is required/);
  });

  test('a secret under 16 characters, without echoing the secret', () => {
    const problems = problemsOf(bad({ secretApi: 'tooshort-secret' }));
    assert.deepEqual(problems, [{ key: 'secretApi', message: 'must have at least 16 characters, has 15' }]);
    try {
      resolveConfig(base({ secretApi: 'tooshort-secret' }));
    } catch (e) {
      assert.ok(!(e as Error).message.includes('tooshort-secret'));
    }
  });

  test('secret_api equal to secret_raft, without echoing the secret', () => {
    const problems = problemsOf(bad({ secretApi: SECRET_RAFT }));
    assert.deepEqual(
      problems.map((p) => p.key),
      ['secretApi'],
    );
    assert.match(problems[0]?.message ?? '', /must differ from secretRaft/);
    assert.ok(!JSON.stringify(problems).includes(SECRET_RAFT));
  });

  test('nodeId not in nodes', () => {
    assertOneProblem(
      bad({ nodeId: 7 }),
      'nodeId',
      /^7 is not the id of any entry in nodes \(ids: 1, 2, 3\)$/,
    );
  });

  test('nodeId not in nodes is reported with the problems of the list itself, at once', () => {
    const nodes = [...base().nodes.slice(0, 2), { id: 3, addrRaft: 'nowhere', addrApi: '127.0.0.3:8200' }];
    const problems = problemsOf(bad({ nodeId: 7, nodes }));
    assert.deepEqual(problems.map((p) => p.key).sort(), ['nodeId', 'nodes[2].addrRaft']);
    assert.match(
      problems.find((p) => p.key === 'nodeId')?.message ?? '',
      /^7 is not the id of any entry in nodes \(ids: 1, 2, 3\)$/,
    );
    // A list that is not one: nothing to check the id against, the list's problem alone.
    assertOneProblem(bad({ nodeId: 7, nodes: 'n1,n2' }), 'nodes', /must be a list of nodes/);
  });

  test('missing nodeId, non-integer nodeId', () => {
    assertOneProblem(bad({ nodeId: undefined }), 'nodeId', /is required/);
    assertOneProblem(bad({ nodeId: 1.5 }), 'nodeId', /must be an integer, got 1.5/);
    assertOneProblem(bad({ nodeId: 0 }), 'nodeId', /from 1 to 4294967295, got 0/);
  });

  test('duplicate ids', () => {
    const nodes = [...base().nodes, { id: 2, addrRaft: '127.0.0.4:8100', addrApi: '127.0.0.4:8200' }];
    assertOneProblem(bad({ nodes }), 'nodes[3].id', /duplicate id 2 \(also nodes\[1\]\.id\)/);
  });

  test('duplicate addresses, Raft and API alike', () => {
    const nodes = [
      { id: 1, addrRaft: '127.0.0.1:8100', addrApi: '127.0.0.1:8200' },
      { id: 2, addrRaft: 'LOCALHOST:9000', addrApi: '127.0.0.1:8100' },
      { id: 3, addrRaft: 'localhost:9000', addrApi: '127.0.0.1:8300' },
    ];
    const problems = problemsOf(bad({ nodes }));
    assert.deepEqual(problems, [
      { key: 'nodes[1].addrApi', message: 'address 127.0.0.1:8100 is also used by nodes[0].addrRaft' },
      { key: 'nodes[2].addrRaft', message: 'address localhost:9000 is also used by nodes[1].addrRaft' },
    ]);
  });

  test('bad address syntax', () => {
    const cases: Array<[string, RegExp]> = [
      ['127.0.0.1', /has no port/],
      ['127.0.0.1:0', /port 0, expected a number from 1 to 65535/],
      ['127.0.0.1:65536', /port 65536/],
      ['127.0.0.1:http', /port "http"/],
      ['::1:8100', /IPv6 address in brackets/],
      ['[::1]8100', /needs ":port"/],
      ['[nope]:8100', /not an IPv6 address/],
      ['300.1.1.1:8100', /not an IPv4 address/],
      ['bad_host-:8100', /not a valid host name/],
      [':8100', /empty host/],
      ['host name:1', /whitespace/],
    ];
    for (const [addr, re] of cases) {
      const nodes = [{ id: 1, addrRaft: addr, addrApi: '127.0.0.1:8200' }];
      assertOneProblem(bad({ nodes }), 'nodes[0].addrRaft', re);
    }
  });

  test('a listen address with a port', () => {
    assertOneProblem(bad({ listenAddrApi: '0.0.0.0:8200' }), 'listenAddrApi', /host without a port/);
  });

  test('heartbeat at or above half the election timeout', () => {
    assertOneProblem(
      bad({ heartbeatIntervalMs: 800, electionTimeoutMs: 1600 }),
      'heartbeatIntervalMs',
      /^800 must be less than half of electionTimeoutMs \(1600\)$/,
    );
  });

  test('a lock wait lease shorter than three election timeouts (waiters would lose their place at every leader change)', () => {
    assertOneProblem(
      bad({ cacheLockWaitLeaseMs: 4000 }),
      'cacheLockWaitLeaseMs',
      /^4000 must be at least three times electionTimeoutMs \(1500\): a waiter's renewals must outlast a leader election/,
    );
    assertOneProblem(
      bad({ cacheLockWaitLeaseMs: 100 }),
      'cacheLockWaitLeaseMs',
      /from 300 to 3600000, got 100/,
    );
    assert.equal(resolveConfig(base({ cacheLockWaitLeaseMs: 4500 })).cacheLockWaitLeaseMs, 4500);
    // Unset: the default, or three election timeouts when that is longer (a longer election
    // timeout alone is no error: found by CI, a test cluster with election_timeout_ms = 5000).
    assert.equal(resolveConfig(base()).cacheLockWaitLeaseMs, 10_000);
    assert.equal(resolveConfig(base({ electionTimeoutMs: 5000 })).cacheLockWaitLeaseMs, 15_000);
  });

  test('a session protection shorter than a write may be retried, or longer than a cache session lives', () => {
    // A write is retried until proposal_timeout_ms: its session must not be forgotten before.
    assertOneProblem(
      bad({ proposalTimeoutMs: 120_000, sessionProtectMs: 90_000 }),
      'sessionProtectMs',
      /^90000 must be at least proposalTimeoutMs \(120000\): a write retried until its deadline could find its session forgotten and be applied twice$/,
    );
    assertOneProblem(
      bad({ cacheSessionTtlMs: 60_000 }),
      'cacheSessionTtlMs',
      /^60000 must be at least sessionProtectMs \(300000\)/,
    );
    // Below what a remote client's default deadline (10 s) and the margin need (found from
    // outside: at 1,000 ms writes of the default client were applied twice after leader kills).
    assertOneProblem(bad({ sessionProtectMs: 1000 }), 'sessionProtectMs', /from 60000 to 3600000, got 1000/);
  });

  test("unset, the session protection covers the node's own write deadline and the margin", () => {
    // A configuration valid before the setting existed still starts.
    assert.equal(resolveConfig(base()).sessionProtectMs, 300_000);
    assert.equal(resolveConfig(base({ proposalTimeoutMs: 600_000 })).sessionProtectMs, 630_000);
    assert.equal(resolveConfig(base({ proposalTimeoutMs: 3_600_000 })).sessionProtectMs, 3_600_000);
  });

  test('intervals that are not whole ticks', () => {
    assertOneProblem(
      bad({ electionTimeoutMs: 1550 }),
      'electionTimeoutMs',
      /multiple of tickIntervalMs \(100\)/,
    );
  });

  test('non-positive and out-of-range limits', () => {
    assertOneProblem(bad({ inflightMessagesMax: 0 }), 'inflightMessagesMax', /from 1 to 65536, got 0/);
    assertOneProblem(bad({ uncommittedEntriesMax: -5 }), 'uncommittedEntriesMax', /from 1 to .*got -5/);
    assertOneProblem(bad({ frameBytesMax: 2 ** 40 }), 'frameBytesMax', /from 2097152 to 1073741824/);
  });

  test('limits that contradict each other', () => {
    assertOneProblem(bad({ entryBytesMax: 16 * 1024 * 1024 }), 'frameBytesMax', /at least entryBytesMax/);
    assertOneProblem(bad({ inflightBytesMax: 512 * 1024 }), 'inflightBytesMax', /at least appendBytesMax/);
    assertOneProblem(bad({ uncommittedBytesMax: 4096 }), 'uncommittedBytesMax', /at least entryBytesMax/);
    // Unauthenticated connections may not take every slot of a port.
    assertOneProblem(
      bad({ unauthenticatedConnectionsMax: 64, apiConnectionsMax: 64 }),
      'apiConnectionsMax',
      /more than unauthenticatedConnectionsMax \(64\)/,
    );
    // Three nodes: two connections from each of the other two, plus the unauthenticated ones.
    assertOneProblem(
      bad({ unauthenticatedConnectionsMax: 10, raftConnectionsMax: 13 }),
      'raftConnectionsMax',
      /at least 14: two connections from each of the 2 other nodes/,
    );
    const ok = resolveConfig(base({ unauthenticatedConnectionsMax: 10, raftConnectionsMax: 14 }));
    assert.equal(ok.raftConnectionsMax, 14);
  });

  test('unknown keys, with a suggestion when one is close', () => {
    assertOneProblem(
      bad({ secretAPI: 'x'.repeat(20) }),
      'secretAPI',
      /unknown key \(did you mean secretApi\?\)/,
    );
    assertOneProblem(bad({ colour: 'blue' }), 'colour', /^unknown key$/);
    const nodes = [{ id: 1, addrRaft: '127.0.0.1:8100', addrApi: '127.0.0.1:8200', port: 1 }];
    assertOneProblem(bad({ nodes }), 'nodes[0].port', /unknown key/);
    assertOneProblem(bad({ tls: { rafts: 'self-signed' } }), 'tls.rafts', /did you mean tls.raft/);
  });

  test("nodes in the Rust project's string form, as in TOML, or mixed with entries", () => {
    const c = resolveConfig(
      base({
        nodeId: 2,
        nodes: [
          '1 127.0.0.1:8100 127.0.0.1:8200',
          { id: 2, addrRaft: '127.0.0.1:8101', addrApi: '127.0.0.1:8201' },
          ' 3   127.0.0.1:8102 127.0.0.1:8202 ',
        ],
      }),
    );
    assert.deepEqual(
      c.nodes.map((n) => [n.id, n.addrRaft, n.addrApi]),
      [
        [1, '127.0.0.1:8100', '127.0.0.1:8200'],
        [2, '127.0.0.1:8101', '127.0.0.1:8201'],
        [3, '127.0.0.1:8102', '127.0.0.1:8202'],
      ],
    );
    assert.equal(c.self.addrApi, '127.0.0.1:8201');
    // A node id the strings do not list is named with the ids they do.
    assertOneProblem(bad({ nodeId: 5, nodes: ['1 127.0.0.1:8100 127.0.0.1:8200'] }), 'nodeId', /ids: 1\)/);
  });

  test('wrong types', () => {
    assertOneProblem(bad({ nodeId: '1' }), 'nodeId', /must be an integer, got "1"/);
    assertOneProblem(bad({ nodes: 'all' }), 'nodes', /must be a list/);
    assertOneProblem(bad({ nodes: [] }), 'nodes', /at least one node/);
    assertOneProblem(
      bad({ nodes: [7] }),
      'nodes[0]',
      /must be an object .* or a "<id> <raft host:port> <api host:port>" string, got 7/,
    );
    assertOneProblem(bad({ nodes: ['1 127.0.0.1:8100'] }), 'nodes[0]', /^"1 127.0.0.1:8100": expected "<id>/);
    assertOneProblem(bad({ secretRaft: 1234567890123456 }), 'secretRaft', /must be a string, got number/);
    assertOneProblem(bad({ learnerOnly: 'yes' }), 'learnerOnly', /true or false, got "yes"/);
    assertOneProblem(bad({ logStatements: 1 }), 'logStatements', /true or false/);
    assertOneProblem(bad({ dataDir: 42 }), 'dataDir', /must be a directory path/);
    assertOneProblem(bad({ dataDir: undefined }), 'dataDir', /is required/);
    assertOneProblem(bad({ filenameDb: 'db/x.db' }), 'filenameDb', /plain file name/);
    assertOneProblem(bad({ tickIntervalMs: '100' }), 'tickIntervalMs', /must be an integer, got "100"/);
    assertOneProblem(bad({ tls: { raft: 'auto' } }), 'tls.raft', /"self-signed" or \{ certFile/);
    assertOneProblem(
      bad({ tls: { api: { certFile: 'c.pem' } } }),
      'tls.api.keyFile',
      /is required: TLS needs/,
    );
    assert.equal(problemsOf(() => resolveConfig(null as unknown as NodeConfig))[0]?.key, 'config');
  });

  test('the cluster needs node 1, and node 1 cannot be a learner', () => {
    const nodes = [{ id: 2, addrRaft: '127.0.0.2:8100', addrApi: '127.0.0.2:8200' }];
    assertOneProblem(bad({ nodeId: 2, nodes }), 'nodes', /must contain the node with id 1/);
    assertOneProblem(bad({ learnerOnly: true }), 'learnerOnly', /cannot be set on node 1/);
  });

  test('every problem is reported at once, not only the first', () => {
    const problems = problemsOf(
      bad({ secretRaft: 'short', secretApi: undefined, nodeId: 9, heartbeatIntervalMs: 900, extra: 1 }),
    );
    assert.deepEqual(problems.map((p) => p.key).sort(), [
      'extra',
      'heartbeatIntervalMs',
      'nodeId',
      'secretApi',
      'secretRaft',
    ]);
  });
});

describe('parseTomlConfig', () => {
  test('reads table [hiqlite] with the Rust project’s keys', () => {
    const toml = `${BASE_TOML}
filename_db = "app.db"
listen_addr_raft = "0.0.0.0"
learner_only = false
log_statements = false
logs_until_snapshot = 5_000
heartbeat_interval_ms = 200
election_timeout_ms = 1000
tls_raft_cert = "raft.crt"
tls_raft_key = "raft.key"
tls_raft_ca = "ca.crt"
tls_auto_certificates = true
`;
    const { config, warnings } = parseTomlConfig(toml, {});
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
      ...base(),
      filenameDb: 'app.db',
      listenAddrRaft: '0.0.0.0',
      learnerOnly: false,
      logStatements: false,
      logsUntilSnapshot: 5000,
      heartbeatIntervalMs: 200,
      electionTimeoutMs: 1000,
      // Files win over tls_auto_certificates on the side that has them.
      tls: { raft: { certFile: 'raft.crt', keyFile: 'raft.key', caFile: 'ca.crt' }, api: 'self-signed' },
    });
    const resolved = resolveConfig(config);
    assert.deepEqual(resolved.listenRaft, { host: '0.0.0.0', port: 8100 });
    assert.equal(resolved.electionTimeoutTicks, 10);
  });

  test('keys of other tables are not ours to check; a custom table name is supported', () => {
    const toml = `[app]\nanything = 1\n${BASE_TOML.replace('[hiqlite]', '[db]')}`;
    assert.equal(parseTomlConfig(toml, {}, { table: 'db' }).config.nodeId, 1);
  });

  test('unknown keys are errors naming the TOML key; Rust-only keys are warnings', () => {
    const problems = problemsOf(() => parseTomlConfig(`${BASE_TOML}\nsecret_apy = "x"\nfoo = 1\n`, {}));
    assert.deepEqual(problems, [
      { key: 'secret_apy', message: 'unknown key in [hiqlite] (did you mean secret_api?)' },
      { key: 'foo', message: 'unknown key in [hiqlite]' },
    ]);
    const { warnings } = parseTomlConfig(`${BASE_TOML}\nwal_size = 5\nrate_limit_db_rps = 5\n`, {});
    assert.deepEqual(warnings, [
      'wal_size: a hiqlite (Rust) setting this version does not support; ignored',
      'rate_limit_db_rps: a hiqlite (Rust) setting this version does not support; ignored',
    ]);
  });

  test('every Rust-only key is accepted with exactly one warning', () => {
    const lines = RUST_ONLY_KEYS.map((k) => `${k} = "x"`).join('\n');
    assert.equal(parseTomlConfig(`${BASE_TOML}\n${lines}\n`, {}).warnings.length, RUST_ONLY_KEYS.length);
  });

  test('validation messages use TOML names, and node entries their index in the list', () => {
    const toml = `
[hiqlite]
node_id = "one"
nodes = ["1 127.0.0.1:8100 127.0.0.1:8200", "2 localhost", "3 127.0.0.3:8100 [::1]8200", 4]
data_dir = "data"
secret_raft = "short"
secret_api = "${SECRET_API}"
heartbeat_interval_ms = 1000
tls_api_key = "api.key"
entry_bytes_max = 0
`;
    assert.deepEqual(
      problemsOf(() => parseTomlConfig(toml, {})),
      [
        {
          key: 'nodes[1]',
          message:
            '"2 localhost": expected "<id> <raft host:port> <api host:port>", like "1 127.0.0.1:8100 127.0.0.1:8200"',
        },
        {
          key: 'nodes[3]',
          message:
            '4: must be a "<id> <raft host:port> <api host:port>" string or a { id, addr_raft, addr_api } table',
        },
        { key: 'node_id', message: 'must be an integer, got "one"' },
        {
          key: 'nodes[2] api address',
          message: '"[::1]8200" needs ":port" after the bracketed IPv6 address',
        },
        { key: 'secret_raft', message: 'must have at least 16 characters, has 5' },
        { key: 'tls_api_cert', message: 'is required: TLS needs both tls_api_cert and tls_api_key' },
        { key: 'entry_bytes_max', message: 'must be an integer from 1024 to 33554432, got 0' },
        {
          key: 'heartbeat_interval_ms',
          message: '1000 must be less than half of election_timeout_ms (1500)',
        },
      ],
    );
  });

  test('node entries as inline tables ({ id, addr_raft, addr_api }), the shape of start()', () => {
    const tables = BASE_TOML.replace(
      /nodes = \[[^\]]*\]/s,
      `nodes = [
  { id = 1, addr_raft = "127.0.0.1:8100", addr_api = "127.0.0.1:8200" },
  "2 127.0.0.2:8100 127.0.0.2:8200",
  { id = 3, addr_raft = "127.0.0.3:8100", addr_api = "127.0.0.3:8200" },
]`,
    );
    assert.notEqual(tables, BASE_TOML);
    assert.deepEqual(parseTomlConfig(tables, {}).config.nodes, parseTomlConfig(BASE_TOML, {}).config.nodes);
    const wrong = BASE_TOML.replace(
      /nodes = \[[^\]]*\]/s,
      `nodes = [
  { id = 1, addr_raft = "127.0.0.1:8100", addr_api = "127.0.0.1:8200" },
  { id = 2, raft = "127.0.0.2:8100", addr_api = "127.0.0.2:8200" },
  { id = "three", addr_raft = "127.0.0.3:8100", addr_api = "127.0.0.3:8200" },
  { id = 4, addr_raft = "127.0.0.4:8100" },
  { id = 5, addr_raft = "127.0.0.5", addr_api = "127.0.0.5:8200" },
]`,
    );
    const form = 'a node table takes { id = <id>, addr_raft = "<host:port>", addr_api = "<host:port>" }';
    assert.deepEqual(
      problemsOf(() => parseTomlConfig(wrong, {})),
      [
        { key: 'nodes[1]', message: `a table: has "raft": ${form}` },
        { key: 'nodes[2]', message: 'a table: has id "three", expected a positive integer' },
        { key: 'nodes[3]', message: `a table: lacks addr_api: ${form}` },
        // The addresses of a table are checked as a string's are.
        { key: 'nodes[4] raft address', message: '"127.0.0.5" has no port (expected "host:port")' },
      ],
    );
  });

  test('node_id not in nodes, duplicate ids and addresses, in TOML names', () => {
    const toml = BASE_TOML.replace('node_id = 1', 'node_id = 5');
    assertOneProblem(() => parseTomlConfig(toml, {}), 'node_id', /^5 is not the id of any entry in nodes/);
    const dup = BASE_TOML.replace('"3 127.0.0.3:8100 127.0.0.3:8200"', '"2 127.0.0.3:8100 127.0.0.1:8200"');
    assert.deepEqual(
      problemsOf(() => parseTomlConfig(dup, {})),
      [
        { key: 'nodes[2] id', message: 'duplicate id 2 (also nodes[1] id)' },
        {
          key: 'nodes[2] api address',
          message: 'address 127.0.0.1:8200 is also used by nodes[0] api address',
        },
      ],
    );
  });

  test('a syntax error names the file, line and column', () => {
    assertOneProblem(
      () => parseTomlConfig('[hiqlite]\nnode_id = = 1\n', {}, { source: 'hiqlite.toml' }),
      'hiqlite.toml',
      /^syntax error at line 2, column \d+: /,
    );
  });

  test('a missing [hiqlite] table', () => {
    assertOneProblem(() => parseTomlConfig('[other]\nx = 1\n', {}), '[hiqlite]', /is missing/);
    assertOneProblem(() => parseTomlConfig('hiqlite = 1\n', {}), '[hiqlite]', /must be a table/);
  });
});

describe('environment overrides', () => {
  test('HQL_<KEY> wins over the file, for every kind of value', () => {
    const env = {
      HQL_NODE_ID: '2',
      HQL_SECRET_API: 'from-the-environment!',
      HQL_LEARNER_ONLY: 'TRUE',
      HQL_LOGS_UNTIL_SNAPSHOT: '777',
      HQL_LISTEN_ADDR_API: '::',
    };
    const { config } = parseTomlConfig(`${BASE_TOML}\nlearner_only = false\nlogs_until_snapshot = 5\n`, env);
    assert.equal(config.nodeId, 2);
    assert.equal(config.secretApi, 'from-the-environment!');
    assert.equal(config.learnerOnly, true);
    assert.equal(config.logsUntilSnapshot, 777);
    assert.equal(config.listenAddrApi, '::');
    assert.equal(config.secretRaft, SECRET_RAFT, 'keys without a variable keep the file’s value');
  });

  test('an empty variable counts as unset', () => {
    assert.equal(parseTomlConfig(BASE_TOML, { HQL_SECRET_RAFT: '', HQL_NODE_ID: '' }).config.nodeId, 1);
  });

  test('every supported key has a variable that overrides it', () => {
    for (const spec of TOML_KEYS.filter((k) => k.kind === 'integer' || k.kind === 'boolean')) {
      const name = `HQL_${spec.toml.toUpperCase()}`;
      const problems = problemsOf(() => parseTomlConfig(BASE_TOML, { [name]: 'neither' }));
      assert.equal(problems[0]?.key, `${spec.toml} (from ${name})`);
    }
    const env: Record<string, string> = {
      HQL_NODES: '1 10.0.0.9:1 10.0.0.9:2',
      HQL_DATA_DIR: 'elsewhere',
      HQL_SECRET_RAFT: 'r'.repeat(20),
      HQL_SECRET_API: 'a'.repeat(20),
      HQL_FILENAME_DB: 'other.db',
      HQL_LISTEN_ADDR_RAFT: '10.0.0.1',
      HQL_LISTEN_ADDR_API: '10.0.0.2',
      HQL_TLS_RAFT_CERT: 'rc',
      HQL_TLS_RAFT_KEY: 'rk',
      HQL_TLS_RAFT_CA: 'ra',
      HQL_TLS_API_CERT: 'ac',
      HQL_TLS_API_KEY: 'ak',
      HQL_TLS_API_CA: 'aa',
      HQL_BACKUP_CRON: '0 0 3 * * *',
      HQL_ENC_KEYS: `k1/${KEY_B64}\nk2/${KEY_B64}`,
      HQL_ENC_KEY_ACTIVE: 'k2',
      HQL_S3_URL: 'http://127.0.0.1:9000',
      HQL_S3_BUCKET: 'bkt',
      HQL_S3_REGION: 'r',
      HQL_S3_KEY: 'k',
      HQL_S3_SECRET: 's',
      HQL_S3_PREFIX: 'cluster-a/',
      HQL_PASSWORD_DASHBOARD: DASHBOARD_PHC,
    };
    for (const spec of TOML_KEYS.filter(
      (k) => k.kind === 'string' || k.kind === 'strings' || k.kind === 'nodes',
    )) {
      assert.ok(`HQL_${spec.toml.toUpperCase()}` in env, `${spec.toml} covered`);
    }
    const { config, warnings } = parseTomlConfig(BASE_TOML, env);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
      nodeId: 1,
      nodes: [{ id: 1, addrRaft: '10.0.0.9:1', addrApi: '10.0.0.9:2' }],
      dataDir: 'elsewhere',
      secretRaft: 'r'.repeat(20),
      secretApi: 'a'.repeat(20),
      filenameDb: 'other.db',
      listenAddrRaft: '10.0.0.1',
      listenAddrApi: '10.0.0.2',
      tls: {
        raft: { certFile: 'rc', keyFile: 'rk', caFile: 'ra' },
        api: { certFile: 'ac', keyFile: 'ak', caFile: 'aa' },
      },
      backupCron: '0 0 3 * * *',
      encKeys: [`k1/${KEY_B64}`, `k2/${KEY_B64}`],
      encKeyActive: 'k2',
      s3Url: 'http://127.0.0.1:9000',
      s3Bucket: 'bkt',
      s3Region: 'r',
      s3Key: 'k',
      s3Secret: 's',
      s3Prefix: 'cluster-a/',
      passwordDashboard: DASHBOARD_PHC,
    });
  });

  test('HQL_NODES takes newline- or comma-separated entries', () => {
    const entries = ['1 10.0.0.1:8100 10.0.0.1:8200', '2 10.0.0.2:8100 10.0.0.2:8200'];
    for (const separator of ['\n', ',', ' ,\n ']) {
      const { config } = parseTomlConfig(BASE_TOML, { HQL_NODES: `${entries.join(separator)}\n` });
      assert.deepEqual(
        config.nodes.map((n) => (n as NodeEntry).addrRaft),
        ['10.0.0.1:8100', '10.0.0.2:8100'],
      );
    }
  });

  test('a value from a variable is named by its variable in messages', () => {
    assert.deepEqual(
      problemsOf(() =>
        parseTomlConfig(BASE_TOML, {
          HQL_SECRET_RAFT: 'short',
          HQL_NODE_ID: 'x',
          HQL_LOG_STATEMENTS: 'yes',
          HQL_NODES: '1 127.0.0.1:8100 127.0.0.1:99999',
        }),
      ),
      [
        { key: 'node_id (from HQL_NODE_ID)', message: 'expected an integer, got "x"' },
        { key: 'log_statements (from HQL_LOG_STATEMENTS)', message: 'expected true or false, got "yes"' },
        {
          key: 'nodes[0] api address (from HQL_NODES)',
          message: '"127.0.0.1:99999" has port 99999, expected a number from 1 to 65535',
        },
        { key: 'secret_raft (from HQL_SECRET_RAFT)', message: 'must have at least 16 characters, has 5' },
      ],
    );
  });

  test('a variable with more digits than an integer holds names the range, not "expected an integer"', () => {
    // Found from outside: HQL_SESSION_PROTECT_MS=99999999999999999999 said "expected an integer".
    const problems = problemsOf(() =>
      parseTomlConfig(BASE_TOML, { HQL_SESSION_PROTECT_MS: '99999999999999999999' }),
    );
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(
      problems[0]?.message ?? '',
      /must be an integer from 60000 to 3600000, got 100000000000000000000/,
    );
  });

  test('an HQL_NODES entry that does not parse is its only problem (not also "no node")', () => {
    assert.deepEqual(
      problemsOf(() => parseTomlConfig(BASE_TOML, { HQL_NODES: '1 127.0.0.1:1' })),
      [
        {
          key: 'nodes[0] (from HQL_NODES)',
          message:
            '"1 127.0.0.1:1": expected "<id> <raft host:port> <api host:port>", like "1 127.0.0.1:8100 127.0.0.1:8200"',
        },
      ],
    );
  });

  test('a variable that does not parse is reported once, even for a key the file lacks', () => {
    const toml = BASE_TOML.replace('node_id = 1', '').replace(/nodes = \[[^\]]*\]/, 'nodes = "1 a:1 a:2"');
    assert.deepEqual(
      problemsOf(() => parseTomlConfig(toml, { HQL_NODE_ID: 'first' })),
      [
        { key: 'node_id (from HQL_NODE_ID)', message: 'expected an integer, got "first"' },
        {
          key: 'nodes',
          message:
            'must be a list of "<id> <raft host:port> <api host:port>" strings (or { id, addr_raft, addr_api } tables), got "1 a:1 a:2"',
        },
      ],
    );
  });

  test('HQL_TLS_AUTO_CERTS, the Rust project’s name, enables self-signed certificates', () => {
    const { config } = parseTomlConfig(BASE_TOML, { HQL_TLS_AUTO_CERTS: 'true' });
    assert.deepEqual(config.tls, { raft: 'self-signed', api: 'self-signed' });
    const canonical = parseTomlConfig(BASE_TOML, {
      HQL_TLS_AUTO_CERTS: 'true',
      HQL_TLS_AUTO_CERTIFICATES: 'false',
    });
    assert.equal(canonical.config.tls, undefined, 'HQL_TLS_AUTO_CERTIFICATES is read first');
  });

  test('unsupported Rust variables and unknown HQL_ variables are warnings', () => {
    const { warnings } = parseTomlConfig(BASE_TOML, {
      HQL_BACKUP_SKIP_VALIDATION: 'true',
      HQL_SECRET_APII: 'x',
      PATH: '/bin',
    });
    assert.deepEqual(warnings, [
      'HQL_BACKUP_SKIP_VALIDATION: a hiqlite (Rust) setting this version does not support; ignored',
      'HQL_SECRET_APII: not a hiqlite setting; ignored (did you mean HQL_SECRET_API?)',
    ]);
  });

  test('log_statements = true loads with a warning', () => {
    const { warnings } = parseTomlConfig(BASE_TOML, { HQL_LOG_STATEMENTS: 'true' });
    assert.match(warnings[0] ?? '', /^log_statements \(from HQL_LOG_STATEMENTS\): SQL statements are logged/);
  });

  test('loadEnvConfig reads variables only and names them in messages', () => {
    const env = {
      HQL_NODE_ID: '1',
      HQL_NODES: '1 127.0.0.1:8100 127.0.0.1:8200',
      HQL_DATA_DIR: 'data',
      HQL_SECRET_RAFT: SECRET_RAFT,
    };
    const problems = problemsOf(() => loadEnvConfig(env));
    assert.deepEqual(
      problems.map((p) => p.key),
      ['HQL_SECRET_API'],
    );
    assert.equal(loadEnvConfig({ ...env, HQL_SECRET_API: SECRET_API }).config.secretApi, SECRET_API);
  });
});

describe('files: loadTomlConfig, generateConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hiqlite-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('loadTomlConfig reads a file and hands warnings to onWarning', () => {
    const path = join(dir, 'single.toml');
    writeFileSync(path, `${BASE_TOML}\nsecrets_file = "x"\n`);
    const warnings: string[] = [];
    const config = loadTomlConfig(path, {}, { onWarning: (m) => warnings.push(m) });
    assert.equal(resolveConfig(config).self.id, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /^secrets_file: /);
  });

  test('a config file that is not UTF-8 is refused (a Latin-1 secret was read with U+FFFD in it)', () => {
    const path = join(dir, 'latin1.toml');
    const secret = 'api-secret-with-umlaut-ä-0123';
    writeFileSync(
      path,
      Buffer.from(BASE_TOML.replace(/secret_api = "[^"]*"/, `secret_api = "${secret}"`), 'latin1'),
    );
    assertOneProblem(() => readTomlConfig(path, {}), path, /is not UTF-8 text, as TOML requires/);
    writeFileSync(path, BASE_TOML.replace(/secret_api = "[^"]*"/, `secret_api = "${secret}"`));
    assert.equal(
      resolveConfig(readTomlConfig(path, {}).config).secretApi,
      secret,
      'as UTF-8 it reads as written',
    );
  });

  test('problems of a file name the file', () => {
    const path = join(dir, 'broken.toml');
    writeFileSync(path, BASE_TOML.replace('node_id = 1', 'node_id = 4'));
    assert.throws(
      () => readTomlConfig(path, {}),
      (e: Error) => e.message.startsWith(`invalid configuration in ${path}`),
    );
    assertOneProblem(
      () => readTomlConfig(join(dir, 'absent.toml'), {}),
      join(dir, 'absent.toml'),
      /cannot read/,
    );
  });

  test('generated configs load and resolve on every node: same secrets, distinct ports, own data dir', () => {
    const out = join(dir, 'cluster');
    const generated = generateConfig({ nodes: 3, dir: out });
    writeGeneratedConfig(generated);
    assert.match(generated.secretRaft, /^[A-Za-z0-9]{32}$/);
    assert.match(generated.secretApi, /^[A-Za-z0-9]{32}$/);
    assert.notEqual(generated.secretRaft, generated.secretApi);
    const resolved = generated.files.map((f) => {
      assert.equal(f.path, join(out, `node-${f.nodeId}.toml`));
      assert.equal(statSync(f.path).mode & 0o777, 0o600);
      const { config, warnings } = readTomlConfig(f.path, {});
      assert.deepEqual(warnings, []);
      return resolveConfig(config);
    });
    assert.deepEqual(
      resolved.map((c) => c.nodeId),
      [1, 2, 3],
    );
    assert.deepEqual(
      resolved.map((c) => c.listenRaft.port),
      [8100, 8101, 8102],
    );
    assert.deepEqual(
      resolved.map((c) => c.listenApi.port),
      [8200, 8201, 8202],
    );
    assert.equal(new Set(resolved.map((c) => c.dataDir)).size, 3);
    for (const c of resolved) {
      assert.equal(c.secretRaft, generated.secretRaft);
      assert.equal(c.secretApi, generated.secretApi);
      assert.deepEqual(c.nodes, resolved[0]?.nodes);
      assert.equal(c.listenRaft.host, '127.0.0.1');
      assert.ok(c.dataDir?.startsWith(out));
    }
  });

  test('a second write keeps the existing files unless told to overwrite', () => {
    const out = join(dir, 'again');
    writeGeneratedConfig(generateConfig({ nodes: 1, dir: out }));
    const before = readFileSync(join(out, 'node-1.toml'), 'utf8');
    const second = generateConfig({ nodes: 1, dir: out });
    assert.throws(() => writeGeneratedConfig(second), /EEXIST/);
    assert.equal(readFileSync(join(out, 'node-1.toml'), 'utf8'), before);
    writeGeneratedConfig(second, { overwrite: true });
    assert.equal(readFileSync(join(out, 'node-1.toml'), 'utf8'), second.files[0]?.toml);
  });

  test('custom base ports and IPv6 hosts', () => {
    const g = generateConfig({ nodes: 2, dir: 'x', basePortRaft: 9000, basePortApi: 9500, host: '::1' });
    const c = resolveConfig(parseTomlConfig(g.files[1]?.toml ?? '', {}).config);
    assert.deepEqual(c.listenRaft, { host: '::1', port: 9001 });
    assert.equal(c.self.addrApi, '[::1]:9501');
  });

  test('generator options are validated', () => {
    assert.deepEqual(
      problemsOf(() => generateConfig({ nodes: 0, dir: '' })).map((p) => p.key),
      ['nodes', 'dir'],
    );
    assertOneProblem(
      () => generateConfig({ nodes: 3, dir: 'x', basePortRaft: 8100, basePortApi: 8102 }),
      'basePortApi',
      /overlap/,
    );
    assertOneProblem(
      () => generateConfig({ nodes: 3, dir: 'x', basePortRaft: 65534 }),
      'basePortRaft',
      /65533/,
    );
  });
});

describe('docs/CONFIGURATION.md', () => {
  test('documents every key, its TOML name and its variable', () => {
    const doc = readFileSync(new URL('../../docs/CONFIGURATION.md', import.meta.url), 'utf8');
    for (const spec of TOML_KEYS) {
      assert.ok(doc.includes(`\`${spec.toml}\``), `${spec.toml} documented`);
      assert.ok(
        doc.includes(`\`HQL_${spec.toml.toUpperCase()}\``),
        `HQL_${spec.toml.toUpperCase()} documented`,
      );
    }
    for (const s of INTEGER_SETTINGS) assert.ok(doc.includes(`\`${s.key}\``), `${s.key} documented`);
    for (const key of RUST_ONLY_KEYS) assert.ok(doc.includes(`\`${key}\``), `${key} listed as unsupported`);
  });
});
