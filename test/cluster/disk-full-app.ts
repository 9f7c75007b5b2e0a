/**
 * An application embedding a one-node cluster (the node on its own thread, as by default) whose
 * disk fills up: run by disk-full.test.ts under the ENOSPC shim, with the flag file as argv[2]
 * and the data_dir as argv[3]. It writes, fills its disk (creates the flag), then calls the API
 * and prints one JSON line: each call's outcome (ok or the error code and message) and how long
 * it took, how a listener opened before ended, how soon a lock held learned it was lost, and
 * whether onFatal was called.
 */
import { writeFileSync } from 'node:fs';
import { start } from '../../src/index.js';
import { freePorts } from '../support/free-ports.js';

const [flag, dataDir] = process.argv.slice(2) as [string, string];
const [raft, api] = await freePorts(2);
let fatal: string | null = null;
const db = await start(
  {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
    dataDir,
    secretRaft: 'r'.repeat(32),
    secretApi: 'a'.repeat(32),
  },
  { onFatal: (e) => (fatal = e.message) },
);
await db.execute('CREATE TABLE t (v INTEGER)');
await db.execute('INSERT INTO t VALUES (1)');
// A listener of the application's own: how it ends when the node stops.
const listener = (async () => {
  const t0 = performance.now();
  try {
    for await (const _ of db.listen('events')) {
      // none are sent
    }
    return { ok: true, ms: Math.round(performance.now() - t0) };
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return { ok: false, code: err.code, message: err.message, ms: Math.round(performance.now() - t0) };
  }
})();
// A lock held by the application, with a long lease: how soon it learns that it lost it.
const lock = await db.lock('job', { leaseMs: 30_000 });
const leaderBefore = db.isLeader();
writeFileSync(flag, '');
const filledAt = performance.now();
const lockLost = new Promise<{ lostAfterMs: number; reason: string }>((resolve) =>
  lock.lost.addEventListener('abort', () =>
    resolve({
      lostAfterMs: Math.round(performance.now() - filledAt),
      reason: String((lock.lost.reason as Error | undefined)?.message),
    }),
  ),
);

const calls: Record<string, () => Promise<unknown>> = {
  write: () => db.execute('INSERT INTO t VALUES (2)'),
  writeAfter: () => db.execute('INSERT INTO t VALUES (3)'),
  cachePut: () => db.cache('c').put('k', 1),
  read: () => db.query('SELECT count(*) AS n FROM t'),
};
const out: Record<string, unknown> = {};
for (const [name, call] of Object.entries(calls)) {
  const t0 = performance.now();
  try {
    const value = await call();
    out[name] = { ok: true, value, ms: Math.round(performance.now() - t0) };
  } catch (e) {
    const err = e as { code?: string; message?: string };
    out[name] = { ok: false, code: err.code, message: err.message, ms: Math.round(performance.now() - t0) };
  }
}
out.listen = await Promise.race([
  listener,
  new Promise((r) => setTimeout(() => r({ ok: false, code: 'still listening' }), 10_000)),
]);
out.lock = await Promise.race([
  lockLost,
  new Promise((r) => setTimeout(() => r({ lostAfterMs: null, reason: 'still held after 25 s' }), 25_000)),
]);
out.isLeader = { before: leaderBefore, after: db.isLeader() };
out.fatal = fatal;
process.stdout.write(`REPORT ${JSON.stringify(out)}\n`);
await db.close().catch(() => {});
