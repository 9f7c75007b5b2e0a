/**
 * `hiqlite backup …` as a careless operator runs it, without a running node: each a real process
 * (`node --import tsx src/server/cli.ts`) on a node configuration whose local backups folder holds
 * one backup made here. A destination or a source that would make the command replace or delete
 * what it must not is refused with a clear message and exit code 1, and nothing changes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KeyRing } from '../../src/backup/key-ring.js';
import { LocalBackupTarget } from '../../src/backup/local-target.js';
import { ConfigError } from '../../src/node/config/config.js';
import { logLevelFromEnv } from '../../src/node/log-level.js';
import { backupOf, makeDatabase } from '../backup/helpers.js';
import { withTempDir } from '../support/temp-dir.js';
import { CLI_SOURCE, runTsx } from '../support/tsx-process.js';

const RUN_TIMEOUT_MS = 60_000;
const KEY = randomBytes(32);

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A one-node config file `file` in `dir`, with backup keys, whose data_dir is `dataDir`. */
function nodeConfigFile(dir: string, file: string, dataDir: string): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    [
      '[hiqlite]',
      'node_id = 1',
      'nodes = ["1 127.0.0.1:1 127.0.0.1:2"]',
      `data_dir = ${JSON.stringify(dataDir)}`,
      'secret_raft = "raft-secret-for-tests-0123456789"',
      'secret_api = "api-secret-for-tests-0123456789"',
      `enc_keys = ["k1/${KEY.toString('base64')}"]`,
      'enc_key_active = "k1"',
      '',
    ].join('\n'),
  );
  return path;
}

function cli(args: readonly string[], env: NodeJS.ProcessEnv = { HQL_LOG_LEVEL: 'warn' }): Promise<Ran> {
  return runTsx(CLI_SOURCE, args, { env: { ...process.env, ...env }, timeoutMs: RUN_TIMEOUT_MS });
}

/** Exit 1 with one `hiqlite: …` line matching `reason`, and no stack trace. */
function refused(r: Ran, reason: RegExp): void {
  const all = `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.code, 1, all);
  assert.match(r.stderr, /^hiqlite: /m, all);
  assert.match(r.stderr, reason, all);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace: ${all}`);
}

describe('hiqlite backup: destinations and sources it must not touch', () => {
  let dir: string;
  let dataDir: string;
  let config: string;
  let name: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hiqlite-cli-hostile-'));
    dataDir = join(dir, 'data');
    const work = join(dir, 'work');
    mkdirSync(work);
    const db = makeDatabase(work, 10);
    const keys = KeyRing.of(new Map([['k1', new Uint8Array(KEY)]]), 'k1');
    const made = await backupOf(db.path, { workDir: work, keys, createdMs: Date.UTC(2026, 0, 2) });
    name = made.name;
    const chunks: Buffer[] = [];
    for await (const c of made.body) chunks.push(c);
    const backups = join(dataDir, 'state_machine', 'backups');
    mkdirSync(backups, { recursive: true });
    await writeFile(join(backups, name), Buffer.concat(chunks));
    config = nodeConfigFile(dir, 'node-1.toml', dataDir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('download --out onto a pipe (as onto /dev/null) is refused, and the pipe stays a pipe', async () => {
    const fifo = join(dir, 'a-pipe');
    execFileSync('mkfifo', [fifo]);
    refused(
      await cli(['backup', 'download', name, '--config', config, '--out', fifo]),
      /--out .*a-pipe: exists and is not a regular file/,
    );
    assert.ok(lstatSync(fifo).isFIFO(), 'the pipe was replaced by a file');
  });

  test('download --out into a folder that does not exist names it (was ENOENT on <out>.partial)', async () => {
    const out = join(dir, 'no-such-folder', 'copy.db');
    const r = await cli(['backup', 'download', name, '--config', config, '--out', out]);
    refused(r, /^hiqlite: HQL_INVALID_PARAMS: --out .*copy\.db: its folder .*no-such-folder does not exist/m);
    assert.doesNotMatch(r.stderr, /\.partial/);
  });

  test('download --out "" is refused with a message, not a rename error', async () => {
    refused(
      await cli(['backup', 'download', name, '--config', config, '--out', '']),
      /^hiqlite: HQL_INVALID_PARAMS: --out: give/m,
    );
  });

  test("download --out into the node's data_dir (onto its database) is refused; the database is untouched", async () => {
    const dbDir = join(dataDir, 'state_machine', 'db');
    mkdirSync(dbDir, { recursive: true });
    const live = join(dbDir, 'hiqlite.db');
    writeFileSync(live, 'the live database');
    for (const out of [live, `${dataDir}/`, join(dir, 'data', '..', 'data', 'copy.db')]) {
      refused(
        await cli(['backup', 'download', name, '--config', config, '--out', out]),
        /is inside the node's data_dir/,
      );
    }
    assert.equal(lstatSync(live).size, 'the live database'.length);
    assert.equal(existsSync(join(dataDir, name.replace(/\.hqbak$/, '.db'))), false);
    rmSync(dbDir, { recursive: true });
  });

  test('download --out elsewhere still works (a file, and a folder)', async () => {
    const r = await cli(['backup', 'download', name, '--config', config, '--out', join(dir, 'out/')]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'out', name.replace(/\.hqbak$/, '.db'))));
  });

  test('--s3 and --local together are refused (was: --s3 silently won)', async () => {
    for (const args of [
      ['backup', 'list', '--config', config, '--s3', '--local'],
      ['backup', 'download', name, '--config', config, '--local', '--s3', '--out', join(dir, 'x.db')],
    ]) {
      const r = await cli(args);
      assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /cannot be used with/, r.stderr);
    }
  });

  test('restore from a file inside data_dir (not its backups folder) is refused; the file and the state stay', async () => {
    const copy = join(dataDir, 'my-copy.hqbak');
    copyFileSync(join(dataDir, 'state_machine', 'backups', name), copy);
    const marker = join(dataDir, 'logs', 'keep-me');
    mkdirSync(join(dataDir, 'logs'), { recursive: true });
    writeFileSync(marker, 'state');
    refused(
      await cli(['backup', 'restore', `file:${copy}`, '--config', config]),
      /HQL_INVALID_CONFIG: backup restore file:.*my-copy\.hqbak: the file is inside data_dir/,
    );
    assert.ok(existsSync(copy), 'the backup file the restore was given was deleted');
    assert.ok(existsSync(marker), "the node's state was discarded");

    // Node 2 (which only marks its restore pending) is refused the same way.
    const node2 = join(dir, 'node-2.toml');
    writeFileSync(
      node2,
      execFileSync('sed', [
        '-e',
        's/^node_id = 1/node_id = 2/',
        '-e',
        's/^nodes = .*/nodes = ["1 127.0.0.1:1 127.0.0.1:2", "2 127.0.0.1:3 127.0.0.1:4"]/',
        config,
      ]),
    );
    refused(
      await cli(['backup', 'restore', `file:${copy}`, '--config', node2]),
      /the file is inside data_dir/,
    );
    assert.ok(existsSync(copy) && existsSync(marker));

    // An empty HQL_LOG_LEVEL counts as unset (it was pino's "default level: must be included in
    // custom levels"); an unknown one names the variable.
    refused(
      await cli(['backup', 'restore', 'file:/nonexistent.hqbak', '--config', config], { HQL_LOG_LEVEL: '' }),
      /HQL_BACKUP_NOT_FOUND: backup restore: no file \/nonexistent\.hqbak/,
    );
    // s3: on a node without a bucket is a configuration mistake, not a missing backup (it was
    // HQL_BACKUP_NOT_FOUND).
    refused(
      await cli(['backup', 'restore', 's3:backup_x.hqbak', '--config', config]),
      /HQL_INVALID_CONFIG: backup restore s3:backup_x\.hqbak needs s3_url/,
    );
    // A source that is none of the three forms names the command, not a variable the user never set.
    const unknown = await cli(['backup', 'restore', 'not-a-source', '--config', config]);
    refused(
      unknown,
      /^hiqlite: HQL_INVALID_PARAMS: backup restore not-a-source: give the name of a backup in this node's folder/m,
    );
    assert.doesNotMatch(unknown.stderr, /HQL_BACKUP_RESTORE/);
    for (const args of [
      ['serve', '--config', config],
      ['backup', 'restore', name, '--config', config],
    ]) {
      refused(
        await cli(args, { HQL_LOG_LEVEL: 'verbose' }),
        /^hiqlite: HQL_INVALID_CONFIG: .*\n\s+- HQL_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/m,
      );
    }
    assert.ok(existsSync(copy) && existsSync(marker));

    // From the backups folder (by name) it restores.
    const r = await cli(['backup', 'restore', name, '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node 1: installed the backup/);

    // The same backup named another way (relative to the working directory, with ./ and ..) is
    // the restore already done: repeating it would wipe every write made since.
    const backupFile = join(dataDir, 'state_machine', 'backups', name);
    for (const spelt of [
      relative(process.cwd(), backupFile),
      join(dataDir, '.', 'state_machine', '..', 'state_machine', 'backups', name),
    ]) {
      const again = await cli(['backup', 'restore', `file:${spelt}`, '--config', config]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /this restore was already done here; nothing changed/, `file:${spelt}`);
    }
  });
});

describe('HQL_LOG_LEVEL', () => {
  test('unset or empty: the fallback; any case and spaces around are taken; anything else is HQL_INVALID_CONFIG', () => {
    assert.equal(logLevelFromEnv('warn', {}), 'warn');
    assert.equal(logLevelFromEnv('info', { HQL_LOG_LEVEL: '' }), 'info');
    assert.equal(logLevelFromEnv('info', { HQL_LOG_LEVEL: '  ' }), 'info');
    assert.equal(logLevelFromEnv('info', { HQL_LOG_LEVEL: ' DEBUG ' }), 'debug');
    assert.throws(
      () => logLevelFromEnv('info', { HQL_LOG_LEVEL: 'verbose' }),
      (e: unknown) => e instanceof ConfigError && e.problems[0]?.key === 'HQL_LOG_LEVEL',
    );
  });
});

describe('paths that cannot be a folder: a typed message naming the setting, not a bare errno', () => {
  let dir: string;
  withTempDir('hiqlite-cli-paths-', (d) => {
    dir = d;
  });

  test('serve, backup list and backup restore with data_dir a file, or under a file', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder');
    // (The backups folder under a data_dir that is a file has a file in its path.)
    for (const data of [file, join(file, 'sub')]) {
      const config = nodeConfigFile(dir, 'bad-data-dir.toml', data);
      for (const args of [
        ['serve', '--config', config],
        ['backup', 'restore', 'file:/nonexistent.hqbak', '--config', config],
        ['backup', 'list', '--config', config],
      ]) {
        const r = await cli(args);
        refused(r, /^hiqlite: HQL_INVALID_CONFIG: /m);
        assert.match(r.stderr, /exists and is not a directory|a part of its path is a file/, r.stderr);
        assert.match(r.stderr, /data_dir/, r.stderr);
      }
    }
    assert.equal(readFileSync(file, 'utf8'), 'not a folder');
  });

  test('generate-config --dir a file, or over a node file that is a folder', async () => {
    const file = join(dir, 'gen-file');
    writeFileSync(file, 'x');
    refused(
      await cli(['generate-config', '--dir', file]),
      /HQL_INVALID_CONFIG: .*\n\s+- dir: .*exists and is not a directory/,
    );
    const out = join(dir, 'gen');
    mkdirSync(join(out, 'node-1.toml'), { recursive: true });
    refused(
      await cli(['generate-config', '--dir', out, '--overwrite']),
      /HQL_INVALID_CONFIG: .*\n\s+- dir: .*node-1\.toml: a file to be written there is a directory/,
    );
  });
});

describe('hash-password with bytes that are not UTF-8', () => {
  /** One run of `hiqlite hash-password` with `stdin` as its standard input. */
  function hashPassword(stdin: Buffer): Promise<Ran> {
    return new Promise((ok, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI_SOURCE, 'hash-password'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
      child.once('error', fail);
      child.once('close', (code) => {
        clearTimeout(timer);
        ok({ code, stdout, stderr });
      });
      child.stdin.end(stdin);
    });
  }

  test('a Latin-1 password is refused (it was hashed as U+FFFD characters, a password no browser sends)', async () => {
    // "mot de passe très secret" in Latin-1: è is the single byte 0xE8.
    const latin1 = Buffer.from('mot de passe très secret\n', 'latin1');
    const r = await hashPassword(latin1);
    refused(r, /^hiqlite: HQL_INVALID_PARAMS: standard input is not UTF-8 text/m);
    assert.equal(r.stdout, '');
    const utf8 = await hashPassword(Buffer.from('mot de passe très secret\n', 'utf8'));
    assert.equal(utf8.code, 0, utf8.stderr);
    assert.match(utf8.stdout, /^\$argon2id\$/);
  });
});

describe('backup list and download beside a running node', () => {
  let dir: string;
  withTempDir('hiqlite-cli-beside-', (d) => {
    dir = d;
  });

  test('a list while the node writes a backup leaves its .partial alone, and the backup completes', async () => {
    const dataDir = join(dir, 'data');
    const backups = join(dataDir, 'state_machine', 'backups');
    // The node's own target, writing a backup whose bytes arrive only after the list ran.
    const owner = await LocalBackupTarget.open(backups);
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const body = (async function* () {
      yield Buffer.from('first part of the backup ');
      await gate;
      yield Buffer.from('last part');
    })();
    const name = 'backup_20260102T000000.000Z_i7_n1.hqbak';
    const writing = owner.put(name, body);
    const partial = join(backups, `${name}.partial`);
    for (let i = 0; i < 200 && !existsSync(partial); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(existsSync(partial), 'the backup is being written');

    const r = await cli(['backup', 'list', '--config', nodeConfigFile(dir, 'node-1.toml', dataDir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(partial), "the list removed the .partial of the node's backup in progress");
    release();
    const stored = await writing;
    assert.equal(stored.bytes, 'first part of the backup last part'.length);
  });

  test('a list of a node that never took a backup creates nothing', async () => {
    const dataDir = join(dir, 'never-started');
    const r = await cli(['backup', 'list', '--config', nodeConfigFile(dir, 'node-1.toml', dataDir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /0 backup\(s\)/);
    assert.equal(existsSync(dataDir), false, 'the list made the data directory');
  });
});

describe('a config file that is not one: bounded reading', () => {
  let dir: string;
  withTempDir('hiqlite-cli-config-', (d) => {
    dir = d;
  });

  test('a 5 MiB file of zero bytes, then /dev/zero itself: refused as too large by serve, proxy and backup', async () => {
    const big = join(dir, 'big.toml');
    writeFileSync(big, Buffer.alloc(5 * 1024 * 1024));
    // The file first: without the bound /dev/zero would be read until memory runs out, so it is
    // only tried once the bound is seen to hold.
    for (const file of [big, '/dev/zero']) {
      for (const args of [
        ['serve', '--config', file],
        ['proxy', '--config', file],
        ['backup', 'list', '--config', file],
      ]) {
        refused(
          await cli(args),
          /HQL_INVALID_CONFIG: .*\n\s+- .*: is larger than 4194304 bytes: not a configuration file/,
        );
      }
    }
  });

  test('a named pipe nobody writes to: refused at once, saying so (the read blocked the process for good)', async () => {
    const fifo = join(dir, 'config.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const args of [
      ['serve', '--config', fifo],
      ['proxy', '--config', fifo],
      ['backup', 'list', '--config', fifo],
    ]) {
      refused(await cli(args), /HQL_INVALID_CONFIG: .*\n\s+- .*: is a named pipe that nobody writes to/);
    }
  });
});

describe('serve --node-id', () => {
  let dir: string;
  withTempDir('hiqlite-cli-node-id-', (d) => {
    dir = d;
  });

  test('an id not in nodes is named as the option and the file; the whole id range is taken', async () => {
    const config = nodeConfigFile(dir, 'node.toml', join(dir, 'data'));
    for (const id of ['5', '4294967295']) {
      refused(
        await cli(['serve', '--config', config, '--node-id', id]),
        new RegExp(
          `invalid configuration in .*node\\.toml .*\\n\\s+- --node-id: ${id} is not the id of any entry in nodes`,
        ),
      );
    }
    assert.equal(existsSync(join(dir, 'data')), false, 'nothing was opened');
  });
});

describe('integer options', () => {
  test('take decimal digits only: hex, exponents, signs and fractions are refused before anything is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hiqlite-cli-int-'));
    try {
      for (const n of ['0x3', '3e0', '+3', '3.0', ' 3', '0b11', '']) {
        const r = await cli(['generate-config', '--nodes', n, '--dir', join(dir, 'out')]);
        assert.equal(r.code, 1, `--nodes '${n}': ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /--nodes must be an integer in \[1, 99\]/, r.stderr);
      }
      assert.equal(existsSync(join(dir, 'out')), false, 'a configuration was written');
      // Up to 99, as generateConfig and CONFIGURATION.md say (the CLI stopped at 7).
      const r = await cli(['generate-config', '--nodes', '12', '--dir', join(dir, 'twelve')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readdirSync(join(dir, 'twelve')).filter((f) => f.endsWith('.toml')).length, 12);
      assert.equal((await cli(['generate-config', '--nodes', '100', '--dir', join(dir, 'x')])).code, 1);
      // --base-port: the nodes' ports from there (the default, 8100, is also hiqlite dev's).
      const ported = await cli([
        'generate-config',
        '--nodes',
        '2',
        '--base-port',
        '41000',
        '--dir',
        join(dir, 'p'),
      ]);
      assert.equal(ported.code, 0, ported.stderr);
      const node2 = readFileSync(join(dir, 'p', 'node-2.toml'), 'utf8');
      assert.match(node2, /127\.0\.0\.1:41001/);
      assert.match(node2, /127\.0\.0\.1:41101/);
      assert.doesNotMatch(node2, /:8101/);
      const bad = await cli(['generate-config', '--base-port', '80', '--dir', join(dir, 'q')]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--base-port must be an integer in \[1024, 65000\]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('careless options and output paths', () => {
  let dir: string;
  withTempDir('hiqlite-cli-careless-', (d) => {
    dir = d;
  });

  test('a misspelled option is named as unknown with the nearest one, before a required option is asked for', async () => {
    for (const args of [
      ['serve', '--confg', 'x.toml'],
      ['proxy', '--confg', 'x.toml'],
      ['backup', 'list', '--confg', 'x.toml'],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /unknown option '--confg'/, r.stderr);
      assert.match(r.stderr, /Did you mean --config\?/, r.stderr);
      assert.doesNotMatch(r.stderr, /required option/, r.stderr);
    }
    const missing = await cli(['serve']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /required option '-c, --config <file>' not specified/, missing.stderr);
  });

  test('generate-config replaces a symbolic link or a FIFO at a node file, never writes through or opens it', async () => {
    const out = join(dir, 'gen');
    mkdirSync(out);
    const elsewhere = join(dir, 'precious.txt');
    writeFileSync(elsewhere, 'keep me');
    symlinkSync(elsewhere, join(out, 'node-1.toml'));
    execFileSync('mkfifo', [join(out, 'node-2.toml')]);
    // Without --overwrite both are refused as existing; nothing is written anywhere.
    refused(await cli(['generate-config', '--dir', out]), /already exist/);
    assert.equal(readFileSync(elsewhere, 'utf8'), 'keep me');
    // With it, both are replaced by regular files (a FIFO blocked the command forever before).
    const r = await cli(['generate-config', '--dir', out, '--overwrite']);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.equal(readFileSync(elsewhere, 'utf8'), 'keep me', 'the link’s target is untouched');
    for (const id of [1, 2, 3]) {
      const file = join(out, `node-${id}.toml`);
      assert.ok(lstatSync(file).isFile(), `${file} is a regular file`);
      assert.equal(lstatSync(file).mode & 0o777, 0o600);
      assert.match(readFileSync(file, 'utf8'), new RegExp(`node_id = ${id}`));
    }
    assert.deepEqual(
      readdirSync(out).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left behind',
    );
  });

  test('a folder that cannot be made (under /proc) is an error naming it, not a command that never ends', async () => {
    refused(
      await cli(['generate-config', '--dir', '/proc/hiqlite-test/config']),
      /- dir: \/proc\/hiqlite-test\/config: cannot be created there/,
    );
    const config = nodeConfigFile(dir, 'proc-data.toml', '/proc/hiqlite-test/data');
    // (`backup list` creates nothing: it lists none there.)
    const r = await cli(['serve', '--config', config]);
    refused(r, /^hiqlite: HQL_INVALID_CONFIG: /m);
    assert.match(r.stderr, /data_dir/, r.stderr);
    assert.match(r.stderr, /cannot be created there/, r.stderr);
  });
});
