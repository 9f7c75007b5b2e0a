/**
 * `<data_dir>/joining`: this node is joining the cluster (it started knowing no membership it can
 * trust: a new node, or one that lost its state). Until it has applied the entry that added it
 * (back) as a learner, it abstains from votes and elections (`RaftConfig.abstain`): it may have
 * voted in a term it no longer remembers, and the log or snapshot it receives first may list it
 * as a voter before the leader removed and re-added it. The file holds that entry's index once
 * the leader has answered, so a restart in the middle of the join keeps abstaining, or goes on
 * from where the join was; it is removed once the join is complete.
 *
 * One marker per Raft group (`joining` for the SQL group, `joining_cache` for the cache group),
 * not one per node: the groups join independently. The cache group may rejoin while the SQL
 * group keeps its state (its log was lost, or `cache_storage_disk = false`, where every start
 * is a rejoin), and the SQL group may rejoin while the cache group keeps its own. One marker
 * for both would make the group that kept its state abstain for nothing (a voter lost to both
 * groups' quorums), and the first join to complete would end the other group's abstention
 * before it was added. A group kept in memory has no marker file: it has no state at a restart,
 * so it joins again and abstains again anyway; the marker lives in memory only.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogIndex } from '../raft/types.js';
import { fsyncDir, readFileOrNull, writeFileAtomic } from '../storage/atomic-file.js';
import type { GroupId } from './seams.js';

/** The SQL group's marker (and the name it had before there was one per group). */
export const JOINING_FILE = 'joining';

/** The marker file of `group` in the data directory. */
export function joiningFile(group: GroupId): string {
  return group === 'sql' ? JOINING_FILE : `${JOINING_FILE}_${group}`;
}

/** A join in progress: the index of the entry that added this node, once known. */
export interface JoiningState {
  readonly joinedAt: LogIndex | null;
}

/** The join in progress recorded in `<dataDir>/joining`, or null when there is none. */
export async function readJoining(dataDir: string, file = JOINING_FILE): Promise<JoiningState | null> {
  const bytes = await readFileOrNull(join(dataDir, file));
  if (bytes === null) return null;
  const text = bytes.toString('utf8').trim();
  const index = Number(text);
  // A damaged file is a join whose index is unknown: the node joins again (always safe).
  return { joinedAt: text !== '' && Number.isSafeInteger(index) && index > 0 ? (index as LogIndex) : null };
}

export async function writeJoining(dataDir: string, state: JoiningState, file = JOINING_FILE): Promise<void> {
  const text = state.joinedAt === null ? '' : `${state.joinedAt}\n`;
  await writeFileAtomic(dataDir, file, new TextEncoder().encode(text));
}

export async function clearJoining(dataDir: string, file = JOINING_FILE): Promise<void> {
  await rm(join(dataDir, file), { force: true });
  await fsyncDir(dataDir);
}

/** Whether a node in `state` abstains, having applied `applied`. */
export function abstains(state: JoiningState | null, applied: LogIndex): boolean {
  return state !== null && (state.joinedAt === null || applied < state.joinedAt);
}

/** How a group starts, as far as joining goes. */
export type GroupStartKind =
  /** It knows no membership and joins through the leader (new, or it lost its state). */
  | 'join'
  /** Node 1 founds the group. */
  | 'bootstrap'
  /** It keeps its state; a join a restart interrupted goes on (the marker says so). */
  | 'keep';

/** How a group starts: it knows no membership (`fresh`), or node 1 founds it (`bootstrap`). */
export function joinKind(fresh: boolean, bootstrap: boolean): GroupStartKind {
  if (bootstrap) return 'bootstrap';
  return fresh ? 'join' : 'keep';
}

/**
 * The join of one group in progress, kept in `<dir>/joining…` (`dir` null: in memory only).
 * The group's `RaftConfig.abstain` asks `abstains`; the formation code records the entry that
 * added the node (`added`) and ends the join (`complete`).
 */
export class GroupJoin {
  private constructor(
    private readonly dir: string | null,
    private readonly file: string,
    private current: JoiningState | null,
  ) {}

  static async start(group: GroupId, dir: string | null, kind: GroupStartKind): Promise<GroupJoin> {
    const file = joiningFile(group);
    if (kind === 'join') {
      const join = new GroupJoin(dir, file, { joinedAt: null });
      if (dir !== null) await writeJoining(dir, { joinedAt: null }, file);
      return join;
    }
    if (dir === null) return new GroupJoin(dir, file, null);
    if (kind === 'bootstrap') {
      await clearJoining(dir, file);
      return new GroupJoin(dir, file, null);
    }
    return new GroupJoin(dir, file, await readJoining(dir, file));
  }

  /** The join in progress, or null. */
  get state(): JoiningState | null {
    return this.current;
  }

  abstains(applied: LogIndex): boolean {
    return abstains(this.current, applied);
  }

  /** The leader answered: `index` is the entry that added this node. */
  async added(index: LogIndex): Promise<void> {
    if (this.current === null) return;
    this.current = { joinedAt: index };
    if (this.dir !== null) await writeJoining(this.dir, this.current, this.file);
  }

  /** The node is a member again (it applied the entry that added it): it votes from now on. */
  async complete(): Promise<void> {
    if (this.current === null) return;
    if (this.dir !== null) await clearJoining(this.dir, this.file);
    this.current = null;
  }
}
