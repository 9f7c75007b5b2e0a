/**
 * The data directory's lock (src/node/data-dir-lock.ts): a live owner refuses a second process;
 * an owner that is gone — dead, a zombie killed and not yet reaped, or a pid another process took
 * since (a container restart hands out the same pids) — is an unclean shutdown, and the node starts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { lockDataDir } from '../../src/node/data-dir-lock.js';

const root = mkdtempSync(join(tmpdir(), 'hq-lock-'));
let n = 0;
const freshDir = () => join(root, `d${n++}`);
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
const startOf = (pid: number) => {
  const t = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return t.slice(t.lastIndexOf(')') + 2).split(' ')[19];
};

async function withLockFile(text: string | ((dir: string) => string)): Promise<string> {
  const dir = freshDir();
  const lock = await lockDataDir(dir); // makes the folder
  await lock.release();
  writeFileSync(join(dir, 'hiqlite.lock'), typeof text === 'string' ? text : text(dir));
  return dir;
}

const identityOf = (dir: string) => {
  const st = statSync(dir, { bigint: true });
  return `${st.dev}:${st.ino}`;
};

describe('data_dir lock', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  test('holds the owner’s pid, start time and boot id, and the directory’s identity; a clean release removes it', async () => {
    const dir = freshDir();
    const lock = await lockDataDir(dir);
    assert.equal(lock.uncleanShutdown, false);
    assert.equal(
      readFileSync(join(dir, 'hiqlite.lock'), 'utf8'),
      `${process.pid} ${startOf(process.pid)} ${bootId} ${identityOf(dir)}`,
    );
    await lock.release();
    const again = await lockDataDir(dir);
    assert.equal(again.uncleanShutdown, false);
    await again.release();
  });

  test('a live owner refuses the data directory (this file’s format and the earlier ones)', async () => {
    const owner = process.ppid; // alive for as long as this test runs
    for (const text of [
      (dir: string) => `${owner} ${startOf(owner)} ${bootId} ${identityOf(dir)}`,
      () => `${owner} ${startOf(owner)} ${bootId}`,
      () => `${owner}`,
    ]) {
      const dir = await withLockFile(text);
      await assert.rejects(lockDataDir(dir), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'HQL_INVALID_CONFIG');
        assert.match(e.message, new RegExp(`in use by process ${owner}`));
        return true;
      });
    }
  });

  test('a second node of this very process is refused; a file of an earlier run with this pid is not', async () => {
    const dir = freshDir();
    const first = await lockDataDir(dir);
    await assert.rejects(lockDataDir(dir), /in use by this process: a node started in it holds it/);
    await first.release();
    // A container restarted: the same pid, another process (another start time, or the old format).
    for (const text of [`${process.pid}`, `${process.pid} 1 ${bootId}`]) {
      const lock = await lockDataDir(await withLockFile(text));
      assert.equal(lock.uncleanShutdown, true, text);
      await lock.release();
    }
  });

  test('a lock copied with its directory from a live node’s (cp -a) is not this directory’s: the node starts', async () => {
    const owner = process.ppid;
    const original = await withLockFile((d) => `${owner} ${startOf(owner)} ${bootId} ${identityOf(d)}`);
    const copy = freshDir();
    cpSync(original, copy, { recursive: true, preserveTimestamps: true });
    assert.equal(
      readFileSync(join(copy, 'hiqlite.lock'), 'utf8'),
      readFileSync(join(original, 'hiqlite.lock'), 'utf8'),
    );
    const lock = await lockDataDir(copy);
    assert.equal(lock.uncleanShutdown, true);
    await lock.release();
    // The original stays refused: its owner lives.
    await assert.rejects(lockDataDir(original), new RegExp(`in use by process ${owner}`));
  });

  test('a pid another process took since (another start time or boot) is an unclean shutdown', async () => {
    const pid = process.ppid;
    for (const text of [
      `${pid} 1 ${bootId}`,
      `${pid} ${startOf(pid)} 00000000-0000-0000-0000-000000000000`,
    ]) {
      const lock = await lockDataDir(await withLockFile(text));
      assert.equal(lock.uncleanShutdown, true, text);
      await lock.release();
    }
  });

  test('an owner that is a zombie (killed, not reaped) or dead is an unclean shutdown', async () => {
    // The background sleep's parent execs a sleep that never waits for it: a zombie once it ends.
    const sh = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const zombie = await new Promise<number>((resolve) =>
        sh.stdout.once('data', (d) => resolve(Number(String(d).trim()))),
      );
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && !/^\S+ \(\S+\) Z/.test(readFileSync(`/proc/${zombie}/stat`, 'latin1')))
        await new Promise((r) => setTimeout(r, 20));
      assert.match(readFileSync(`/proc/${zombie}/stat`, 'latin1'), /\) Z /, 'a zombie exists to test with');
      const lock = await lockDataDir(await withLockFile(`${zombie}`));
      assert.equal(lock.uncleanShutdown, true);
      await lock.release();
    } finally {
      sh.kill('SIGKILL');
    }
    const dead = await lockDataDir(await withLockFile('2147483646'));
    assert.equal(dead.uncleanShutdown, true);
    await dead.release();
  });
});
