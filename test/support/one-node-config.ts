/**
 * The configuration of a one-node cluster on free loopback ports with its data under `root`
 * (tests that start a single embedded node).
 */
import { join } from 'node:path';
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
