/**
 * `hiqlite serve`: one node in this process until SIGTERM / SIGINT, then a graceful shutdown (a
 * leader hands over first) within 10 s, exit code 0.
 */
import { pino } from 'pino';
import { start } from '../client/embedded.js';
import { onShutdownSignal } from '../client/signals.js';
import { loadTomlConfig } from '../node/config/config.js';

export async function runServe(o: { config: string; nodeId?: number }): Promise<void> {
  const logger = pino({ level: process.env.HQL_LOG_LEVEL ?? 'info' });
  const loaded = loadTomlConfig(o.config, process.env, { onWarning: (w) => logger.warn(w) });
  const config = o.nodeId === undefined ? loaded : { ...loaded, nodeId: o.nodeId };
  const node = await start(config, {
    logger,
    // A node that cannot go on exits, so that its supervisor restarts it and recovery runs.
    onFatal: () => {
      process.stderr.write('hiqlite: the node stopped serving; exiting\n');
      process.exit(1);
    },
  });
  process.stdout.write(`READY node ${node.nodeId}\n`);
  onShutdownSignal(async () => {
    await node.shutdown();
  });
}
