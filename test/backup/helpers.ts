/** Fixtures of the backup tests (not a test file itself). */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { CopyResult } from '../../src/backup/copy-steps.js';
import { copyDatabase } from '../../src/backup/db-copy.js';
import { KeyRing } from '../../src/backup/key-ring.js';
import { logIndex, term } from '../../src/raft/types.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, exec } from '../sm/sql-test-helpers.js';
import { backupStreamOf } from '../support/backup-stream.js';

export function ring(active: string, ...ids: string[]): { ring: KeyRing; keys: Map<string, Uint8Array> } {
  const keys = new Map<string, Uint8Array>();
  for (const id of new Set([active, ...ids])) keys.set(id, new Uint8Array(randomBytes(32)));
  return { ring: KeyRing.of(keys, active), keys };
}

/**
 * A hiqlite database in `dir` (the state machine's own file, with `_hq_meta` and a migration
 * record) holding `rows` rows of about 200 bytes; returns its path and the last applied index.
 */
export function makeDatabase(dir: string, rows: number): { path: string; index: number } {
  const sm = SqlStateMachine.open(dir);
  try {
    let i = 0;
    const apply = (sql: string) => {
      i++;
      sm.applyBatch([{ index: logIndex(i), term: term(2), data: cmd(exec(sql), { seed: i }) }]);
    };
    apply('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    for (let done = 0; done < rows; done += 1000) {
      const n = Math.min(1000, rows - done);
      apply(
        `INSERT INTO t (v) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT ${n}) SELECT hex(randomblob(100)) FROM c`,
      );
    }
    return { path: join(dir, 'hiqlite.db'), index: i };
  } finally {
    sm.close();
  }
}

/**
 * A backup of the database at `dbPath` as a node takes it (a consistent copy in `workDir`, then
 * compressed and encrypted): its name (node 1, taken at `createdMs`), the copy's facts, and the
 * file's bytes to hand to a target (read them once).
 */
export async function backupOf(
  dbPath: string,
  o: { workDir: string; keys: KeyRing; createdMs: number; chunkBytes?: number; gzipLevel?: number },
): Promise<{ name: string; info: CopyResult; body: AsyncIterable<Buffer> }> {
  const copyPath = join(o.workDir, 'copy.sqlite');
  const info = await copyDatabase({ dbPath, outPath: copyPath, busyTimeoutMs: 1000 });
  const { name, body } = backupStreamOf(copyPath, info, o);
  return { name, info, body };
}

export async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += size) yield bytes.subarray(off, off + size);
}

export async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const p of it) out.push(Buffer.from(p));
  return Buffer.concat(out);
}
