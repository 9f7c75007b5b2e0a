/**
 * Before node 1 installs a backup (src/backup/restore.ts): are other configured nodes running as members of
 * a cluster? A restore gives node 1 a new cluster of which it is the only voter; the nodes not
 * restored go on as the old cluster, and two clusters then take writes under one `nodes` list
 * (found from outside: a client listing all three nodes wrote to one cluster and read from the
 * other). The documented way restores every node of the stopped cluster: the others discard
 * their state at their restore and know no cluster, so they pass.
 *
 * Each other node is asked what it knows (`leader`, over its API port, as node 1 with
 * `secret_raft`, as the bootstrap proof asks). A node that does not answer within the deadline
 * counts as stopped: the check catches the mistake, not a node hidden behind a partition (the
 * cluster ids keep the two clusters' nodes apart then, and clients pin theirs).
 */
import { HiqliteError } from '../lib/errors.js';
import { ApiConnection } from '../transport/api-connection.js';
import type { SqlNodeConfig } from './config/config.js';

export interface RunningPeer {
  readonly id: number;
  readonly clusterId: string | null;
}

/** How long each node may take to answer. */
export const RUNNING_PEER_TIMEOUT_MS_DEFAULT = 3000;

/** The other nodes that answer as members of a cluster (a cluster id or membership). */
export async function runningPeers(
  cfg: SqlNodeConfig,
  timeoutMs = RUNNING_PEER_TIMEOUT_MS_DEFAULT,
): Promise<RunningPeer[]> {
  const answers = await Promise.all(
    cfg.nodes
      .filter((n) => n.id !== cfg.nodeId)
      .map(async (n): Promise<RunningPeer | null> => {
        const a = await askNode(cfg, n.id, timeoutMs);
        if (a === null) return null; // not running, or not reachable: nothing to split from
        return a.member || a.clusterId !== null ? { id: n.id, clusterId: a.clusterId } : null;
      }),
  );
  return answers.filter((a): a is RunningPeer => a !== null);
}

/**
 * What node `id` knows of its cluster (`leader`, over its API port, as this node with
 * `secret_raft`): whether it is a member, and its cluster id; null when it does not answer
 * within `timeoutMs` (not running, not reachable, refused).
 */
export async function askNode(
  cfg: SqlNodeConfig,
  id: number,
  timeoutMs: number,
): Promise<{ readonly member: boolean; readonly clusterId: string | null } | null> {
  const n = cfg.nodes.find((x) => x.id === id);
  if (n === undefined) return null;
  let conn: ApiConnection | null = null;
  try {
    conn = await ApiConnection.open({
      host: n.api.host,
      port: n.api.port,
      secret: cfg.secretRaft,
      localId: cfg.nodeId,
      serverId: n.id,
      ...(cfg.tls.api === null ? {} : { tls: true }),
      connectTimeoutMs: timeoutMs,
      frameBytesMax: cfg.frameBytesMax,
      inflightMax: 1,
    });
    const r = await conn.request({ op: 'leader' }, timeoutMs);
    if (!r.ok) return null;
    const v = r.value as { member?: boolean | null; clusterId?: string | null };
    return { member: v.member === true, clusterId: v.clusterId ?? null };
  } catch {
    return null;
  } finally {
    conn?.close();
  }
}

/** HQL_CLUSTER_MISMATCH: node 1 is not restored while `peers` run as members of a cluster. */
export function restoreWhilePeersRun(peers: readonly RunningPeer[]): HiqliteError {
  const named = peers
    .map((p) => `node ${p.id}${p.clusterId === null ? '' : ` (cluster ${p.clusterId})`}`)
    .join(', ');
  return new HiqliteError(
    'HQL_CLUSTER_MISMATCH',
    `restore refused: ${named} ${peers.length === 1 ? 'runs' : 'run'} as a member of a cluster; restoring node 1 alone would start a second cluster beside it, and both would take writes. Stop every node and restore each (hiqlite backup restore, or HQL_BACKUP_RESTORE at start on every node), then start them; nothing was changed here`,
    { retryable: false },
  );
}
