/**
 * `hiqlite hash-password` reads the password from standard input (never from an argument) and
 * prints a PHC string that the node accepts as `password_dashboard` and that verifies it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePhc, verifyPassword } from '../../src/dashboard/password.js';
import { resolveConfig } from '../../src/node/config/config.js';
import { CLI_SOURCE, runTsx } from '../support/tsx-process.js';

async function hashPasswordCli(stdin: string): Promise<{ code: number | null; out: string; err: string }> {
  const r = await runTsx(CLI_SOURCE, ['hash-password'], { stdin, timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

test('hash-password prints a PHC string of the password on standard input (one newline dropped)', async () => {
  const password = 'a dashboard password of some length';
  const r = await hashPasswordCli(`${password}\n`);
  assert.equal(r.code, 0, r.err);
  const phc = r.out.trim();
  assert.match(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  const parsed = parsePhc(phc);
  assert.ok(parsed.ok);
  assert.equal(await verifyPassword(password, parsed.value), true);
  assert.equal(await verifyPassword(`${password}\n`, parsed.value), false);
  // The node takes it as password_dashboard.
  const cfg = resolveConfig({
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: '127.0.0.1:8100', addrApi: '127.0.0.1:8200' }],
    dataDir: 'unused',
    secretRaft: 'raft-secret-0123456789',
    secretApi: 'api-secret-0123456789',
    passwordDashboard: phc,
  });
  assert.equal(cfg.dashboard.passwordHash, phc);
  assert.equal(cfg.dashboard.insecureCookie, false);
});

test('hash-password refuses a short password', async () => {
  const r = await hashPasswordCli('short\n');
  assert.equal(r.code, 1);
  assert.match(r.err, /at least 16 characters/);
  assert.equal(r.out, '');
});

test('a password_dashboard that is not an acceptable PHC string is a config error naming the key', () => {
  const base = {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: '127.0.0.1:8100', addrApi: '127.0.0.1:8200' }],
    dataDir: 'unused',
    secretRaft: 'raft-secret-0123456789',
    secretApi: 'api-secret-0123456789',
  };
  assert.throws(
    () => resolveConfig({ ...base, passwordDashboard: 'hunter2hunter2hunter2' }),
    (e: Error & { problems?: { key: string; message: string }[] }) =>
      e.problems?.some((p) => p.key === 'passwordDashboard' && /hash-password/.test(p.message)) === true,
  );
  assert.throws(
    () =>
      resolveConfig({
        ...base,
        passwordDashboard:
          '$argon2id$v=19$m=4194304,t=100,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc',
      }),
    /passwordDashboard.*memory/s,
  );
  assert.equal(resolveConfig(base).dashboard.passwordHash, null, 'no password: no dashboard');
});
