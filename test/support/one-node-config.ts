/**
 * The configuration of a one-node cluster on free loopback ports with its data under `root`
 * (tests that start a single embedded node).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import {
  type ConnectOptions,
  connect,
  type HiqliteClient,
  type HiqliteNode,
  start,
} from '../../src/index.js';
import type { NodeConfig, NodeEntry } from '../../src/node/config/config.js';
import { freePorts } from './free-ports.js';

export const TEST_SECRETS = {
  secretRaft: 'raft-secret-for-tests-0123456789',
  secretApi: 'api-secret-for-tests-0123456789',
} as const;

/** A NodeConfig whose nodes are entries (not the string form), for tests that read them back. */
export type EntriesConfig = NodeConfig & { nodes: NodeEntry[] };

export async function oneNodeConfig(
  root: string,
  extra: Partial<EntriesConfig> = {},
): Promise<EntriesConfig> {
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
  cfg: EntriesConfig,
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

/**
 * For a describe block: a one-node cluster on its own thread and a remote client of it, started
 * before its tests and closed (their folder removed) after them. Read `node` and `remote` in tests.
 */
export function nodeAndRemote(
  prefix: string,
  extra: Partial<EntriesConfig> = {},
): { readonly node: HiqliteNode; readonly remote: HiqliteClient; readonly cfg: EntriesConfig } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const f: { node?: HiqliteNode; remote?: HiqliteClient; cfg?: EntriesConfig } = {};
  before(async () => {
    const cfg = await oneNodeConfig(root, extra);
    f.cfg = cfg;
    f.node = await start(cfg, { thread: 'worker' });
    f.remote = await connect({ nodes: [cfg.nodes[0]!.addrApi], secretApi: TEST_SECRETS.secretApi });
  });
  after(async () => {
    await f.remote?.close();
    await f.node?.close();
    rmSync(root, { recursive: true, force: true });
  });
  return {
    get node() {
      return f.node as HiqliteNode;
    },
    get remote() {
      return f.remote as HiqliteClient;
    },
    get cfg() {
      return f.cfg as EntriesConfig;
    },
  };
}
