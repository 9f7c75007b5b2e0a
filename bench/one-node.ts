/**
 * A one-node cluster in a temporary folder on free loopback ports, for the benchmarks that
 * measure one node alone (crossing.ts, cache-get.ts); `close()` stops it and removes the folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HiqliteNode, type StartOptions, start } from '../src/index.js';
import { freePorts } from '../test/support/free-ports.js';

export async function startOneNode(
  prefix: string,
  options: StartOptions,
): Promise<{ db: HiqliteNode; close: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const [raft, api] = await freePorts(2);
  try {
    const db = await start(
      {
        nodeId: 1,
        nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
        dataDir: join(root, 'data'),
        secretRaft: 'raft-secret-for-bench-0123456789',
        secretApi: 'api-secret-for-bench-0123456789',
      },
      options,
    );
    return {
      db,
      close: async () => {
        await db.close();
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
}
