/**
 * `hiqlite serve`: one node in this process until SIGTERM / SIGINT / SIGHUP, then a graceful shutdown (a
 * leader hands over first), exit code 0; exit code 1 if it hangs past the bounds of its waits
 * (4 × shutdown_timeout_ms) and 10 s more.
 */
import { pino } from 'pino';
import { start } from '../client/embedded.js';
import {
  CLI_STOP_SIGNALS,
  onShutdownSignal,
  releaseStopSignals,
  SHUTDOWN_GRACE_MS,
} from '../client/signals.js';
import { HiqliteError } from '../lib/errors.js';
import { ConfigError, loadTomlConfig, type NodeConfig, resolveConfig } from '../node/config/config.js';
import { logLevelFromEnv } from '../node/log-level.js';

/** How often a node that is not yet a member of the cluster says that it is still waiting. */
const JOIN_PROGRESS_INTERVAL_MS = 5000;

export async function runServe(o: { config: string; nodeId?: number }): Promise<void> {
  const logger = pino({ level: logLevelFromEnv('info') });
  const loaded = loadTomlConfig(o.config, process.env, { onWarning: (w) => logger.warn(w) });
  const config = o.nodeId === undefined ? loaded : withNodeId(loaded, o.nodeId, o.config);

  // Until start() resolves the node is opening its data or waiting to join (up to its join
  // timeout): a stop signal cancels start(), which closes what it opened and unlocks the data
  // directory, and the process exits 0, saying so.
  const cancel = new AbortController();
  const stopWhileStarting = (signal: NodeJS.Signals) => {
    process.stderr.write(
      `hiqlite: received ${signal} while node ${config.nodeId} was still starting (not serving yet): stopping\n`,
    );
    cancel.abort();
  };
  // `on`, not `once`: a repeated signal must not find the default action (an exit at once).
  for (const s of CLI_STOP_SIGNALS) process.on(s, stopWhileStarting);
  releaseStopSignals();
  let waitedMs = 0;
  const progress = setInterval(() => {
    waitedMs += JOIN_PROGRESS_INTERVAL_MS;
    logger.info(
      { node: config.nodeId, waitedMs },
      // Said for both: a restarted member waits for a quorum to elect a leader; a new node (or one
      // that lost its state) for the leader to add it. Start knows which only once it is over.
      'still starting: waiting for a leader (a member that restarted needs a majority of `nodes` running and reachable to elect one; a new node waits for the leader to add it)',
    );
  }, JOIN_PROGRESS_INTERVAL_MS);
  let node: Awaited<ReturnType<typeof start>>;
  try {
    node = await start(config, {
      logger,
      signal: cancel.signal,
      // A process of its own has no application to block: the node stays on the main thread.
      thread: 'main',
      // A node that cannot go on exits, so that its supervisor restarts it and recovery runs.
      onFatal: (e) => {
        const code = e instanceof HiqliteError ? `${e.code}: ` : '';
        process.stderr.write(`hiqlite: the node stopped serving (${code}${e.message}); exiting\n`);
        process.exit(1);
      },
    });
  } catch (e) {
    if (!cancel.signal.aborted) throw e;
    process.exit(0);
  } finally {
    clearInterval(progress);
  }
  process.stdout.write(`READY node ${node.nodeId}\n`);
  // A shutdown waits at most shutdown_timeout_ms four times (the writes and requests in flight,
  // the cache group's close, the batch being applied and then its interruption); only a node that
  // hangs past those and the usual grace is made to exit (code 1).
  const graceMs = 4 * resolveConfig(config).shutdownTimeoutMs + SHUTDOWN_GRACE_MS;
  onShutdownSignal(
    async () => {
      await node.shutdown();
    },
    graceMs,
    CLI_STOP_SIGNALS,
  );
  // Removed only now: with no listener for a moment a signal would kill the process (143) or be
  // dropped (holdStopSignals in src/client/signals.ts).
  for (const s of CLI_STOP_SIGNALS) process.off(s, stopWhileStarting);
  // A stop asked for while start() was finishing (too late to cancel it): the node shuts down.
  if (cancel.signal.aborted) process.kill(process.pid, 'SIGTERM');
}

/**
 * The file's configuration with `--node-id` in place of its `node_id`, checked here: start()
 * would name the problems of the override by their code names (`nodeId: 5 is not the id of any
 * entry in nodes`), not by the option the user typed, nor the file.
 */
function withNodeId(loaded: NodeConfig, nodeId: number, file: string): NodeConfig {
  const config = { ...loaded, nodeId };
  try {
    resolveConfig(config);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const names: Record<string, string> = { nodeId: '--node-id', learnerOnly: 'learner_only' };
    throw new ConfigError(
      e.problems.map((p) => ({ key: names[p.key] ?? p.key, message: p.message })),
      file,
    );
  }
  return config;
}
