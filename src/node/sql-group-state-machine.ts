/**
 * The SQL Raft group's state machine: the SQLite writer in its worker thread (src/sm/sql),
 * behind the GroupStateMachine seam the RaftGroup drives.
 */

import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Entry, LogIndex, Membership, SnapshotMeta, Term } from '../raft/types.js';
import { type ApplyEntry, DEFAULT_FILE_NAME } from '../sm/sql/state-machine.js';
import { SqlWorker, type SqlWorkerOptions } from '../sm/sql/worker-client.js';
import type { GroupStateMachine } from './seams.js';

export class SqlGroupStateMachine implements GroupStateMachine {
  private constructor(
    readonly worker: SqlWorker,
    private readonly dbPath: string,
  ) {}

  static async open(dir: string, options: SqlWorkerOptions = {}): Promise<SqlGroupStateMachine> {
    const dbPath = join(dir, options.fileName ?? DEFAULT_FILE_NAME);
    return new SqlGroupStateMachine(await SqlWorker.start(dir, options), dbPath);
  }

  /** The database file's size (its WAL is folded in by checkpoints and is bounded). */
  sizeBytes(): number {
    try {
      return statSync(this.dbPath).size;
    } catch {
      return 0;
    }
  }

  appliedIndex(): LogIndex {
    return this.worker.appliedIndex();
  }

  /** The group's log time as applied here (the largest command time committed). */
  clockMs(): number {
    return this.worker.appliedClockMs();
  }

  apply(entries: readonly Entry[], wanted: readonly boolean[]): Promise<readonly unknown[]> {
    const batch: ApplyEntry[] = entries.map((e) =>
      e.kind === 'command'
        ? { index: e.index, term: e.term, data: e.data }
        : e.kind === 'config'
          ? {
              index: e.index,
              term: e.term,
              data: null,
              membership: new TextEncoder().encode(JSON.stringify(e.membership)),
            }
          : { index: e.index, term: e.term, data: null },
    );
    return this.worker.applyBatch(batch, wanted);
  }

  async snapshot(path: string): Promise<{ index: LogIndex; term: Term; membership: Membership | null }> {
    const info = await this.worker.snapshot(path);
    const membership =
      info.membership === null ? null : (JSON.parse(new TextDecoder().decode(info.membership)) as Membership);
    return { index: info.index, term: info.term, membership };
  }

  async restore(path: string, _meta: SnapshotMeta): Promise<void> {
    await this.worker.restore(path);
  }

  async reset(): Promise<void> {
    await this.worker.reset();
  }

  interrupt(): void {
    this.worker.interrupt();
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
