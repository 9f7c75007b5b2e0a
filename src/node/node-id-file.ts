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
 *
 * The file also records the data format of the directory (`data-format N` on a second line),
 * raised when a build writes log entries an older build would misread: format 2 since SQL
 * writes carry `valueBytesMax` (command.ts), which a build before it skips as malformed, so a
 * replica started on such a directory with an older build diverged in silence. An older build
 * refuses the two-line file (it takes only a bare id: HQL_INVALID_CONFIG, before anything of
 * its state is read), and this one refuses a format newer than its own. Format 3 since a
 * write's session carries its proposer's `session_protect_ms` (`protectMs`), which a build of
 * format 2 reads as a malformed command. Format 4 since a cache group lock waiter carries a wait
 * lease (`waitLeaseMs`, renewed by `lockWaitRenew`), which a build of format 3 reads as a
 * malformed command. A file of an older format (format 1: a bare id) is rewritten with the
 * current format when this build opens it.
 */
import { join } from 'node:path';
import { HiqliteError } from '../lib/errors.js';
import { readFileOrNull, writeFileAtomic } from '../storage/atomic-file.js';

export const NODE_ID_FILE = 'node_id';
/** The data format this build writes (see above). */
export const DATA_FORMAT = 4;

/** Records `nodeId` and the data format in `dataDir`, or checks that the directory is this node's and readable by this build. */
export async function claimNodeId(dataDir: string, nodeId: number): Promise<void> {
  const path = join(dataDir, NODE_ID_FILE);
  const bytes = await readFileOrNull(path);
  if (bytes === null) return writeClaim(dataDir, nodeId);
  const text = bytes.toString('utf8').trim();
  const [idLine = '', formatLine, ...rest] = text.split('\n').map((l) => l.trim());
  const recorded = /^[1-9][0-9]{0,15}$/.test(idLine) ? Number(idLine) : null;
  const format = formatLine === undefined ? 1 : parseFormat(formatLine);
  if (recorded === null || format === null || rest.length > 0) {
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
  if (format > DATA_FORMAT) {
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `data_dir ${dataDir} was written by a newer hiqlite (data format ${format}; this build reads up to ${DATA_FORMAT}): its log holds entries this build would misread, and a data directory cannot be downgraded. Run the newer version, or empty data_dir and restore a backup taken by this version`,
      { retryable: false },
    );
  }
  if (format < DATA_FORMAT) await writeClaim(dataDir, nodeId);
}

function parseFormat(line: string): number | null {
  const m = /^data-format ([1-9][0-9]{0,5})$/.exec(line);
  return m === null ? null : Number(m[1]);
}

function writeClaim(dataDir: string, nodeId: number): Promise<void> {
  return writeFileAtomic(
    dataDir,
    NODE_ID_FILE,
    new TextEncoder().encode(`${nodeId}\ndata-format ${DATA_FORMAT}\n`),
  );
}
