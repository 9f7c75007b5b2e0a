/**
 * An application that embeds a node (`start()`) and drives its cache API on command: the process
 * of the cache cluster tests (cache-app-process.ts).
 *
 *   node --import tsx test/cluster/cache-app.ts <node.toml> <worker|main>
 *
 * Prints `READY <nodeId>` once the node is a member, then reads one JSON request a line on stdin,
 * `{ id, op, ... }`, served concurrently, each answered with `R {"id":…,"ok":…,"value"|"error":…}`.
 * Listeners print each notification as `N {"listener":…,"channel":…,"payload":…,"index":…}`, and
 * `L {"listener":…,"code":…,"missed":…}` when they end with an error. bigint values are strings.
 */
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import type { DistributedLock } from '../../src/client/cache-client.js';
import { cacheMirrorOf } from '../../src/client/worker-node.js';
import { HiqliteError, loadTomlConfig, start } from '../../src/index.js';

const [configFile, thread] = process.argv.slice(2);
if (configFile === undefined || (thread !== 'worker' && thread !== 'main')) {
  process.stderr.write('usage: cache-app.ts <node.toml> <worker|main>\n');
  process.exit(2);
}

const logger = pino({ level: process.env.HQL_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const db = await start(loadTomlConfig(configFile, process.env), { logger, thread });
process.stdout.write(`READY ${db.nodeId}\n`);

const locks = new Map<number, DistributedLock>();

type Req = Record<string, unknown> & { id: number; op: string };

async function handle(r: Req): Promise<unknown> {
  const s = (k: string) => r[k] as string;
  switch (r.op) {
    case 'put':
      await db
        .cache(s('cache'))
        .put(s('key'), r.value, r.ttlMs === undefined ? {} : { ttlMs: r.ttlMs as number });
      return null;
    case 'get':
      return db.cache(s('cache')).get(s('key'), { consistency: (r.consistency as 'local') ?? 'local' });
    case 'getRemove':
      return db.cache(s('cache')).getRemove(s('key'));
    case 'entries':
      return db.cache(s('cache')).entries();
    case 'counterAdd':
      return String(await db.counter(s('counter')).add(s('key'), BigInt(s('delta'))));
    case 'counterGet': {
      const v = await db.counter(s('counter')).get(s('key'), { consistency: 'linearizable' });
      return v === null ? null : String(v);
    }
    case 'notify':
      return db.notify(s('channel'), r.payload);
    case 'listen': {
      const name = s('listener');
      const it = db.listen(r.channel === undefined ? undefined : s('channel'));
      void (async () => {
        try {
          for await (const n of it) {
            process.stdout.write(`N ${JSON.stringify({ listener: name, ...n })}\n`);
          }
        } catch (e) {
          const err = e as HiqliteError & { missed?: number };
          process.stdout.write(
            `L ${JSON.stringify({ listener: name, code: err.code, missed: err.missed })}\n`,
          );
        }
      })();
      return null;
    }
    case 'lock': {
      const lock = await db.lock(s('key'), {
        leaseMs: (r.leaseMs as number) ?? 10_000,
        ...(r.waitMs === undefined ? {} : { waitMs: r.waitMs as number }),
      });
      locks.set(lock.token, lock);
      return lock.token;
    }
    case 'tryLock': {
      const lock = await db.tryLock(s('key'), { leaseMs: (r.leaseMs as number) ?? 10_000 });
      if (lock === null) return null;
      locks.set(lock.token, lock);
      return lock.token;
    }
    case 'lockState': {
      // Whether a lock held here was lost, and why (`lost` checks the lease when read).
      const lock = locks.get(r.token as number);
      if (lock === undefined) return null;
      const reason = lock.lost.reason as HiqliteError | undefined;
      return { lost: lock.lost.aborted, code: reason?.code ?? null };
    }
    case 'release': {
      const lock = locks.get(r.token as number);
      locks.delete(r.token as number);
      await lock?.release();
      return null;
    }
    case 'mirror':
      // The cache mirror's status and both replicas' digests (null: no mirror).
      return cacheMirrorOf(db, { digest: true });
    // SQL through the same node (a cache-only node refuses it: HQL_SQLITE_DISABLED).
    case 'execute':
      return (await db.execute(s('sql'))).rowsAffected;
    case 'query':
      return db.query(s('sql'), [], r.timeoutMs === undefined ? {} : { timeoutMs: r.timeoutMs as number });
    case 'metrics': {
      const m = await db.metrics();
      return JSON.parse(JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
    }
    case 'exit':
      await db.close();
      return null;
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const r = JSON.parse(line) as Req;
  handle(r).then(
    (value) => {
      process.stdout.write(`R ${JSON.stringify({ id: r.id, ok: true, value: value ?? null })}\n`);
      if (r.op === 'exit') process.exit(0);
    },
    (e: unknown) => {
      const code = e instanceof HiqliteError ? e.code : 'ERROR';
      process.stdout.write(
        `R ${JSON.stringify({ id: r.id, ok: false, error: { code, message: String((e as Error).message) } })}\n`,
      );
    },
  );
});
rl.on('close', () => {
  void db
    .close()
    .catch(() => {})
    .finally(() => process.exit(0));
});
