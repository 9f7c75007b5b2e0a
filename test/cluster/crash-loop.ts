/**
 * Crash loop on a real node process: concurrent writers insert unique rows through a remote
 * client and record every acknowledged id; the node is killed with SIGKILL at a random moment,
 * restarted, and must still hold every acknowledged row (and nothing that was never written),
 * with a SQLite database that passes `PRAGMA integrity_check`.
 *
 * Used by test/cluster/crash-loop.test.ts (a few cycles) and runnable alone for long loops:
 *   node --import tsx test/cluster/crash-loop.ts --cycles 200 [--nodes 1|3] [--seed S]
 */
import { HiqliteError } from '../../src/index.js';
import { Prng } from '../../src/lib/prng.js';
import { sleep, TestCluster } from './harness.js';

export interface CrashLoopResult {
  readonly cycles: number;
  readonly acknowledged: number;
  readonly lost: number;
  readonly unexpected: number;
}

export async function crashLoop(options: {
  cycles: number;
  nodes?: number;
  seed?: number;
  writers?: number;
  log?: (line: string) => void;
}): Promise<CrashLoopResult> {
  const rng = new Prng(options.seed ?? 1);
  const nodes = options.nodes ?? 1;
  const writers = options.writers ?? 16;
  const log = options.log ?? (() => {});
  const c = await TestCluster.create({ nodes, toml: 'logs_until_snapshot = 500' });
  const acked = new Set<number>();
  const attempted = new Set<number>();
  let nextId = 1;
  let lost = 0;
  let unexpected = 0;
  try {
    const setup = await c.client();
    await setup.execute('CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      // With several nodes the leader is the victim: the worst moment for in-flight writes.
      const victim = nodes === 1 ? 1 : await c.leader();
      const db = await c.client();
      let stop = false;
      const workers = Array.from({ length: writers }, async () => {
        while (!stop) {
          const id = nextId++;
          attempted.add(id);
          try {
            await db.execute('INSERT INTO rows (id, payload) VALUES (?, ?)', [id, `p${id}`.repeat(8)]);
            acked.add(id);
          } catch (e) {
            if (!(e instanceof HiqliteError)) throw e;
            if (stop) return;
            await sleep(20);
          }
        }
      });
      await sleep(rng.int(200, 1500));
      await c.kill(victim);
      stop = true;
      await db.close();
      await Promise.allSettled(workers);
      await c.start(victim);
      // Every acknowledged row must be there, on every node.
      for (const id of c.nodes.keys()) {
        const one = await c.client([id]);
        const rows = await one.queryConsistent<{ id: number }>('SELECT id FROM rows');
        const have = new Set(rows.map((r) => r.id));
        for (const a of acked) if (!have.has(a)) lost++;
        for (const h of have) if (!attempted.has(h)) unexpected++;
        const check = await one.query<{ integrity_check: string }>('PRAGMA integrity_check');
        if (check[0]?.integrity_check !== 'ok')
          throw new Error(`node ${id}: integrity_check ${JSON.stringify(check)}`);
        await one.close();
      }
      log(
        `cycle ${cycle}: victim ${victim}, ${acked.size} acknowledged so far, lost ${lost}, unexpected ${unexpected}`,
      );
      if (lost > 0 || unexpected > 0) break;
    }
    return { cycles: options.cycles, acknowledged: acked.size, lost, unexpected };
  } finally {
    await c.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? dflt : Number(process.argv[i + 1]);
  };
  const r = await crashLoop({
    cycles: arg('--cycles', 20),
    nodes: arg('--nodes', 1),
    seed: arg('--seed', 1),
    log: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(r.lost === 0 && r.unexpected === 0 ? 0 : 1);
}
