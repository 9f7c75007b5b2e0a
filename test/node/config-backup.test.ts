/**
 * The backup keys of the configuration: defaults, the key list and active key as in the Rust
 * project, the S3 keys all or none, a cron pattern croner accepts; no message shows a key or
 * the S3 secret.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConfigError,
  type NodeConfig,
  parseTomlConfig,
  resolveConfig,
} from '../../src/node/config/config.js';

const KEY = Buffer.alloc(32, 9).toString('base64');
const S3 = {
  s3Url: 'http://127.0.0.1:9000',
  s3Bucket: 'bkt',
  s3Region: 'r',
  s3Key: 'id',
  s3Secret: 'very-secret-value',
};

function config(o: Partial<NodeConfig> = {}): NodeConfig {
  return {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: '127.0.0.1:8100', addrApi: '127.0.0.1:8200' }],
    dataDir: 'data',
    secretRaft: 'raft-secret-0123456789',
    secretApi: 'api-secret-0123456789',
    ...o,
  };
}

function problems(o: Partial<NodeConfig>): Array<[string, string]> {
  try {
    resolveConfig(config(o));
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.ok(!e.message.includes(KEY) && !e.message.includes('very-secret-value'), 'no secret in messages');
    return e.problems.map((p) => [p.key, p.message]);
  }
  return assert.fail('expected a ConfigError');
}

describe('backup configuration', () => {
  test('defaults: nightly at 02:30, 30 days, no keys, no S3, backups under state_machine', () => {
    const c = resolveConfig(config());
    assert.equal(c.backup.cron, '0 30 2 * * *');
    assert.equal(c.backupKeepDays, 30);
    assert.equal(c.backupKeepDaysLocal, 30);
    assert.equal(c.backup.encKeys.size, 0);
    assert.equal(c.backup.encKeyActive, null);
    assert.equal(c.backup.s3, null);
    assert.match(c.paths?.backupsDir ?? '', /state_machine[/\\]backups$/);
  });

  test('keys and S3 resolve; the path style defaults to true; the Rust 7-field cron is accepted', () => {
    const c = resolveConfig(
      config({
        encKeys: [`a1/${KEY}`, `b2/${KEY}`],
        encKeyActive: 'b2',
        backupCron: '0 30 2 * * * *',
        ...S3,
      }),
    );
    assert.deepEqual([...c.backup.encKeys.keys()], ['a1', 'b2']);
    assert.equal(c.backup.encKeys.get('a1')?.length, 32);
    assert.equal(c.backup.encKeyActive, 'b2');
    assert.deepEqual(c.backup.s3, {
      url: 'http://127.0.0.1:9000',
      bucket: 'bkt',
      region: 'r',
      pathStyle: true,
      key: 'id',
      secret: 'very-secret-value',
      requestTimeoutMs: 60_000,
      retryDeadlineMs: 300_000,
      prefix: '',
    });
  });

  test('bad keys, a missing or unknown active key, a bad cron are reported by key', () => {
    assert.deepEqual(problems({ encKeys: [`x/${KEY}`, 'a1/short', 'nokey'], encKeyActive: 'a1' }), [
      ['encKeys[0]', 'key id "x" must be 2 to 20 letters and digits'],
      ['encKeys[1]', "key 'a1' must be the base64 of 32 random bytes"],
      ['encKeys[2]', 'must be "<id>/<base64 of 32 bytes>"'],
    ]);
    assert.deepEqual(problems({ encKeys: [`a1/${KEY}`] }), [
      ['encKeyActive', 'is required with encKeys: the id of the key new backups use'],
    ]);
    assert.deepEqual(problems({ encKeys: [`a1/${KEY}`], encKeyActive: 'zz' }), [
      ['encKeyActive', "'zz' is not an id of encKeys (ids: a1)"],
    ]);
    assert.equal(problems({ backupCron: 'every night' })[0]?.[0], 'backupCron');
  });

  test('S3 keys: all with s3Url, none without; S3 needs encryption keys', () => {
    const { s3Secret: _, ...withoutSecret } = S3;
    assert.deepEqual(problems({ ...withoutSecret, encKeys: [`a1/${KEY}`], encKeyActive: 'a1' }), [
      ['s3Secret', 'is required with s3Url: a non-empty string'],
    ]);
    assert.deepEqual(problems({ s3Bucket: 'b' }), [
      ['s3Bucket', 'is set but s3Url is not: set it too, or remove this'],
    ]);
    assert.deepEqual(problems(S3), [
      ['encKeys', 'is required with s3Url: backups are encrypted before upload'],
    ]);
  });

  test('virtual-hosted S3 with an IP address in s3_url is refused, naming s3PathStyle', () => {
    // The bucket cannot be a subdomain of an IP address: requests went out without it (found
    // from outside: a listing of `/`, a backup PUT as a bucket of its own).
    const keys = { encKeys: [`a1/${KEY}`], encKeyActive: 'a1' };
    for (const url of ['http://127.0.0.1:9000', 'http://[::1]:9000']) {
      const p = problems({ ...S3, ...keys, s3Url: url, s3PathStyle: false });
      assert.equal(p.length, 1, JSON.stringify(p));
      assert.equal(p[0]?.[0], 's3PathStyle');
      assert.match(p[0]?.[1] ?? '', /cannot be used with an IP address/);
    }
    assert.equal(
      resolveConfig(config({ ...S3, ...keys, s3Url: 'https://s3.example.com', s3PathStyle: false })).backup.s3
        ?.pathStyle,
      false,
    );
  });

  test('s3_prefix: a folder of the bucket, checked', () => {
    const keys = { encKeys: [`a1/${KEY}`], encKeyActive: 'a1' };
    assert.equal(
      resolveConfig(config({ ...S3, ...keys, s3Prefix: 'prod/cluster-a/' })).backup.s3?.prefix,
      'prod/cluster-a/',
    );
    for (const bad of ['cluster-a', '/abs/', '../up/', 'a//b/', 'sp ace/', 'x'.repeat(300) + '/']) {
      const p = problems({ ...S3, ...keys, s3Prefix: bad });
      assert.deepEqual(
        p.map(([k]) => k),
        ['s3Prefix'],
        bad,
      );
    }
    assert.deepEqual(problems({ s3Prefix: 'a/' }), [
      ['s3Prefix', 'is set but s3Url is not: set it too, or remove this'],
    ]);
  });

  test('TOML and variables, with the Rust names ENC_KEYS and ENC_KEY_ACTIVE', () => {
    const toml = `[hiqlite]
node_id = 1
nodes = ["1 127.0.0.1:8100 127.0.0.1:8200"]
data_dir = "data"
secret_raft = "raft-secret-0123456789"
secret_api = "api-secret-0123456789"
backup_keep_days_local = 3
backup_gzip_level = 0
s3_url = "http://s3.test:9000"
s3_bucket = "bkt"
s3_region = "r"
s3_path_style = false
s3_key = "id"
s3_secret = "s"
`;
    const { config: c, warnings } = parseTomlConfig(toml, {
      ENC_KEYS: `a1/${KEY}\nb2/${KEY}`,
      ENC_KEY_ACTIVE: 'a1',
    });
    assert.deepEqual(warnings, []);
    const r = resolveConfig(c);
    assert.equal(r.backupKeepDaysLocal, 3);
    assert.equal(r.backupGzipLevel, 0);
    const env = { ENC_KEYS: `a1/${KEY}`, ENC_KEY_ACTIVE: 'a1' };
    const level = (t: string) => resolveConfig(parseTomlConfig(t, env).config).backupGzipLevel;
    assert.equal(level(toml.replace('backup_gzip_level = 0\n', '')), 1, 'the default');
    assert.throws(
      () => level(toml.replace('backup_gzip_level = 0', 'backup_gzip_level = 10')),
      /backup_gzip_level/,
    );
    assert.equal(r.backup.s3?.pathStyle, false);
    assert.equal(r.backup.encKeyActive, 'a1');
    assert.deepEqual([...r.backup.encKeys.keys()], ['a1', 'b2']);
  });
});
