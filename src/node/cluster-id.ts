/**
 * The cluster id: 16 random bytes (hex) fixed when node 1 bootstraps a cluster, learned by every
 * node that joins it, and kept in `<data_dir>/cluster_id`. It is a trace of membership that
 * survives the loss of the log or the database (a node that has one never bootstraps), and the
 * handshake carries it so that nodes of different clusters refuse each other.
 *
 * The file is written once, atomically, and never rewritten with another id: a node that finds
 * a peer or a leader with a different id refuses it with a logged reason instead of adopting it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFileOrNull, writeFileAtomic } from '../storage/atomic-file.js';

export const CLUSTER_ID_FILE = 'cluster_id';
const CLUSTER_ID_RE = /^[0-9a-f]{32}$/;

export function newClusterId(): string {
  return randomBytes(16).toString('hex');
}

export function isClusterId(value: unknown): value is string {
  return typeof value === 'string' && CLUSTER_ID_RE.test(value);
}

/** The id in `<dataDir>/cluster_id`, or null when there is none. Throws on a damaged file. */
export async function readClusterId(dataDir: string): Promise<string | null> {
  const bytes = await readFileOrNull(join(dataDir, CLUSTER_ID_FILE));
  if (bytes === null) return null;
  const id = bytes.toString('utf8').trim();
  if (!isClusterId(id)) {
    throw new Error(
      `${join(dataDir, CLUSTER_ID_FILE)} does not hold a cluster id (32 hex digits); restore it or remove the node's data directory to rejoin as a new node`,
    );
  }
  return id;
}

export async function writeClusterId(dataDir: string, id: string): Promise<void> {
  await writeFileAtomic(dataDir, CLUSTER_ID_FILE, new TextEncoder().encode(`${id}\n`));
}
