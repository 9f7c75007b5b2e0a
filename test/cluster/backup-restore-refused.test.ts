/**
 * A bad backup given to a node with data (`HQL_BACKUP_RESTORE=file:…` at start) on real
 * processes: one flipped byte, a truncated file, a key id the node does not know. The node
 * refuses to start with the typed error that names the reason, its data directory is unchanged
 * byte for byte (database, Raft log, snapshots, cluster id), and a normal start afterwards
 * serves the data it had, including the writes made after the backup.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HEADER_FIXED_BYTES } from '../../src/backup/format.js';
import { TestCluster } from './harness.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
/** About 3 MiB of database: a backup of a few 1 MiB chunks. */
const ROWS_IN_BACKUP = 8000;
const ROWS_AFTER = 120;

/** Every file below `dir` (but the lock file) with its SHA-256, sorted by path. */
function fingerprint(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.set(`${relative(dir, p)}/`, 'dir');
        walk(p);
      } else if (e.name !== 'hiqlite.lock') {
        out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
      }
    }
  };
  walk(dir);
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

describe('a bad backup at start changes nothing', () => {
  let c: TestCluster;
  let good: Buffer;
  let keyIdAt: number;
  let lastIndex = 0;

  before(async () => {
    c = await TestCluster.create({ nodes: 1, toml: `enc_keys = ["k1/${KEY}"]\nenc_key_active = "k1"` });
    const client = await c.client();
    await client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    await client.execute(
      `INSERT INTO t (id, v) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT ${ROWS_IN_BACKUP}) SELECT i, hex(randomblob(200)) FROM c`,
    );
    const info = (await client.backup()) as { name: string };
    good = readFileSync(join(c.node(1).dataDir, 'state_machine', 'backups', info.name));
    // Writes after the backup: what a wrong restore would lose.
    const w = await client.execute(
      `INSERT INTO t (id, v) WITH RECURSIVE c(i) AS (SELECT ${ROWS_IN_BACKUP + 1} UNION ALL SELECT i + 1 FROM c LIMIT ${ROWS_AFTER}) SELECT i, 'after' FROM c`,
    );
    lastIndex = w.logIndex;
    await c.dropClient(client);
    assert.equal(await c.stop(1), 0);
    keyIdAt = good.indexOf(Buffer.from('k1', 'ascii'), HEADER_FIXED_BYTES);
    assert.equal(keyIdAt, HEADER_FIXED_BYTES, 'the key id follows the fixed header');
  });
  after(async () => c?.close());

  const cases: ReadonlyArray<{ what: string; make: (b: Buffer) => Buffer; code: string; reason: RegExp }> = [
    {
      what: 'one flipped byte in the middle',
      make: (b) => {
        const x = Buffer.from(b);
        const at = Math.floor(x.length / 2);
        x[at] = (x[at] as number) ^ 0x01;
        return x;
      },
      code: 'HQL_BACKUP_CORRUPT',
      reason: /chunk \d+ \(byte \d+\) does not authenticate/,
    },
    {
      what: 'truncated to half its length',
      make: (b) => b.subarray(0, Math.floor(b.length / 2)),
      code: 'HQL_BACKUP_CORRUPT',
      reason: /does not authenticate: .*damaged or truncated/,
    },
    {
      what: 'a key id the node does not have',
      make: (b) => {
        const x = Buffer.from(b);
        x.write('k9', keyIdAt, 'ascii');
        return x;
      },
      code: 'HQL_BACKUP_KEY_UNKNOWN',
      reason: /k9/,
    },
  ];

  for (const k of cases) {
    test(`${k.what}: refused with ${k.code}, the data directory unchanged`, async () => {
      const n = c.node(1);
      const file = join(c.dir, 'bad.hqbak');
      writeFileSync(file, k.make(good));
      const before = fingerprint(n.dataDir);
      assert.ok(
        [...before.keys()].some((p) => p.endsWith('.db')),
        `a database file is compared: ${[...before.keys()].join(', ')}`,
      );
      await assert.rejects(
        c.startAndWatch(1, 60_000, { env: { HQL_BACKUP_RESTORE: `file:${file}` } }),
        /exited before READY/,
      );
      assert.notEqual(await n.exit, 0, n.output);
      assert.match(n.output, new RegExp(`hiqlite: ${k.code}: `), n.output);
      assert.match(n.output, k.reason, n.output);
      assert.deepEqual(fingerprint(n.dataDir), before);
      assert.ok(statSync(file).isFile(), 'the bad backup is left where it was');
    });
  }

  test('a normal start afterwards serves the old data, writes after the backup included', async () => {
    await c.start(1);
    const rows = await c.rowsOn<{ n: number; after: number }>(
      "SELECT count(*) AS n, sum(v = 'after') AS after FROM t",
      { ids: [1], minIndex: lastIndex },
    );
    assert.deepEqual(rows.get(1)?.[0], { n: ROWS_IN_BACKUP + ROWS_AFTER, after: ROWS_AFTER });
    const client = await c.client();
    const w = await client.execute("INSERT INTO t (id, v) VALUES (100000, 'new')");
    assert.ok(w.logIndex > lastIndex, `the log goes on: ${w.logIndex} > ${lastIndex}`);
  });
});
