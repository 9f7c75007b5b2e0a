/**
 * The public client API, shared by the embedded node (`start()`) and the remote client
 * (`connect()`): both build on two primitives, `write(command)` (replicated, exactly once) and
 * `read(sql, params, options)`.
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { HiqliteError } from '../lib/errors.js';
import { NODE_ID_MAX } from '../node/config/config-keys.js';
import type { ClusterMembership, NodeMetrics, QueryOptions } from '../node/hiqlite-node.js';
import type { BackupInfo } from '../node/node-features.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import type { CommandInput, Migration, ParamInput } from '../sm/sql/command.js';
import { errorFromInfo } from '../sm/sql/errors.js';
import { isShallowStmtRef } from '../sm/sql/params.js';
import type { CommandResult, StatementOutcome } from '../sm/sql/result.js';
import { checkReadText, isBindable, normalizeValue, type Row } from '../sm/sql/values.js';
import {
  consistencyArg,
  extraArgsError,
  logIndexArg,
  migrationsArg,
  noExtraArgs,
  optionsArg,
  paramsArg,
  signalArg,
  sqlArg,
  statementsArg,
  timeoutArg,
} from './args.js';
import {
  CacheApi,
  type CacheCallOptions,
  type CacheConsistency,
  type CacheHandle,
  type CacheOps,
  type CacheRead,
  type CacheReadValue,
  type CounterHandle,
  clientClosed,
  type DistributedLock,
  type ListenNotification,
  type ListenSource,
  type LockGrantInfo,
  type LockOptions,
  type LockRequest,
  noLocalReplica,
} from './cache-client.js';
import type { LocalCacheEntry } from './cache-local-values.js';
import { readMigrationsFolder } from './migrations-folder.js';

export type Params = readonly ParamInput[] | Readonly<Record<string, ParamInput>>;
export type Metrics = NodeMetrics;
export type { QueryOptions, Row };

export interface ExecuteResult {
  readonly rowsAffected: number;
  readonly lastInsertRowid: number | bigint;
  /** The Raft log index of the write: pass it as `minIndex` to read your own write anywhere. */
  readonly logIndex: number;
  /**
   * In the results of txn() and batch(): the rows of a statement that returns rows (a SELECT, a
   * RETURNING clause), read inside the transaction; absent for one that returns none.
   */
  readonly rows?: Row[];
}

export interface MigrationInput {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

export interface HiqliteClient {
  execute(sql: string, params?: Params): Promise<ExecuteResult>;
  executeReturning<T = Row>(sql: string, params?: Params): Promise<T[]>;
  txn(statements: ReadonlyArray<readonly [sql: string, params?: Params]>): Promise<ExecuteResult[]>;
  batch(sql: string): Promise<Array<ExecuteResult | HiqliteError>>;
  query<T = Row>(sql: string, params?: Params, options?: QueryOptions): Promise<T[]>;
  queryOne<T = Row>(sql: string, params?: Params, options?: QueryOptions): Promise<T>;
  queryOptional<T = Row>(sql: string, params?: Params, options?: QueryOptions): Promise<T | undefined>;
  queryConsistent<T = Row>(sql: string, params?: Params): Promise<T[]>;
  migrate(migrations: readonly MigrationInput[] | string): Promise<void>;
  metrics(): Promise<Metrics>;
  /**
   * Takes an encrypted backup now, on the leader (src/backup): a consistent copy at one log
   * index, stored in the local folder and S3 when configured. A call while one runs gets its result.
   */
  backup(): Promise<BackupInfo>;
  /**
   * Removes a node that is gone for good from the cluster's membership (both Raft groups), so
   * that its vote no longer counts toward a majority; answers the membership after it. A node
   * already not a member is done. Stop the node first, and take it out of every `nodes` list.
   */
  removeNode(nodeId: number, options?: { timeoutMs?: number }): Promise<ClusterMembership>;
  waitUntilHealthy(options?: { timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
  /** A replicated cache (src/client/cache-client.ts). */
  cache<V = unknown>(name: string): CacheHandle<V>;
  counter(name: string): CounterHandle;
  clearCaches(): Promise<number>;
  notify(channel: string, payload: unknown): Promise<number>;
  listen<P = unknown>(channel?: string): AsyncIterableIterator<ListenNotification<P>> & AsyncDisposable;
  lock(key: string, options?: LockOptions): Promise<DistributedLock>;
  tryLock(key: string, options?: { leaseMs?: number }): Promise<DistributedLock | null>;
}

/** What a concrete client provides; everything else is built on it. */
export abstract class ClientBase implements HiqliteClient, CacheOps {
  protected abstract write(command: CommandInput): Promise<{ index: number; result: CommandResult }>;
  protected abstract read(sql: string, params: Params, options: QueryOptions): Promise<Row[]>;
  abstract metrics(): Promise<Metrics>;
  protected abstract takeBackup(): Promise<BackupInfo>;
  /** removeNode, its arguments checked; `timeoutMs` undefined: the node's proposal_timeout_ms. */
  protected abstract removeMember(nodeId: number, timeoutMs: number | undefined): Promise<ClusterMembership>;
  protected abstract awaitHealthy(options: { timeoutMs?: number }): Promise<void>;
  abstract close(): Promise<void>;

  // The cache primitives (cache-client.ts, CacheOps): a client that has the cache group
  // overrides them; the cache API below is built on them.
  cacheWrite(_command: CacheCommand, _options?: CacheCallOptions): Promise<CacheOutcome> {
    return Promise.reject(noCache());
  }
  cacheRead(_read: CacheRead, _consistency: CacheConsistency): Promise<CacheReadValue> {
    return Promise.reject(noCache());
  }
  cacheLock(_request: LockRequest, _signal?: AbortSignal): Promise<LockGrantInfo | null> {
    return Promise.reject(noCache());
  }
  cacheListen(_channel: string | null): ListenSource {
    throw noCache();
  }
  cacheLocalEntry(_cache: string, _key: string): LocalCacheEntry | null {
    throw noLocalReplica();
  }

  private readonly caches = new CacheApi(this);

  /**
   * What inspect and console.log show of a client or node: what it is, never its fields, which
   * hold the secrets (found from outside: `console.log(db)` printed secret_api and secret_raft).
   */
  protected describe(): Record<string, unknown> {
    return {};
  }

  [inspect.custom](): string {
    const fields = Object.entries(this.describe())
      .map(([k, v]) => `${k}: ${inspect(v)}`)
      .join(', ');
    return fields === '' ? `${this.constructor.name} {}` : `${this.constructor.name} { ${fields} }`;
  }

  /**
   * Makes this object's own fields non-enumerable (subclasses call it last in their constructor):
   * `Object.keys(db)`, `{ ...db }` and loggers that walk own properties do not reach the
   * configuration and connections, which hold the secrets (found from outside: `{ ...node }`
   * showed `cfg.secretApi`).
   */
  protected hideFields(): void {
    for (const key of Object.keys(this)) Object.defineProperty(this, key, { enumerable: false });
  }

  /** JSON.stringify of a client or node: the same as inspect, no secrets. */
  toJSON(): Record<string, unknown> {
    return { client: this.constructor.name, ...this.describe() };
  }

  /**
   * The first step of every close(), before it closes anything: from this call on, every call of
   * this client is refused with HQL_CLOSED (decided at the call, so nothing asked after close() is
   * carried out), and the locks it holds are released (the next waiter gets each at once, not
   * after its lease), within LOCK_RELEASE_ON_CLOSE_MS; never throws.
   */
  protected beginClose(): Promise<void> {
    return this.caches.beginClose();
  }

  /** Throws HQL_CLOSED once close() was called. */
  protected checkNotClosed(): void {
    if (this.caches.closeCalled) throw clientClosed();
  }

  backup(...extra: []): Promise<BackupInfo> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'backup', '()'));
    return this.caches.closeCalled ? Promise.reject(clientClosed()) : this.takeBackup();
  }

  removeNode(nodeId: number, options: { timeoutMs?: number } = {}, ...extra: []): Promise<ClusterMembership> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'removeNode', '(nodeId, options)'));
    if (this.caches.closeCalled) return Promise.reject(clientClosed());
    try {
      if (typeof nodeId !== 'number' || !Number.isSafeInteger(nodeId) || nodeId < 1 || nodeId > NODE_ID_MAX)
        throw new HiqliteError(
          'HQL_INVALID_PARAMS',
          `removeNode: nodeId must be the id of a node (a whole number in 1..${NODE_ID_MAX}), got ${String(nodeId)}`,
          { retryable: false },
        );
      const timeoutMs = timeoutArg(optionsArg(options, ['timeoutMs'], 'removeNode')?.timeoutMs, 'removeNode');
      return this.removeMember(nodeId, timeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  waitUntilHealthy(options: { timeoutMs?: number } = {}, ...extra: []): Promise<void> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'waitUntilHealthy', '(options)'));
    return this.caches.closeCalled ? Promise.reject(clientClosed()) : this.awaitHealthy(options);
  }

  cache<V = unknown>(name: string, ...extra: []): CacheHandle<V> {
    noExtraArgs(extra, 'cache', '(name)');
    return this.caches.cache<V>(name);
  }

  counter(name: string, ...extra: []): CounterHandle {
    noExtraArgs(extra, 'counter', '(name)');
    return this.caches.counter(name);
  }

  clearCaches(...extra: []): Promise<number> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'clearCaches', '()'));
    return this.caches.clearCaches();
  }

  notify(channel: string, payload: unknown, ...extra: []): Promise<number> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'notify', '(channel, payload)'));
    return this.caches.notify(channel, payload);
  }

  listen<P = unknown>(
    channel?: string,
    ...extra: []
  ): AsyncIterableIterator<ListenNotification<P>> & AsyncDisposable {
    noExtraArgs(extra, 'listen', '(channel?)');
    return this.caches.listen<P>(channel);
  }

  lock(key: string, options?: LockOptions, ...extra: []): Promise<DistributedLock> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'lock', '(key, options)'));
    return this.caches.lock(key, options);
  }

  tryLock(key: string, options?: { leaseMs?: number }, ...extra: []): Promise<DistributedLock | null> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'tryLock', '(key, options)'));
    return this.caches.tryLock(key, options);
  }

  async execute(sql: string, params: Params = [], ...extra: []): Promise<ExecuteResult> {
    noExtraArgs(extra, 'execute', '(sql, params)');
    sqlArg(sql, 'execute');
    paramsArg(params, 'execute');
    const { index, result } = await this.writeOk({
      type: 'execute',
      sql,
      params: params ?? [],
      returning: false,
    });
    return outcome((result as { value: StatementOutcome }).value, index);
  }

  async executeReturning<T = Row>(sql: string, params: Params = [], ...extra: []): Promise<T[]> {
    noExtraArgs(extra, 'executeReturning', '(sql, params)');
    sqlArg(sql, 'executeReturning');
    paramsArg(params, 'executeReturning');
    const { result } = await this.writeOk({ type: 'execute', sql, params: params ?? [], returning: true });
    return ((result as { value: StatementOutcome }).value.rows ?? []) as T[];
  }

  async txn(
    statements: ReadonlyArray<readonly [sql: string, params?: Params]>,
    ...extra: []
  ): Promise<ExecuteResult[]> {
    noExtraArgs(extra, 'txn', '(statements)');
    statementsArg(statements);
    const { index, result } = await this.writeOk({
      type: 'txn',
      statements: statements.map(([sql, params]) => ({ sql, params: params ?? [] })),
    });
    return (result as { value: readonly StatementOutcome[] }).value.map((o) => outcome(o, index));
  }

  async batch(sql: string, ...extra: []): Promise<Array<ExecuteResult | HiqliteError>> {
    noExtraArgs(extra, 'batch', '(sql)');
    sqlArg(sql, 'batch');
    const { index, result } = await this.writeOk({ type: 'batch', sql });
    const value = (result as Extract<CommandResult, { type: 'batch' }>).value;
    return value.map((r) => (r.ok ? outcome(r.value, index) : errorFromInfo(r.error)));
  }

  query<T = Row>(sql: string, params: Params = [], options: QueryOptions = {}, ...extra: []): Promise<T[]> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'query', '(sql, params, options)'));
    return this.checkedRead(sql, params, options) as Promise<T[]>;
  }

  async queryOne<T = Row>(
    sql: string,
    params: Params = [],
    options: QueryOptions = {},
    ...extra: []
  ): Promise<T> {
    noExtraArgs(extra, 'queryOne', '(sql, params, options)');
    const rows = await this.checkedRead(sql, params, options);
    if (rows.length === 0)
      throw new HiqliteError('HQL_NO_ROWS', 'the query returned no rows', { retryable: false });
    return rows[0] as T;
  }

  async queryOptional<T = Row>(
    sql: string,
    params: Params = [],
    options: QueryOptions = {},
    ...extra: []
  ): Promise<T | undefined> {
    noExtraArgs(extra, 'queryOptional', '(sql, params, options)');
    const rows = await this.checkedRead(sql, params, options);
    return rows[0] as T | undefined;
  }

  queryConsistent<T = Row>(sql: string, params: Params = [], ...extra: []): Promise<T[]> {
    if (extra.length > 0) return Promise.reject(extraArgsError(extra, 'queryConsistent', '(sql, params)'));
    return this.checkedRead(sql, params, { consistency: 'linearizable' }) as Promise<T[]>;
  }

  async migrate(migrations: readonly MigrationInput[] | string, ...extra: []): Promise<void> {
    noExtraArgs(extra, 'migrate', '(migrations)');
    this.checkNotClosed();
    const list = typeof migrations === 'string' ? await readMigrationsFolder(migrations) : migrations;
    migrationsArg(list);
    const prepared: Migration[] = list.map((m) => ({
      ...m,
      checksum: createHash('sha256').update(m.sql).digest('hex'),
    }));
    await this.writeOk({ type: 'migrate', migrations: prepared });
  }

  private checkedRead(sql: string, params: Params, options: QueryOptions): Promise<Row[]> {
    try {
      this.checkNotClosed();
      sqlArg(sql, 'query');
      paramsArg(params, 'query');
      checkParams(params, -1);
      checkReadText(sql, params, 'query');
      optionsArg(options, QUERY_OPTIONS, 'query');
      consistencyArg(options.consistency, 'query');
      logIndexArg(options.minIndex, 'query');
      timeoutArg(options.timeoutMs, 'query');
      signalArg(options.signal, 'query');
    } catch (e) {
      return Promise.reject(e);
    }
    return this.read(sql, params ?? [], options);
  }

  private async writeOk(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    this.checkNotClosed();
    if (command.type === 'execute') checkParams(command.params, -1);
    else if (command.type === 'txn') {
      for (const [i, st] of command.statements.entries()) checkParams(st.params, i);
    }
    const out = await this.write(command);
    if (!out.result.ok) throw errorFromInfo(out.result.error);
    return out;
  }
}

const QUERY_OPTIONS = ['consistency', 'minIndex', 'timeoutMs', 'signal'];

/**
 * Parameters are looked at one level deep before they cross a thread (the node's, a read
 * thread) or a connection: an array or object where a value belongs cannot be bound anyway, and
 * one nested deeply enough overflows the stack of the structured clone or msgpack copy that
 * carries it (a RangeError where nothing catches it); a function or a symbol cannot be copied at
 * all. Refused here with the node's own binding error (normalizeValue); the node checks the rest.
 */
function checkParams(params: unknown, stmt: number): void {
  if (typeof params !== 'object' || params === null) return;
  const check = (v: unknown, at: string | number) => {
    if (isBindable(v) || (stmt >= 0 && isShallowStmtRef(v))) return;
    const base = stmt < 0 ? 'params' : `statements[${stmt}].params`;
    normalizeValue(v, typeof at === 'number' ? `${base}[${at}]` : `${base}.${at}`); // throws
  };
  if (Array.isArray(params)) {
    for (let i = 0; i < params.length; i++) check(params[i], i);
  } else for (const [k, v] of Object.entries(params)) check(v, k);
}

function noCache(): HiqliteError {
  return new HiqliteError('HQL_UNAVAILABLE', 'this client has no cache API yet', { retryable: false });
}

function outcome(o: StatementOutcome, logIndex: number): ExecuteResult {
  const base = { rowsAffected: o.rowsAffected, lastInsertRowid: o.lastInsertRowid, logIndex };
  return o.rows === undefined ? base : { ...base, rows: o.rows as Row[] };
}
