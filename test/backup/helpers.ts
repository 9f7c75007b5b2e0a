/** Fixtures of the backup tests (not a test file itself). */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KeyRing } from '../../src/backup/key-ring.js';
import { logIndex, term } from '../../src/raft/types.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, exec } from '../sm/sql-test-helpers.js';

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

export async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += size) yield bytes.subarray(off, off + size);
}

export async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const p of it) out.push(Buffer.from(p));
  return Buffer.concat(out);
}
