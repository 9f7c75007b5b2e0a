/**
 * Which node a data directory belongs to: `<data_dir>/node_id`, written at the first start and
 * checked at every start after it. A data directory holds a node's Raft state — its vote, its
 * log, the entries it acknowledged — and that state is only true of the node that wrote it: node
 * 2 started on node 3's directory (a swapped volume, a copied directory, an edited config) would
 * vote with node 3's vote and serve node 3's log as its own, two nodes of one cluster sharing an
 * identity. It is refused, naming both ids.
 *
 * A directory of an earlier version (no file) is adopted: its state was written by the node that
 * now opens it, as far as anyone can tell.
 */
import { join } from 'node:path';
import { HiqliteError } from '../lib/errors.js';
import { readFileOrNull, writeFileAtomic } from '../storage/atomic-file.js';

export const NODE_ID_FILE = 'node_id';

/** Records `nodeId` in `dataDir`, or checks that the directory is this node's. */
export async function claimNodeId(dataDir: string, nodeId: number): Promise<void> {
  const path = join(dataDir, NODE_ID_FILE);
  const bytes = await readFileOrNull(path);
  if (bytes === null) {
    await writeFileAtomic(dataDir, NODE_ID_FILE, new TextEncoder().encode(`${nodeId}\n`));
    return;
  }
  const text = bytes.toString('utf8').trim();
  const recorded = /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : null;
  if (recorded === null) {
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `${path} does not hold a node id (it holds ${JSON.stringify(text.slice(0, 40))}): write this node's id into it (${nodeId}) if data_dir is this node's, or empty data_dir to start node ${nodeId} here as a new node`,
      { retryable: false },
    );
  }
  if (recorded !== nodeId) {
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `data_dir ${dataDir} holds the state of node ${recorded} (${path}), and this is node ${nodeId}: ` +
        `give each node its own data_dir; to start node ${nodeId} here as a new node, empty data_dir first ` +
        '(it rejoins and gets its data from the leader)',
      { retryable: false },
    );
  }
}
