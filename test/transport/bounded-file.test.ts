/**
 * readFileBounded reads the files a user names (configuration, TLS material) synchronously,
 * before anything runs: a pipe must not block the process for good. A named FIFO with no writer
 * reads as empty, a pipe is read as its data comes, and one whose writer neither writes nor closes
 * it is an error at the deadline (before, `open` or `read` waited forever, signals included).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileTooLargeError, readFileBounded } from '../../src/transport/bounded-file.js';
import { withTempDir } from '../support/temp-dir.js';

/** A process holding `fifo` open for writing (and reading, so its open does not wait), then running `script`. */
function writer(fifo: string, script: string): Promise<ChildProcess> {
  const child = spawn('sh', ['-c', `exec 3<>"$1"; echo ready; ${script}`, 'sh', fifo], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(child));
    child.once('error', reject);
  });
}
const children: ChildProcess[] = [];

describe('readFileBounded', () => {
  let dir = '';
  withTempDir('hql-bounded-', (d) => {
    dir = d;
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  const fifo = (name: string) => {
    const path = join(dir, name);
    execFileSync('mkfifo', [path]);
    return path;
  };

  test('a regular file is read whole; one over the bound is FileTooLargeError', () => {
    const path = join(dir, 'config.toml');
    writeFileSync(path, 'x'.repeat(100_000));
    assert.equal(readFileBounded(path, 100_000).length, 100_000);
    assert.throws(() => readFileBounded(path, 99_999), FileTooLargeError);
  });

  test('a FIFO with no writer reads as empty, at once', () => {
    assert.equal(readFileBounded(fifo('nobody'), 1024, 60_000).length, 0);
  });

  test('a pipe is read as its data comes, until its writer closes it', async () => {
    const path = fifo('slow');
    await writer(
      path,
      'sleep 0.3; printf "[hiqlite]" >&3; sleep 0.2; printf "\\nnode_id = 1\\n" >&3; exec 3>&-',
    );
    assert.equal(readFileBounded(path, 1024, 20_000).toString(), '[hiqlite]\nnode_id = 1\n');
  });

  test('a pipe whose writer neither writes nor closes it is an error at the deadline', async () => {
    const path = fifo('stuck');
    await writer(path, 'sleep 30');
    assert.throws(() => readFileBounded(path, 1024, 300), /nothing more came within 300 ms/);
  });

  test('an endless pipe stops at the bound', async () => {
    const path = fifo('endless');
    await writer(path, 'while :; do printf xxxxxxxxxxxxxxxx >&3 || exit; done');
    assert.throws(() => readFileBounded(path, 64 * 1024, 20_000), FileTooLargeError);
  });
});
