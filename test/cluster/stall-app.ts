/**
 * An application that embeds a node (`start()`) and, on command, blocks its own event loop: the
 * process of event-loop-stall.test.ts and bench/cluster.ts's stall scenario.
 *
 *   node --import tsx test/cluster/stall-app.ts <node.toml> <worker|main>
 *
 * Prints `READY <nodeId>` once the node is a member, then reads commands on stdin, one a line,
 * and answers each with one line on stdout:
 *   busy <ms>    a busy loop on the event loop for <ms>     → DONE busy <elapsedMs>
 *   query <ms>   one synchronous local query of about <ms>  → DONE query <elapsedMs>
 *   status       → STATUS {"isLeader":…,"term":…,"leaderId":…}
 *   exit         closes the node                            → BYE
 * The node's log records go to stderr.
 */
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { loadTomlConfig, start } from '../../src/index.js';

const [configFile, thread] = process.argv.slice(2);
if (configFile === undefined || (thread !== 'worker' && thread !== 'main')) {
  process.stderr.write('usage: stall-app.ts <node.toml> <worker|main>\n');
  process.exit(2);
}

const logger = pino({ level: process.env.HQL_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const node = await start(loadTomlConfig(configFile, process.env), { logger, thread });
await node.execute('CREATE TABLE IF NOT EXISTS stall_probe (n INTEGER)');
await node.execute('INSERT INTO stall_probe (n) VALUES (1)');
process.stdout.write(`READY ${node.nodeId}\n`);

/** A recursive CTE of `rows` rows, counted: SQLite runs it on the calling thread, uninterrupted. */
const COUNT_SQL =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT ?) SELECT count(*) AS n FROM c';

async function timedQuery(rows: number): Promise<number> {
  const t0 = performance.now();
  await node.query(COUNT_SQL, [rows]);
  return performance.now() - t0;
}

async function handle(line: string): Promise<string> {
  const [cmd, arg] = line.trim().split(/\s+/);
  switch (cmd) {
    case 'busy': {
      const ms = Number(arg);
      const t0 = performance.now();
      while (performance.now() - t0 < ms) {
        // the application's own work, on its event loop
      }
      return `DONE busy ${Math.round(performance.now() - t0)}`;
    }
    case 'query': {
      const ms = Number(arg);
      // Calibrated on this machine now (a probe of at least 300 ms), then one query of about `ms`.
      let probeRows = 100_000;
      let probeMs = await timedQuery(probeRows);
      for (let i = 0; i < 10 && probeMs < 300; i++) {
        probeRows *= 4;
        probeMs = await timedQuery(probeRows);
      }
      let rows = Math.ceil((probeRows * ms * 1.2) / Math.max(1, probeMs));
      let tookMs = await timedQuery(rows);
      // A machine under load runs it faster than the probe said: longer, until one is `ms`.
      for (let i = 0; i < 5 && tookMs < ms; i++) {
        rows = Math.ceil((rows * ms * 1.3) / Math.max(1, tookMs));
        tookMs = await timedQuery(rows);
      }
      return `DONE query ${Math.round(tookMs)}`;
    }
    case 'status': {
      const m = await node.metrics();
      return `STATUS ${JSON.stringify({ isLeader: node.isLeader(), term: m.term, leaderId: m.leaderId })}`;
    }
    case 'exit':
      await node.close();
      return 'BYE';
    default:
      return `ERROR unknown command ${line}`;
  }
}

// Commands run one at a time, in order.
let chain = Promise.resolve();
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  chain = chain.then(async () => {
    const answer = await handle(line).catch((e: unknown) => `ERROR ${String(e)}`);
    process.stdout.write(`${answer}\n`);
    if (answer === 'BYE') process.exit(0);
  });
});
rl.on('close', () => {
  chain = chain.then(async () => {
    await node.close().catch(() => {});
    process.exit(0);
  });
});
