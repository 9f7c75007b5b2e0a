/**
 * `<data_dir>/joining`: this node is joining the cluster (it started knowing no membership it can
 * trust: a new node, or one that lost its state). Until it has applied the entry that added it
 * (back) as a learner, it abstains from votes and elections (`RaftConfig.abstain`): it may have
 * voted in a term it no longer remembers, and the log or snapshot it receives first may list it
 * as a voter before the leader removed and re-added it. The file holds that entry's index once
 * the leader has answered, so a restart in the middle of the join keeps abstaining, or goes on
 * from where the join was; it is removed once the join is complete.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogIndex } from '../raft/types.js';
import { fsyncDir, readFileOrNull, writeFileAtomic } from '../storage/atomic-file.js';

export const JOINING_FILE = 'joining';

/** A join in progress: the index of the entry that added this node, once known. */
export interface JoiningState {
  readonly joinedAt: LogIndex | null;
}

/** The join in progress recorded in `<dataDir>/joining`, or null when there is none. */
export async function readJoining(dataDir: string): Promise<JoiningState | null> {
  const bytes = await readFileOrNull(join(dataDir, JOINING_FILE));
  if (bytes === null) return null;
  const text = bytes.toString('utf8').trim();
  const index = Number(text);
  // A damaged file is a join whose index is unknown: the node joins again (always safe).
  return { joinedAt: text !== '' && Number.isSafeInteger(index) && index > 0 ? (index as LogIndex) : null };
}

export async function writeJoining(dataDir: string, state: JoiningState): Promise<void> {
  const text = state.joinedAt === null ? '' : `${state.joinedAt}\n`;
  await writeFileAtomic(dataDir, JOINING_FILE, new TextEncoder().encode(text));
}

export async function clearJoining(dataDir: string): Promise<void> {
  await rm(join(dataDir, JOINING_FILE), { force: true });
  await fsyncDir(dataDir);
}

/** Whether a node in `state` abstains, having applied `applied`. */
export function abstains(state: JoiningState | null, applied: LogIndex): boolean {
  return state !== null && (state.joinedAt === null || applied < state.joinedAt);
}
