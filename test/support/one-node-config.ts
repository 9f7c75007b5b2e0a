/**
 * The configuration of a one-node cluster on free loopback ports with its data under `root`
 * (tests that start a single embedded node).
 */
import { join } from 'node:path';
import { type ConnectOptions, connect, type HiqliteClient, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { freePorts } from './free-ports.js';

export const TEST_SECRETS = {
  secretRaft: 'raft-secret-for-tests-0123456789',
  secretApi: 'api-secret-for-tests-0123456789',
} as const;

export async function oneNodeConfig(root: string, extra: Partial<NodeConfig> = {}): Promise<NodeConfig> {
  const [raft, api] = await freePorts(2);
  return {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
    dataDir: join(root, 'data'),
    ...TEST_SECRETS,
    ...extra,
  };
}

/** How a test reaches a one-node cluster: the embedded node on either thread, or a remote client. */
export type OneNodeClientKind = 'embedded worker' | 'embedded main' | 'remote';

/**
 * Starts the node of `cfg` and gives the client `who` uses (the node itself when embedded), with
 * one close() for both. `connectOptions` go to the remote client.
 */
export async function startOneNodeAs(
  who: OneNodeClientKind,
  cfg: NodeConfig,
  connectOptions: Partial<ConnectOptions> = {},
): Promise<{ db: HiqliteClient; close: () => Promise<void> }> {
  const node = await start(cfg, { thread: who === 'embedded main' ? 'main' : 'worker' });
  if (who !== 'remote') return { db: node, close: () => node.close() };
  const client = await connect({
    nodes: [cfg.nodes[0]!.addrApi],
    secretApi: TEST_SECRETS.secretApi,
    ...connectOptions,
  });
  return {
    db: client,
    close: async () => {
      await client.close();
      await node.close();
    },
  };
}
