/**
 * The clients of a fault run: a few workers, each with its own remote client (its own session),
 * running a register workload on a few keys plus an append-only table, one operation at a time,
 * and recording every invocation and completion.
 *
 * Register operations (checked for linearizability):
 *   write  INSERT INTO kv … ON CONFLICT(k) DO UPDATE SET v = excluded.v
 *   cas    UPDATE kv SET v = ? WHERE k = ? AND v IS ?   (rowsAffected 1 = ok, 0 = failed);
 *          from "absent": INSERT … ON CONFLICT(k) DO NOTHING; half of them inside txn()
 *   read   queryConsistent / query(…, { consistency: 'linearizable' })
 * Appends: INSERT INTO appends (id, …): every acknowledged one must exist at the end.
 *
 * Outcomes: a result is `ok`; an error that guarantees the write had no effect is `failed` (the
 * state machine's own SQL error: it ran the statement and rolled it back); anything else (timeout,
 * leader change, lost connection, even NOT_LEADER after the client may already have retried) is
 * `unknown`: the op may have happened, at any time after its call. A read that fails changed
 * nothing, so its error counts as `failed`.
 */
import type { HiqliteClient } from '../../src/index.js';
import { HiqliteError } from '../../src/index.js';
import type { Random } from '../../src/lib/prng.js';
import type { KvOp, KvResult, Operation } from '../sim/linearizability.js';

/** Codes that are the command's own deterministic result: it was applied and changed nothing. */
const DEFINITE_FAILURE_CODES: ReadonlySet<string> = new Set([
  'HQL_SQL',
  'HQL_CONSTRAINT',
  'HQL_INVALID_PARAMS',
  'HQL_NONDETERMINISTIC',
  'HQL_STATEMENT_NOT_ALLOWED',
  'HQL_READONLY',
]);

export const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)',
  'CREATE TABLE IF NOT EXISTS appends (id INTEGER PRIMARY KEY, client INTEGER NOT NULL, phase TEXT NOT NULL)',
];

export type Outcome = 'ok' | 'failed' | 'unknown';

export interface AppendRecord {
  readonly id: number;
  readonly clientId: number;
  readonly call: number;
  return: number | null;
  outcome: Outcome | null;
}

export interface OpCounts {
  ok: number;
  failed: number;
  unknown: number;
}

export interface WorkloadOptions {
  readonly keys: readonly string[];
  /** Distinguishes this run's rows in the appends table. */
  readonly phase: string;
  readonly clients: number;
  /** Pause between two ops of one worker, drawn in [0, thinkMsMax). */
  readonly thinkMsMax: number;
}

/** Everything the workload observed; appended to by the workers and the final checks. */
export class History {
  readonly ops: Operation[] = [];
  readonly appends: AppendRecord[] = [];
  readonly errorCodes = new Map<string, number>();
  /** The first message seen per code, for reports. */
  readonly errorSamples = new Map<string, string>();
  /** Ops that definitely had no effect: left out of the checked history (they never happened). */
  readonly failedOpIds = new Set<number>();
  readonly t0 = performance.now();
  private nextValue: number;

  constructor(firstValue: number) {
    this.nextValue = firstValue;
  }

  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  uniqueValue(): number {
    return this.nextValue++;
  }

  invoke(clientId: number, op: KvOp): Operation {
    const o: Operation = { id: this.ops.length, clientId, op, call: this.now(), return: null, result: null };
    this.ops.push(o);
    return o;
  }

  complete(o: Operation, result: KvResult): void {
    o.return = Math.max(o.call, this.now());
    o.result = result;
  }

  noteError(e: unknown): void {
    const code = e instanceof HiqliteError ? e.code : e instanceof Error ? e.name : 'non-error';
    this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
    if (!this.errorSamples.has(code)) this.errorSamples.set(code, e instanceof Error ? e.message : String(e));
  }

  /** The register history to check: every op except those that definitely had no effect. */
  checkedOps(): Operation[] {
    return this.ops.filter((o) => !this.failedOpIds.has(o.id));
  }

  /** A write or cas that errored: `failed` ops leave the checked history, others stay unknown. */
  fail(o: Operation, e: unknown): void {
    this.noteError(e);
    if (writeOutcomeOf(e) === 'failed') this.failedOpIds.add(o.id);
  }

  /** ok / failed / unknown over all ops; a failed read is recorded with an unknown outcome. */
  counts(): OpCounts {
    const c: OpCounts = { ok: 0, failed: 0, unknown: 0 };
    for (const o of this.ops) {
      if (o.return !== null) c.ok++;
      else if (o.op.type === 'read' || this.failedOpIds.has(o.id)) c.failed++;
      else c.unknown++;
    }
    for (const a of this.appends) {
      if (a.outcome === 'ok') c.ok++;
      else if (a.outcome === 'failed') c.failed++;
      else c.unknown++;
    }
    return c;
  }
}

/** Classifies an error of a write: `failed` only when it guarantees no effect. */
export function writeOutcomeOf(e: unknown): Exclude<Outcome, 'ok'> {
  return e instanceof HiqliteError && DEFINITE_FAILURE_CODES.has(e.code) ? 'failed' : 'unknown';
}

/**
 * Runs `clients` workers from `start()` until `stop()`, which resolves once every worker has
 * finished its last op (each op is bounded by the request timeout).
 */
export class Workload {
  private stopping = false;
  private readonly workers: Promise<void>[] = [];

  constructor(
    private readonly o: WorkloadOptions,
    readonly history: History,
    private readonly clientFor: (workerIndex: number) => Promise<HiqliteClient>,
    private readonly rng: Random,
  ) {}

  start(): void {
    for (let i = 0; i < this.o.clients; i++) {
      const rng = this.rng.fork();
      this.workers.push(this.worker(i, rng));
    }
  }

  /** Asks the workers to stop and waits for their last ops. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  private async worker(index: number, rng: Random): Promise<void> {
    const clientId = index + 1;
    const db = await this.clientFor(index);
    // What this worker last saw per key: the expected value of its next cas.
    const seen = new Map<string, number | null>();
    // Bounded by time: each op ends within the request timeout and the stop flag is checked between ops.
    while (!this.stopping) {
      const key = rng.pick(this.o.keys);
      const dice = rng.next();
      if (dice < 0.1) await this.append(db, clientId);
      else if (dice < 0.4) await this.write(db, clientId, key, seen);
      else if (dice < 0.65) await this.cas(db, clientId, key, seen, rng);
      else await this.read(db, clientId, key, seen, rng);
      if (this.o.thinkMsMax > 0) await sleep(rng.int(0, this.o.thinkMsMax));
    }
  }

  private async write(
    db: HiqliteClient,
    clientId: number,
    key: string,
    seen: Map<string, number | null>,
  ): Promise<void> {
    const value = this.history.uniqueValue();
    const o = this.history.invoke(clientId, { type: 'write', key, value });
    await this.recordWrite(o, key, seen, async () => {
      await db.execute('INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', [
        key,
        value,
      ]);
      return [{ type: 'write' }, value];
    });
  }

  private async cas(
    db: HiqliteClient,
    clientId: number,
    key: string,
    seen: Map<string, number | null>,
    rng: Random,
  ): Promise<void> {
    const expected = seen.has(key) ? (seen.get(key) as number | null) : null;
    const value = this.history.uniqueValue();
    const o = this.history.invoke(clientId, { type: 'cas', key, expected, value });
    const [sql, params]: [string, (string | number)[]] =
      expected === null
        ? ['INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO NOTHING', [key, value]]
        : ['UPDATE kv SET v = ? WHERE k = ? AND v IS ?', [value, key, expected]];
    await this.recordWrite(o, key, seen, async () => {
      const rowsAffected = rng.chance(0.5)
        ? (await db.execute(sql, params)).rowsAffected
        : ((await db.txn([[sql, params]]))[0]?.rowsAffected ?? -1);
      if (rowsAffected !== 0 && rowsAffected !== 1) throw new Error(`cas affected ${rowsAffected} rows`);
      return [{ type: 'cas', ok: rowsAffected === 1 }, rowsAffected === 1 ? value : undefined];
    });
  }

  /**
   * Runs a write and records its outcome in the history; `run` answers with the result and what
   * the key now holds (undefined: not known, the next cas expects nothing particular).
   */
  private async recordWrite(
    o: Operation,
    key: string,
    seen: Map<string, number | null>,
    run: () => Promise<[KvResult, number | undefined]>,
  ): Promise<void> {
    try {
      const [result, now] = await run();
      this.history.complete(o, result);
      if (now === undefined) seen.delete(key);
      else seen.set(key, now);
    } catch (e) {
      this.history.fail(o, e);
      seen.delete(key);
    }
  }

  private async read(
    db: HiqliteClient,
    clientId: number,
    key: string,
    seen: Map<string, number | null>,
    rng: Random,
  ): Promise<void> {
    const o = this.history.invoke(clientId, { type: 'read', key });
    try {
      const sql = 'SELECT v FROM kv WHERE k = ?';
      const rows = rng.chance(0.5)
        ? await db.queryConsistent<{ v: number }>(sql, [key])
        : await db.query<{ v: number }>(sql, [key], { consistency: 'linearizable' });
      const value = rows.length === 0 ? null : Number(rows[0]?.v);
      this.history.complete(o, { type: 'read', value });
      seen.set(key, value);
    } catch (e) {
      this.history.noteError(e);
    }
  }

  private async append(db: HiqliteClient, clientId: number): Promise<void> {
    const id = this.history.uniqueValue();
    const a: AppendRecord = { id, clientId, call: this.history.now(), return: null, outcome: null };
    this.history.appends.push(a);
    try {
      await db.execute('INSERT INTO appends (id, client, phase) VALUES (?, ?, ?)', [
        id,
        clientId,
        this.o.phase,
      ]);
      a.return = this.history.now();
      a.outcome = 'ok';
    } catch (e) {
      this.history.noteError(e);
      a.outcome = writeOutcomeOf(e);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
