/** Shared fixtures of the SQL state machine tests (not a test file itself). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import { logIndex, term } from '../../src/raft/types.js';
import { type CommandInput, encodeCommand, type ParamInput, type Session } from '../../src/sm/sql/command.js';
import type { CommandResult } from '../../src/sm/sql/result.js';
import { type ApplyEntry, SqlStateMachine } from '../../src/sm/sql/state-machine.js';

export const NOW_MS = Date.UTC(2024, 4, 6, 7, 8, 9, 123); // 2024-05-06 07:08:09.123

export function makeTempDir(prefix = 'hq-sm-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CmdOptions {
  readonly nowMs?: number;
  readonly seed?: number;
  readonly session?: Session;
  /** The proposer's `sql_value_bytes_max` stamp (CommandEnvelope.valueBytesMax); none when omitted. */
  readonly valueBytesMax?: number;
}

export function cmd(command: CommandInput, o: CmdOptions = {}): Uint8Array {
  return encodeCommand({
    command,
    nowMs: o.nowMs ?? NOW_MS,
    seed: o.seed ?? 1,
    ...(o.session === undefined ? {} : { session: o.session }),
    ...(o.valueBytesMax === undefined ? {} : { valueBytesMax: o.valueBytesMax }),
  });
}

export function exec(
  sql: string,
  params: readonly ParamInput[] | Readonly<Record<string, ParamInput>> = [],
  returning = false,
): CommandInput {
  return { type: 'execute', sql, params, returning };
}

/** Hands out consecutive log positions, like a Raft log would. */
export class Log {
  private index = 0;
  constructor(private readonly termNumber = 1) {}

  entries(...payloads: (Uint8Array | null)[]): ApplyEntry[] {
    return payloads.map((data) => ({ index: logIndex(++this.index), term: term(this.termNumber), data }));
  }

  entry(data: Uint8Array | null, membership?: Uint8Array): ApplyEntry {
    const e = { index: logIndex(++this.index), term: term(this.termNumber), data };
    return membership === undefined ? e : { ...e, membership };
  }

  get last(): number {
    return this.index;
  }
}

/** A fresh state machine in its own temp dir with its log, closed and removed after the suite. */
export function smFixture(): {
  sm: SqlStateMachine;
  log: Log;
  dir: string;
  apply: (...d: Uint8Array[]) => CommandResult[];
} {
  const { dir, cleanup } = makeTempDir();
  const sm = SqlStateMachine.open(dir);
  const log = new Log();
  after(() => {
    sm.close();
    cleanup();
  });
  return { sm, log, dir, apply: (...d) => sm.applyBatch(log.entries(...d)) };
}

/**
 * Two replicas fed the same log, closed and removed after the suite: `apply` applies one entry on
 * both and asserts that both give the same result.
 */
export function replicaPair(): {
  a: SqlStateMachine;
  b: SqlStateMachine;
  log: Log;
  apply: (data: Uint8Array) => CommandResult;
} {
  const { dir, cleanup } = makeTempDir();
  const a = SqlStateMachine.open(`${dir}/a`);
  const b = SqlStateMachine.open(`${dir}/b`);
  const log = new Log();
  after(() => {
    a.close();
    b.close();
    cleanup();
  });
  const apply = (data: Uint8Array): CommandResult => {
    const [entry] = log.entries(data);
    const [ra] = a.applyBatch([entry!]);
    const [rb] = b.applyBatch([entry!]);
    assert.deepEqual(ra, rb, 'both replicas give the same result');
    return ra!;
  };
  return { a, b, log, apply };
}

/** Every table's rows in a stable order, for comparing replicas. */
export function dumpDatabase(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .pluck()
      .all() as string[];
    const out: Record<string, unknown[]> = {};
    for (const t of tables) {
      const columns = (db.prepare(`PRAGMA table_info("${t}")`).all() as unknown[]).length;
      const orderBy = Array.from({ length: columns }, (_, i) => i + 1).join(', ');
      out[t] = db.prepare(`SELECT * FROM "${t}" ORDER BY ${orderBy}`).safeIntegers(true).raw(true).all();
    }
    out.__schema = db.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY name').raw(true).all();
    return out;
  } finally {
    db.close();
  }
}
