/**
 * Backup and restore throughput against a plain file copy of the same database, and the peak
 * resident memory during each (`npm run bench:backup -- --mib 256`; `--mib 1024` for 1 GiB;
 * `--gzip-level N` as `backup_gzip_level`, default 1).
 *
 * The database is a hiqlite state machine file with rows of 1,000 hex characters (random bytes
 * written as hex: compressible about 2:1, like much real text). MB/s are of the database's size.
 * "backup" is what `backup()` does on a node: a consistent copy (VACUUM INTO on its own thread,
 * integrity_check), gzip, AES-256-GCM STREAM, written to the local target and fsynced. "restore"
 * reads it back: authenticate, gunzip, write, fsync, integrity_check, `_hq_meta` check.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GZIP_LEVEL, restoreBackupFile } from '../src/backup/backup-file.js';
import { checkCopy } from '../src/backup/copy-steps.js';
import { startCopy } from '../src/backup/db-copy.js';
import { KeyRing } from '../src/backup/key-ring.js';
import { LocalBackupTarget } from '../src/backup/local-target.js';
import { logIndex, term } from '../src/raft/types.js';
import { encodeCommand } from '../src/sm/sql/command.js';
import { SqlStateMachine } from '../src/sm/sql/state-machine.js';
import { backupStreamOf } from '../test/support/backup-stream.js';

const MiB = 1024 * 1024;
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};

function makeDatabase(dir: string, mib: number): { path: string; index: number } {
  const sm = SqlStateMachine.open(dir);
  let i = 0;
  const apply = (sql: string) => {
    i++;
    const data = encodeCommand({
      command: { type: 'execute', sql, params: [], returning: false },
      nowMs: Date.now(),
      seed: i,
    });
    sm.applyBatch([{ index: logIndex(i), term: term(1), data }]);
  };
  apply('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const rowsPerCommand = 8192; // about 8 MiB per command
  while (sm.appliedIndex() === 0 || (sizeOf(sm.path) < mib * MiB && i < 100_000)) {
    apply(
      `INSERT INTO t (v) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT ${rowsPerCommand}) SELECT hex(randomblob(500)) FROM c`,
    );
  }
  sm.close();
  return { path: sm.path, index: i };
}

function sizeOf(path: string): number {
  // The WAL holds recent pages; the main file grows as they are checkpointed.
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Runs `fn`, sampling RSS; returns seconds and the RSS growth over the start of the phase. */
async function measure(
  fn: (growthSoFarMiB: () => number) => Promise<unknown>,
): Promise<{ secs: number; rssGrowthMiB: number; rssPeakMiB: number }> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const soFar = () => (Math.max(peak, process.memoryUsage().rss) - base) / MiB;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const t0 = performance.now();
  await fn(soFar);
  const secs = (performance.now() - t0) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { secs, rssGrowthMiB: (peak - base) / MiB, rssPeakMiB: peak / MiB };
}

async function main(): Promise<void> {
  const mib = arg('--mib', 256);
  const gzipLevel = arg('--gzip-level', GZIP_LEVEL);
  const dir = await mkdtemp(join(tmpdir(), 'hq-bench-backup-'));
  try {
    process.stderr.write(`building a ${mib} MiB database…\n`);
    const db = makeDatabase(join(dir, 'db'), mib);
    const dbBytes = (await stat(db.path)).size;
    const mbps = (secs: number) => (dbBytes / MiB / secs).toFixed(0);
    const keys = KeyRing.of(new Map([['k1', new Uint8Array(randomBytes(32))]]), 'k1');

    const copy = await measure(() => copyFile(db.path, join(dir, 'plain-copy.db')));
    await rm(join(dir, 'plain-copy.db'));

    const target = await LocalBackupTarget.open(join(dir, 'backups'));
    let name = '';
    let stored = 0;
    const splits: string[] = [];
    const backup = await measure(async (soFar) => {
      const copyPath = join(dir, 'backups', 'copy.partial');
      const { info, checked } = await startCopy({ dbPath: db.path, outPath: copyPath, busyTimeoutMs: 1000 });
      let checkMs = 0;
      const timedCheck = checked.then((c) => {
        checkMs = c.checkMs;
      });
      const t0 = performance.now();
      const copyGrowth = soFar();
      const backup = backupStreamOf(copyPath, info, {
        createdMs: Date.now(),
        keys,
        gzipLevel,
        checked: timedCheck,
      });
      name = backup.name;
      stored = (await target.put(name, backup.body)).bytes;
      const s = (ms: number) => (ms / 1000).toFixed(1);
      splits.push(
        `backup: VACUUM INTO ${s(info.vacuumMs)} s (peak RSS growth by its end ${copyGrowth.toFixed(0)} MiB), then gzip + encrypt + write + fsync ${s(performance.now() - t0)} s, during which the integrity_check of the copy took ${s(checkMs)} s`,
      );
      await rm(copyPath);
    });

    const restore = await measure(async () => {
      await restoreBackupFile(await target.get(name), {
        keys,
        label: name,
        outPath: join(dir, 'restored.db'),
      });
    });

    const t1 = performance.now();
    checkCopy(join(dir, 'restored.db'));
    splits.push(
      `restore: of which integrity_check about ${((performance.now() - t1) / 1000).toFixed(1)} s (measured again after it)`,
    );

    const rows = [
      ['plain file copy (fs.copyFile)', copy],
      ['backup (copy + check + gzip + encrypt + write)', backup],
      ['restore (decrypt + gunzip + write + check)', restore],
    ] as const;
    console.log(
      `database ${(dbBytes / MiB).toFixed(0)} MiB, backup file ${(stored / MiB).toFixed(0)} MiB (gzip level ${gzipLevel})`,
    );
    console.log('| operation | seconds | MiB/s of the database | RSS growth (MiB) | peak RSS (MiB) |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const [what, m] of rows) {
      console.log(
        `| ${what} | ${m.secs.toFixed(1)} | ${mbps(m.secs)} | ${m.rssGrowthMiB.toFixed(0)} | ${m.rssPeakMiB.toFixed(0)} |`,
      );
    }
    for (const line of splits) console.log(line);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
