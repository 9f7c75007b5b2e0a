/**
 * `start(config)`: this process becomes a node of the cluster, with a local SQLite replica. By
 * default the node runs on a worker thread of its own (worker-node.ts): the application's event
 * loop can block without stopping heartbeats. `thread: 'main'` runs it on the caller's thread
 * (`hiqlite serve`, tests with a virtual clock; embedded-main.ts, loaded only then).
 */

import type { NodeConfig } from '../node/config/config.js';
import type { StartOptions } from '../node/hiqlite-node.js';
import type { HiqliteClient } from './client.js';
import { checkStartOptions } from './entry-options.js';
import { explainListenError } from './listen-error.js';
import { startInWorker } from './worker-node.js';

export interface HiqliteNode extends HiqliteClient {
  isLeader(): boolean;
  /** Graceful: a leader hands over leadership first. Same as close(). */
  shutdown(): Promise<void>;
  readonly nodeId: number;
}

/** Starts an embedded node; resolves once it is a member of the cluster. */
export async function start(config: NodeConfig, options: StartOptions = {}): Promise<HiqliteNode> {
  checkStartOptions(options);
  try {
    if ((options.thread ?? 'worker') === 'worker') return await startInWorker(config, options);
    const { startOnThisThread } = await import('./embedded-main.js');
    return await startOnThisThread(config, options);
  } catch (e) {
    throw explainListenError(e, config);
  }
}
