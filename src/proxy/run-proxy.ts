/**
 * `hiqlite proxy --config FILE`: one proxy until SIGTERM / SIGINT (then it closes its
 * connections and exits 0). Prints `READY proxy <address>` once it listens.
 */
import { pino } from 'pino';
import { CLI_STOP_SIGNALS, onShutdownSignal, SHUTDOWN_GRACE_MS } from '../client/signals.js';
import { logLevelFromEnv } from '../node/log-level.js';
import { HiqliteProxy } from './proxy.js';
import { loadProxyConfig } from './proxy-config.js';

export async function runProxy(o: { config: string }): Promise<void> {
  const logger = pino({ level: logLevelFromEnv('info') });
  const config = loadProxyConfig(o.config, process.env);
  const proxy = new HiqliteProxy(config, logger);
  const bound = await proxy.start();
  logger.info(
    { listen: `${bound.host}:${bound.port}`, address: config.addrApi, nodes: config.nodes },
    'proxy listening',
  );
  process.stdout.write(`READY proxy ${config.addrApi}\n`);
  // The requests it forwards may take request_timeout_ms to get their answers (its close drains
  // them); the rest gets the usual grace on top.
  onShutdownSignal(() => proxy.close(), proxy.drainMs + SHUTDOWN_GRACE_MS, CLI_STOP_SIGNALS);
}
