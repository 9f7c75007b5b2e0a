/**
 * The backup keys of a configuration written carelessly: a key pasted without its id, a key (or a
 * whole entry) in `enc_key_active`, credentials in `s3_url`. Each is refused naming its TOML key,
 * and no message (they end up in logs) holds key material or the S3 secret.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveS3Options } from '../../src/backup/s3/s3-options.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { ConfigError, parseTomlConfig } from '../../src/node/config/config.js';

/** The base64 of 32 bytes whose first '/' comes after 9 letters and digits (as about half of real keys have one). */
const KEY = `Xk3j9dAqq/${'Zq'.repeat(16)}Z=`;
const S3_SECRET = 'S3cretValueThatMustNotLeak';

const BASE = `[hiqlite]
node_id = 1
nodes = ["1 127.0.0.1:8100 127.0.0.1:8200"]
data_dir = "data"
secret_raft = "raft-secret-0123456789"
secret_api = "api-secret-0123456789"
`;

function problemsOf(toml: string, env: Record<string, string> = {}): Array<[string, string]> {
  try {
    parseTomlConfig(`${BASE}${toml}\n`, env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.map((p) => [p.key, p.message]);
  }
  return assert.fail('expected a ConfigError');
}

/** No run of 6 characters of `secret` appears in `text`. */
function leaksNothingOf(text: string, secret: string): void {
  for (let i = 0; i + 6 <= secret.length; i++) {
    const part = secret.slice(i, i + 6);
    assert.ok(!text.includes(part), `the message holds '${part}' of the secret: ${text}`);
  }
}

describe('backup keys written carelessly', () => {
  test('assumption: KEY is the base64 of 32 bytes with a / after an id-like start', () => {
    assert.equal(Buffer.from(KEY, 'base64').length, 32);
    assert.match(KEY, /^[A-Za-z0-9]{2,20}\//);
  });

  test('a key without its id is refused as such, naming enc_keys[i], and no part of it is shown', () => {
    const p = problemsOf(`enc_keys = ["k1/${'A'.repeat(43)}=", "${KEY}"]\nenc_key_active = "k1"`);
    assert.deepEqual(
      p.map(([k]) => k),
      ['enc_keys[1]'],
    );
    assert.match(p[0]?.[1] ?? '', /has no key id/);
    leaksNothingOf(JSON.stringify(p), KEY.replace(/[/=]/g, ''));
  });

  test('from ENC_KEYS too: named by its variable, nothing of the key shown', () => {
    const p = problemsOf('', { ENC_KEYS: `k1/${'A'.repeat(43)}=\n${KEY}`, ENC_KEY_ACTIVE: 'k1' });
    assert.deepEqual(
      p.map(([k]) => k),
      ['enc_keys[1] (from ENC_KEYS)'],
    );
    leaksNothingOf(JSON.stringify(p), KEY.replace(/[/=]/g, ''));
  });

  test('a long id that is not one (key material in the wrong place) is not quoted; a short one is', () => {
    const long = problemsOf(`enc_keys = ["${'Zq+'.repeat(10)}/${'A'.repeat(43)}="]\nenc_key_active = "k1"`);
    assert.equal(long[0]?.[0], 'enc_keys[0]');
    assert.match(long[0]?.[1] ?? '', /key id a string of 30 characters \(not shown\)/);
    const short = problemsOf(`enc_keys = ["x/${'A'.repeat(43)}="]\nenc_key_active = "x"`);
    assert.deepEqual(short[0], ['enc_keys[0]', 'key id "x" must be 2 to 20 letters and digits']);
  });

  test('enc_key_active holding the key entry itself is refused without quoting it', () => {
    const entry = `k1/${KEY}`;
    const p = problemsOf(`enc_keys = ["${entry}"]\nenc_key_active = "${entry}"`);
    assert.equal(p.length, 1, JSON.stringify(p));
    assert.equal(p[0]?.[0], 'enc_key_active');
    leaksNothingOf(JSON.stringify(p), KEY.replace(/[/=]/g, ''));
  });

  test('s3_url with credentials is refused at load, naming s3_url, without the secret', () => {
    const p = problemsOf(
      [
        `enc_keys = ["k1/${'A'.repeat(43)}="]`,
        'enc_key_active = "k1"',
        `s3_url = "http://AKIDEXAMPLE:${S3_SECRET}@127.0.0.1:9000"`,
        's3_bucket = "backups"',
        's3_region = "r"',
        's3_key = "AKIDEXAMPLE"',
        `s3_secret = "${S3_SECRET}"`,
      ].join('\n'),
    );
    assert.deepEqual(
      p.map(([k]) => k),
      ['s3_url'],
    );
    assert.match(p[0]?.[1] ?? '', /must not hold credentials/);
    leaksNothingOf(JSON.stringify(p), S3_SECRET);
  });

  test('the S3 client refuses an endpoint with credentials too (fetch would quote it in every error)', () => {
    const options = {
      endpointUrl: `https://AKIDEXAMPLE:${S3_SECRET}@s3.example.com`,
      bucket: 'backups',
      region: 'r',
      pathStyle: true,
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: S3_SECRET,
    };
    assert.throws(
      () => resolveS3Options(options),
      (e: unknown) => {
        assert.ok(e instanceof HiqliteError);
        assert.equal(e.code, 'HQL_INVALID_CONFIG');
        assert.match(e.message, /must not hold credentials/);
        leaksNothingOf(e.message, S3_SECRET);
        return true;
      },
    );
    assert.throws(
      () => resolveS3Options({ ...options, endpointUrl: `http://x:${S3_SECRET}@` }),
      (e: unknown) => {
        assert.ok(e instanceof HiqliteError);
        leaksNothingOf(e.message, S3_SECRET);
        return true;
      },
    );
  });
});

describe('backup_cron that never fires', () => {
  test('February 31st or a year gone by is refused at load (no backup would ever run); a daily one loads', () => {
    const keys = `enc_keys = ["k1/${'A'.repeat(43)}="]\nenc_key_active = "k1"\n`;
    for (const cron of ['0 30 2 31 2 *', '0 0 0 1 1 * 2020']) {
      const p = problemsOf(`${keys}backup_cron = "${cron}"`);
      assert.deepEqual(
        p.map(([k]) => k),
        ['backup_cron'],
      );
      assert.match(p[0]?.[1] ?? '', /matches no date from now on/);
    }
    const { config } = parseTomlConfig(`${BASE}${keys}backup_cron = "0 30 2 * * *"\n`, {});
    assert.equal(config.backupCron, '0 30 2 * * *');
  });
});

describe('backup_cron that fires too often', () => {
  const keys = `enc_keys = ["k1/${'A'.repeat(43)}="]\nenc_key_active = "k1"\n`;

  test('runs closer than backup_cron_gap_min_s (default 60 s) are refused, naming both keys', () => {
    // Every second; every 30 s; six runs in a burst each night (seconds 0-5 of 02:30).
    for (const cron of ['* * * * * *', '*/30 * * * * *', '0-5 30 2 * * *']) {
      const p = problemsOf(`${keys}backup_cron = "${cron}"`);
      assert.deepEqual(
        p.map(([k]) => k),
        ['backup_cron'],
        cron,
      );
      assert.match(p[0]?.[1] ?? '', /s apart .* closer than backup_cron_gap_min_s = 60 s/);
    }
    for (const cron of ['0 * * * * *', '0 0 * * * *', '0 30 2 * * *']) {
      const { config } = parseTomlConfig(`${BASE}${keys}backup_cron = "${cron}"\n`, {});
      assert.equal(config.backupCron, cron, 'every minute or slower loads');
    }
  });

  test('a smaller backup_cron_gap_min_s lets a frequent schedule load; an invalid one is reported alone', () => {
    const { config } = parseTomlConfig(
      `${BASE}${keys}backup_cron = "*/10 * * * * *"\nbackup_cron_gap_min_s = 10\n`,
      {},
    );
    assert.equal(config.backupCron, '*/10 * * * * *');
    const p = problemsOf(`${keys}backup_cron_gap_min_s = 0`);
    assert.deepEqual(
      p.map(([k]) => k),
      ['backup_cron_gap_min_s'],
    );
  });
});

describe('s3_bucket that cannot be a bucket', () => {
  const s3 = (bucket: string, pathStyle = true) =>
    `enc_keys = ["k1/${'A'.repeat(43)}="]\nenc_key_active = "k1"\ns3_url = "http://s3.test:9000"\ns3_bucket = "${bucket}"\ns3_region = "r"\ns3_key = "k"\ns3_secret = "${S3_SECRET}"\ns3_path_style = ${pathStyle}\n`;

  test('too short, a slash, a space, a query: refused naming s3_bucket (the request would address another path)', () => {
    for (const bucket of ['b', 'ab', 'a/b', 'my bucket', 'bkt?x=1', 'bkt#', 'x'.repeat(256)]) {
      const p = problemsOf(s3(bucket));
      assert.deepEqual(
        p.map(([k]) => k),
        ['s3_bucket'],
        bucket,
      );
      assert.match(p[0]?.[1] ?? '', /is not a bucket name/);
    }
  });

  test('in the host name (s3_path_style = false) only DNS-safe names; in the path older names too', () => {
    for (const bucket of ['My_Bucket', '-bkt', 'bkt-', 'x'.repeat(64)]) {
      const p = problemsOf(s3(bucket, false));
      assert.deepEqual(
        p.map(([k]) => k),
        ['s3_bucket'],
        bucket,
      );
      assert.match(p[0]?.[1] ?? '', /s3_path_style = false/);
    }
    for (const bucket of ['My_Bucket', 'bkt', 'backups.2026-prod', 'x'.repeat(255)]) {
      assert.equal(parseTomlConfig(`${BASE}${s3(bucket)}`, {}).config.s3Bucket, bucket);
    }
    assert.equal(
      parseTomlConfig(`${BASE}${s3('backups.2026-prod', false)}`, {}).config.s3Bucket,
      'backups.2026-prod',
    );
  });
});
