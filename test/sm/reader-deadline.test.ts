/**
 * A read's limit (`timeoutMs`) holds however short it is. The interrupt extension's watchdog
 * interrupted a connection once at its deadline; SQLite clears the flag when a statement starts
 * with none running, so an interrupt that landed before the statement started (a limit of 0 or
 * 1 ms, or a thread slow to get there) was lost and the statement ran without end (found from
 * outside: a read thread at 100% CPU for good after endless queries, and the node's close()
 * then waited for it). The watchdog now interrupts again every 5 ms until the connection is
 * disarmed; disarming survives such an interrupt. Run in a child process, which a statement
 * without end would keep for good.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./reader-deadline-child.ts', import.meta.url));

test('an endless read with a limit of 0 to 3 ms ends at it, every time, and the connection reads on', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(killer);
  assert.equal(code, 0, `the reads did not all end (a statement ran on): ${err.slice(-2000)}`);
  assert.deepEqual(JSON.parse(out), { 'endless: HQL_TIMEOUT': 400, 'after: ok': 400 });
});
