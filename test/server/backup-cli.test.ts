/**
 * `hiqlite backup create|list|download|restore` as an operator runs them: each a real process
 * (`node --import tsx src/server/cli.ts backup …`) against a running node that backs up to the
 * fake S3 (signatures checked) and its local folder. A download opens with better-sqlite3 and
 * holds the rows; a wrong key, an unknown key id and an unknown object exit non-zero with the
 * typed error; output to a pipe is plain lines (no progress bar escapes); a restore with the node
 * stopped brings the data back to the backup's, and the log goes on after its index.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { HiqliteClient } from '../../src/index.js';
import { TestCluster } from '../cluster/harness.js';
import { type FakeS3, startTestS3, testS3Toml } from '../support/s3-server.js';
import { CLI_SOURCE, runTsx } from '../support/tsx-process.js';

const RUN_TIMEOUT_MS = 120_000;
const KEY = Buffer.alloc(32, 3).toString('base64');
const ROWS = 2_000;

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** One run of the CLI with its output on pipes (not a terminal), killed after the timeout. */
function cli(args: readonly string[]): Promise<Ran> {
  return runTsx(CLI_SOURCE, args, {
    env: { ...process.env, HQL_LOG_LEVEL: 'warn' },
    timeoutMs: RUN_TIMEOUT_MS,
  });
}

function succeeded(r: Ran): void {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  plain(r);
}

/** Output to a pipe: whole lines, no carriage returns or terminal escapes of a progress bar. */
function plain(r: Ran): void {
  for (const [what, text] of [
    ['stdout', r.stdout],
    ['stderr', r.stderr],
  ] as const) {
    const control = ['\r', '\x1b'].filter((ch) => text.includes(ch));
    assert.deepEqual(control, [], `${what} has terminal control characters: ${JSON.stringify(text)}`);
  }
}

function failed(r: Ran, code: string, reason: RegExp): void {
  assert.equal(r.code, 1, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^hiqlite: ${code}: `, 'm'), r.stderr);
  assert.match(r.stderr, reason, r.stderr);
  plain(r);
}

function rowCount(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT count(*) FROM t').pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('hiqlite backup on the command line', () => {
  let s3: FakeS3;
  let c: TestCluster;
  let client: HiqliteClient;
  let config: string;
  let name = '';
  let backupIndex = 0;

  before(async () => {
    s3 = await startTestS3();
    c = await TestCluster.create({
      nodes: 1,
      toml: [`enc_keys = ["k1/${KEY}"]`, 'enc_key_active = "k1"', ...testS3Toml(s3)].join('\n'),
    });
    config = c.node(1).configFile;
    client = await c.client();
    await client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    await client.execute(
      `INSERT INTO t (id, v) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT ${ROWS}) SELECT i, hex(randomblob(100)) FROM c`,
    );
  });
  after(async () => {
    await c?.close();
    await s3?.close();
  });

  /** This node's configuration with other `enc_keys` lines. */
  function configWithKeys(file: string, keys: string): string {
    const text = readFileSync(config, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('enc_key'))
      .join('\n');
    const path = join(c.dir, file);
    writeFileSync(path, `${text}\n${keys}\n`);
    return path;
  }

  test('create: the running node takes a backup into its folder and the bucket', async () => {
    const r = await cli(['backup', 'create', '--config', config]);
    succeeded(r);
    const m = /^(backup_\S+\.hqbak) {2}log index (\d+) .* on node 1, stored: (.*)$/m.exec(r.stdout);
    assert.ok(m !== null, r.stdout);
    name = m[1] as string;
    backupIndex = Number(m[2]);
    assert.match(m[3] as string, /local/);
    assert.match(m[3] as string, /s3/);
    assert.ok(s3.objects().size > 0, 'the bucket holds the backup');
  });

  test('list --s3 and --local name the backup, with its index', async () => {
    for (const where of ['--s3', '--local']) {
      const r = await cli(['backup', 'list', '--config', config, where]);
      succeeded(r);
      assert.match(r.stdout, new RegExp(`^${name.replace(/\./g, '\\.')} .* index ${backupIndex} `, 'm'));
      assert.match(r.stderr, /^1 backup\(s\) in /m, `${where}: ${r.stderr}`);
    }
  });

  // Found from outside: list, create and download ran on with HQL_LOG_LEVEL=loud.
  test('a wrong HQL_LOG_LEVEL is refused by every backup command', async () => {
    for (const args of [
      ['backup', 'list', '--config', config, '--local'],
      ['backup', 'download', name, '--config', config, '--local', '--out', join(tmpdir(), 'never')],
    ]) {
      const r = await runTsx(CLI_SOURCE, args, {
        env: { ...process.env, HQL_LOG_LEVEL: 'loud' },
        timeoutMs: RUN_TIMEOUT_MS,
      });
      failed(r, 'HQL_INVALID_CONFIG', /HQL_LOG_LEVEL: must be one of/);
    }
  });

  test('download --out: a plain SQLite file holding every row, from the bucket and from the folder', async () => {
    for (const where of ['--s3', '--local']) {
      const out = join(c.dir, `download${where}.db`);
      const r = await cli(['backup', 'download', name, '--config', config, where, '--out', out]);
      succeeded(r);
      assert.match(r.stdout, new RegExp(`log index ${backupIndex}, \\d+ bytes, verified`));
      assert.match(r.stderr, new RegExp(`^download ${name.replace(/\./g, '\\.')}: [\\d.]+ MiB`, 'm'));
      assert.equal(rowCount(out), ROWS);
    }
  });

  test('a wrong key, an unknown key id and an unknown object: a typed error, exit 1, nothing written', async () => {
    const out = join(c.dir, 'never.db');
    // Another key under the backup's key id (k1), then under another id (k2).
    const wrongKeys = [
      ['wrong-key.toml', 'k1', 'HQL_BACKUP_CORRUPT', /key 'k1' is not the key this backup was made with/],
      ['other-id.toml', 'k2', 'HQL_BACKUP_KEY_UNKNOWN', /k1/],
    ] as const;
    for (const [file, keyId, code, message] of wrongKeys) {
      const keys = configWithKeys(
        file,
        `enc_keys = ["${keyId}/${Buffer.alloc(32, 9).toString('base64')}"]\nenc_key_active = "${keyId}"`,
      );
      failed(await cli(['backup', 'download', name, '--config', keys, '--s3', '--out', out]), code, message);
    }
    const unknown = 'backup_20200101T000000.000Z_i1_n1.hqbak';
    for (const where of ['--s3', '--local']) {
      failed(
        await cli(['backup', 'download', unknown, '--config', config, where, '--out', out]),
        'HQL_BACKUP_NOT_FOUND',
        new RegExp(`no backup '${unknown.replace(/\./g, '\\.')}'`),
      );
    }
    failed(
      await cli(['backup', 'download', 'not-a-backup', '--config', config, '--out', out]),
      'HQL_BACKUP_NOT_FOUND',
      /is not a backup name/,
    );
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(`${out}.partial`), false);
  });

  test('restore: refused while the node runs; with it stopped, the data is the backup and the log goes on', async () => {
    const later = await client.execute("INSERT INTO t (id, v) VALUES (100000, 'after the backup')");
    assert.ok(later.logIndex > backupIndex);
    failed(
      await cli(['backup', 'restore', `s3:${name}`, '--config', config]),
      'HQL_INVALID_CONFIG',
      /in use/,
    );

    await c.dropClient(client);
    assert.equal(await c.stop(1), 0);
    const r = await cli(['backup', 'restore', `s3:${name}`, '--config', config]);
    succeeded(r);
    assert.match(r.stdout, new RegExp(`node 1: installed the backup at log index ${backupIndex}`));

    await c.start(1);
    client = await c.client();
    const n = await client.queryConsistent<{ n: number }>('SELECT count(*) AS n FROM t');
    assert.equal(n[0]?.n, ROWS, 'the row written after the backup is gone: the data is the backup');
    const w = await client.execute("INSERT INTO t (id, v) VALUES (100001, 'after the restore')");
    assert.ok(w.logIndex > backupIndex, `new write at ${w.logIndex} > backup index ${backupIndex}`);
  });
});
