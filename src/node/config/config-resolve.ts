/**
 * Validation and resolution of a node configuration: every problem is collected (see
 * config-errors.ts), defaults are filled in, addresses parsed and paths derived. Takes `unknown`
 * because JavaScript callers and config files can hand over anything.
 */
import { join, resolve } from 'node:path';
import { assert } from '../../lib/assert.js';
import { SESSION_PROTECT_MARGIN_MS, SESSION_PROTECT_MS_MAX } from '../../lib/client-session.js';
import { nodeId as toNodeId } from '../../raft/types.js';
import {
  formatHostPort,
  hostPortKey,
  parseBindHost,
  parseHostPort,
  parseNodeEntry,
} from './config-address.js';
import { checkBackupConfig } from './config-backup.js';
import { checkDashboardConfig } from './config-dashboard.js';
import { ConfigProblems, camelCaseNamer, closestKey, describeValue } from './config-errors.js';
import {
  CONFIG_KEYS,
  FILENAME_DB_DEFAULT,
  FRAME_HEADROOM_BYTES,
  INTEGER_SETTINGS,
  NODE_ID_MAX,
  NODES_MAX,
  SECRET_CHARS_MIN,
} from './config-keys.js';
import type {
  HostPort,
  IntegerKey,
  NodeConfig,
  ResolvedNode,
  ResolvedNodeConfig,
  ResolvedPaths,
  TlsSetting,
} from './config-types.js';

/**
 * Validates `input` and fills in every default. Throws a `ConfigError` (HQL_INVALID_CONFIG)
 * listing every problem, keys named in camelCase.
 */
export function resolveConfig(input: NodeConfig): ResolvedNodeConfig {
  const problems = new ConfigProblems(camelCaseNamer);
  const resolved = checkConfig(input, problems);
  problems.throwIfAny();
  assert(resolved !== null, 'a config without problems resolves');
  return resolved;
}

/** Records every problem of `input` in `problems`; the resolved config when there are none. */
export function checkConfig(input: unknown, problems: ConfigProblems): ResolvedNodeConfig | null {
  if (!isRecord(input)) {
    problems.add('config', `must be an object, got ${describeValue(input)}`);
    return null;
  }
  checkUnknownKeys(input, '', CONFIG_KEYS, problems);
  const nodeId = integer(input.nodeId, 'nodeId', 1, NODE_ID_MAX, problems, 'the id of this node in nodes');
  const nodes = checkNodes(input.nodes, problems);
  const secretRaft = checkSecret(input.secretRaft, 'secretRaft', problems);
  const secretApi = checkSecret(input.secretApi, 'secretApi', problems);
  const filenameDb = checkFileName(input.filenameDb, 'filenameDb', problems);
  const listenAddrRaft = optionalBindHost(input.listenAddrRaft, 'listenAddrRaft', problems);
  const listenAddrApi = optionalBindHost(input.listenAddrApi, 'listenAddrApi', problems);
  const learnerOnly = optionalBoolean(input.learnerOnly, 'learnerOnly', problems);
  const logStatements = optionalBoolean(input.logStatements, 'logStatements', problems);
  const checkDatabaseAtStart = optionalBoolean(input.checkDatabaseAtStart, 'checkDatabaseAtStart', problems);
  const cacheStorageDisk = optionalBoolean(input.cacheStorageDisk, 'cacheStorageDisk', problems);
  const sqlite = optionalBoolean(input.sqlite, 'sqlite', problems);
  // A cache-only node that keeps its cache in memory writes no file: it needs no data directory.
  const inMemory = sqlite === false && cacheStorageDisk === false;
  const dataDir = inMemory ? null : checkDataDir(input.dataDir, problems);
  const tls = checkTls(input.tls, problems);
  const limits = checkIntegers(input, problems);
  const backup = checkBackupConfig(input, problems);
  const dashboard = checkDashboardConfig(input, problems);

  let self: ResolvedNode | undefined;
  if (nodes !== null && nodeId !== null) self = nodes.find((n) => n.id === nodeId);
  // Checked against the ids the list spells, whatever else is wrong in it: every problem is
  // reported at once, not this one only after the list's are fixed.
  const listedIds = Array.isArray(input.nodes)
    ? input.nodes.flatMap((e: unknown) => {
        const entry = typeof e === 'string' ? parseNodeEntry(e) : null;
        if (entry !== null) return entry.ok ? [entry.value.id] : [];
        return isRecord(e) && Number.isSafeInteger(e.id) ? [e.id as number] : [];
      })
    : [];
  if (nodeId !== null && self === undefined && listedIds.length > 0 && !listedIds.includes(nodeId)) {
    problems.add(
      'nodeId',
      `${nodeId} is not the id of any entry in ${problems.name('nodes')} (ids: ${listedIds.join(', ')})`,
    );
  }
  if (nodeId === 1 && learnerOnly === true) {
    problems.add('learnerOnly', 'cannot be set on node 1: node 1 bootstraps the cluster as its first voter');
  }
  if (secretRaft !== null && secretApi !== null && secretRaft === secretApi) {
    // A node proves secret_raft on the API port to claim its id: API clients must not hold it.
    problems.add(
      'secretApi',
      `must differ from ${problems.name('secretRaft')}: API clients would hold the cluster's internal secret`,
    );
  }
  if (nodes !== null && limits !== null) checkRaftConnections(nodes, limits, problems);
  if (problems.count > 0) return null;
  assert(self !== undefined && nodes !== null && nodeId !== null, 'no problems means every part resolved');
  assert(inMemory || dataDir !== null, 'a data directory unless in memory');
  assert(secretRaft !== null && secretApi !== null && limits !== null, 'resolved parts');
  assert(filenameDb !== null && learnerOnly !== null && logStatements !== null && tls !== null, 'parts');
  assert(backup !== null, 'backup settings resolved');
  assert(dashboard !== null, 'dashboard settings resolved');
  assert(cacheStorageDisk !== null && sqlite !== null && checkDatabaseAtStart !== null, 'parts');

  return {
    ...limits,
    nodeId: self.id,
    nodes,
    self,
    dataDir,
    filenameDb: filenameDb ?? FILENAME_DB_DEFAULT,
    paths: dataDir === null ? null : pathsUnder(dataDir, filenameDb ?? FILENAME_DB_DEFAULT),
    secretRaft,
    secretApi,
    // Never all interfaces by default: a node binds the host the other nodes reach it at.
    listenRaft: { host: listenAddrRaft ?? self.raft.host, port: self.raft.port },
    listenApi: { host: listenAddrApi ?? self.api.host, port: self.api.port },
    learnerOnly: learnerOnly ?? false,
    tls,
    logStatements: logStatements ?? false,
    checkDatabaseAtStart: checkDatabaseAtStart ?? true,
    backup,
    dashboard,
    cacheStorageDisk: cacheStorageDisk ?? true,
    sqlite: sqlite ?? true,
    heartbeatIntervalTicks: limits.heartbeatIntervalMs / limits.tickIntervalMs,
    electionTimeoutTicks: limits.electionTimeoutMs / limits.tickIntervalMs,
  };
}

function pathsUnder(dataDir: string, filenameDb: string): ResolvedPaths {
  const stateMachineDir = join(dataDir, 'state_machine');
  const dbDir = join(stateMachineDir, 'db');
  return {
    logsDir: join(dataDir, 'logs'),
    dbDir,
    dbFile: join(dbDir, filenameDb),
    snapshotsDir: join(stateMachineDir, 'snapshots'),
    backupsDir: join(stateMachineDir, 'backups'),
    cacheLogsDir: join(dataDir, 'logs_cache'),
    cacheSnapshotsDir: join(stateMachineDir, 'cache_snapshots'),
  };
}

function checkNodes(value: unknown, problems: ConfigProblems): ResolvedNode[] | null {
  if (value === undefined) {
    // A loader may have reported why there is no value (an unparsable variable): say it once.
    if (!problems.has('nodes')) {
      problems.add('nodes', 'is required: every node of the cluster with its id, Raft and API address');
    }
    return null;
  }
  if (!Array.isArray(value)) {
    problems.add('nodes', `must be a list of nodes, got ${describeValue(value)}`);
    return null;
  }
  if (value.length === 0 && !problems.has('nodes')) problems.add('nodes', 'must list at least one node');
  if (value.length > NODES_MAX) {
    problems.add('nodes', `lists ${value.length} nodes, at most ${NODES_MAX} are supported`);
    return null;
  }
  const entries: Array<{ path: string; node: ResolvedNode }> = [];
  const entryKeys = new Set(['id', 'addrRaft', 'addrApi']);
  for (let i = 0; i < value.length; i++) {
    const path = `nodes[${i}]`;
    let entry: unknown = value[i];
    if (typeof entry === 'string') {
      // The Rust project's form, as in TOML: "1 127.0.0.1:8100 127.0.0.1:8200".
      const parsed = parseNodeEntry(entry);
      if (!parsed.ok) {
        problems.add(path, `${JSON.stringify(entry)}: ${parsed.reason}`);
        continue;
      }
      entry = parsed.value;
    }
    if (!isRecord(entry)) {
      problems.add(
        path,
        `must be an object { id, addrRaft, addrApi } or a "<id> <raft host:port> <api host:port>" string, got ${describeValue(entry)}`,
      );
      continue;
    }
    checkUnknownKeys(entry, `${path}.`, entryKeys, problems);
    const id = integer(entry.id, `${path}.id`, 1, NODE_ID_MAX, problems, 'a node id');
    const raft = address(entry.addrRaft, `${path}.addrRaft`, problems);
    const api = address(entry.addrApi, `${path}.addrApi`, problems);
    if (id === null || raft === null || api === null) continue;
    const node = {
      id: toNodeId(id),
      addrRaft: entry.addrRaft as string,
      addrApi: entry.addrApi as string,
      raft,
      api,
    };
    entries.push({ path, node });
  }
  checkDuplicates(entries, problems);
  if (entries.length > 0 && !problems.has('nodes') && !entries.some((e) => e.node.id === 1)) {
    problems.add('nodes', 'must contain the node with id 1: it bootstraps the cluster');
  }
  return problems.has('nodes') ? null : entries.map((e) => e.node).sort((a, b) => a.id - b.id);
}

/** Ids are unique; so is every address, Raft and API alike: two servers cannot bind one port. */
function checkDuplicates(
  entries: ReadonlyArray<{ path: string; node: ResolvedNode }>,
  problems: ConfigProblems,
): void {
  const ids = new Map<number, string>();
  const addresses = new Map<string, string>();
  for (const { path, node } of entries) {
    const first = ids.get(node.id);
    if (first === undefined) ids.set(node.id, `${path}.id`);
    else problems.add(`${path}.id`, `duplicate id ${node.id} (also ${problems.name(first)})`);
    for (const [side, hp] of [
      ['addrRaft', node.raft],
      ['addrApi', node.api],
    ] as const) {
      const key = hostPortKey(hp);
      const other = addresses.get(key);
      if (other === undefined) addresses.set(key, `${path}.${side}`);
      else
        problems.add(
          `${path}.${side}`,
          `address ${formatHostPort(hp)} is also used by ${problems.name(other)}`,
        );
    }
  }
}

function address(value: unknown, path: string, problems: ConfigProblems): HostPort | null {
  if (typeof value !== 'string') {
    problems.add(path, `must be a "host:port" string, got ${describeValue(value)}`);
    return null;
  }
  const parsed = parseHostPort(value);
  if (!parsed.ok) {
    problems.add(path, `${describeValue(value)} ${parsed.reason}`);
    return null;
  }
  return parsed.value;
}

function checkDataDir(value: unknown, problems: ConfigProblems): string | null {
  if (value === undefined || value === '') {
    problems.add(
      'dataDir',
      `is required: the directory of this node's database, log and snapshots (only a cache-only node that keeps its cache in memory, ${problems.name('sqlite')} and ${problems.name('cacheStorageDisk')} false, has none)`,
    );
    return null;
  }
  if (typeof value !== 'string' || value.includes('\0')) {
    problems.add('dataDir', `must be a directory path, got ${describeValue(value)}`);
    return null;
  }
  return resolve(value);
}

/** The secret's value never appears in a message: messages end up in logs. */
function checkSecret(value: unknown, path: string, problems: ConfigProblems): string | null {
  if (value === undefined || value === '') {
    problems.add(
      path,
      `is required: a secret of at least ${SECRET_CHARS_MIN} characters, the same on every node`,
    );
    return null;
  }
  if (typeof value !== 'string') {
    problems.add(path, `must be a string, got ${Array.isArray(value) ? 'an array' : typeof value}`);
    return null;
  }
  const chars = [...value].length;
  if (chars < SECRET_CHARS_MIN) {
    problems.add(path, `must have at least ${SECRET_CHARS_MIN} characters, has ${chars}`);
    return null;
  }
  return value;
}

/** undefined means the default; null means a problem was recorded. */
function checkFileName(value: unknown, path: string, problems: ConfigProblems): string | undefined | null {
  if (value === undefined) return undefined;
  const ok =
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= 255 &&
    value !== '.' &&
    value !== '..' &&
    !/[/\\\0]/.test(value);
  if (!ok) problems.add(path, `must be a plain file name (no directory), got ${describeValue(value)}`);
  return ok ? value : null;
}

function optionalBindHost(value: unknown, path: string, problems: ConfigProblems): string | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    problems.add(path, `must be a host name or IP address, got ${describeValue(value)}`);
    return null;
  }
  const parsed = parseBindHost(value);
  if (!parsed.ok) problems.add(path, `${describeValue(value)} ${parsed.reason}`);
  return parsed.ok ? parsed.value : null;
}

function optionalBoolean(value: unknown, path: string, problems: ConfigProblems): boolean | undefined | null {
  if (value === undefined || typeof value === 'boolean') return value;
  problems.add(path, `must be true or false, got ${describeValue(value)}`);
  return null;
}

type ResolvedTls = ResolvedNodeConfig['tls'];

function checkTls(value: unknown, problems: ConfigProblems): ResolvedTls | null {
  if (value === undefined) return { raft: null, api: null };
  if (!isRecord(value)) {
    problems.add('tls', `must be an object { raft?, api? }, got ${describeValue(value)}`);
    return null;
  }
  checkUnknownKeys(value, 'tls.', new Set(['raft', 'api']), problems);
  const raft = checkTlsSide(value.raft, 'tls.raft', problems);
  const api = checkTlsSide(value.api, 'tls.api', problems);
  return raft === undefined || api === undefined ? null : { raft, api };
}

/** null: no TLS; undefined: a problem was recorded. */
function checkTlsSide(value: unknown, path: string, problems: ConfigProblems): TlsSetting | null | undefined {
  if (value === undefined) return null;
  if (value === 'self-signed') return 'self-signed';
  if (!isRecord(value)) {
    problems.add(
      path,
      `must be "self-signed" or { certFile, keyFile, caFile? }, got ${describeValue(value)}`,
    );
    return undefined;
  }
  checkUnknownKeys(value, `${path}.`, new Set(['certFile', 'keyFile', 'caFile']), problems);
  const file = (key: string, required: boolean): string | undefined | null => {
    const v = value[key];
    if (v === undefined && !required) return undefined;
    if (typeof v === 'string' && v.length > 0 && !v.includes('\0')) return v;
    const message =
      v === undefined
        ? `is required: TLS needs both ${problems.name(`${path}.certFile`)} and ${problems.name(`${path}.keyFile`)}`
        : `must be a file path, got ${describeValue(v)}`;
    problems.add(`${path}.${key}`, message);
    return null;
  };
  const certFile = file('certFile', true);
  const keyFile = file('keyFile', true);
  const caFile = file('caFile', false);
  if (typeof certFile !== 'string' || typeof keyFile !== 'string' || caFile === null) return undefined;
  return caFile === undefined ? { certFile, keyFile } : { certFile, keyFile, caFile };
}

function checkIntegers(
  input: Record<string, unknown>,
  problems: ConfigProblems,
): Record<IntegerKey, number> | null {
  const out: Partial<Record<IntegerKey, number>> = {};
  for (const s of INTEGER_SETTINGS) {
    const raw = input[s.key];
    const v = raw === undefined ? s.default : integer(raw, s.key, s.min, s.max, problems, null);
    if (v !== null) out[s.key] = v;
  }
  // Unset, the most a session is protected for covers the node's own writes and the margin.
  if (input.sessionProtectMs === undefined && out.proposalTimeoutMs !== undefined) {
    out.sessionProtectMs = Math.min(
      SESSION_PROTECT_MS_MAX,
      Math.max(out.sessionProtectMs ?? 0, out.proposalTimeoutMs + SESSION_PROTECT_MARGIN_MS),
    );
  }
  // Unset, a lock waiter's wait lease outlasts a leader election, however long the timeout.
  if (input.cacheLockWaitLeaseMs === undefined && out.electionTimeoutMs !== undefined) {
    out.cacheLockWaitLeaseMs = Math.max(out.cacheLockWaitLeaseMs ?? 0, 3 * out.electionTimeoutMs);
  }
  // Rules between two keys are checked when both keys are valid on their own.
  checkTiming(out, problems);
  checkSizes(out, problems);
  checkConnections(out, problems);
  return INTEGER_SETTINGS.every((s) => out[s.key] !== undefined) ? (out as Record<IntegerKey, number>) : null;
}

/** The Raft core counts ticks, so both intervals are whole numbers of ticks. */
function checkTiming(l: Partial<Record<IntegerKey, number>>, problems: ConfigProblems): void {
  const n = problems.name;
  const { tickIntervalMs: tick, heartbeatIntervalMs: heartbeat, electionTimeoutMs: election } = l;
  for (const [key, ms] of [
    ['heartbeatIntervalMs', heartbeat],
    ['electionTimeoutMs', election],
  ] as const) {
    if (tick !== undefined && ms !== undefined && ms % tick !== 0) {
      problems.add(key, `${ms} must be a multiple of ${n('tickIntervalMs')} (${tick})`);
    }
  }
  // A write is retried until its deadline: its session must be remembered as long (sessions.ts).
  const { proposalTimeoutMs: proposal, sessionProtectMs: protect, cacheSessionTtlMs: cacheTtl } = l;
  if (proposal !== undefined && protect !== undefined && proposal > protect) {
    problems.add(
      'sessionProtectMs',
      `${protect} must be at least ${n('proposalTimeoutMs')} (${proposal}): a write retried until its deadline could find its session forgotten and be applied twice`,
    );
  }
  if (protect !== undefined && cacheTtl !== undefined && cacheTtl < protect) {
    problems.add(
      'cacheSessionTtlMs',
      `${cacheTtl} must be at least ${n('sessionProtectMs')} (${protect}): a session expires after this long idle, whatever protects it`,
    );
  }
  // A lock waiter's node renews its wait lease every third of it: two renewals must fit into a
  // leader election (up to twice the election timeout), or waiters lose their place at every one.
  const { cacheLockWaitLeaseMs: waitLease } = l;
  if (waitLease !== undefined && election !== undefined && waitLease < 3 * election) {
    problems.add(
      'cacheLockWaitLeaseMs',
      `${waitLease} must be at least three times ${n('electionTimeoutMs')} (${election}): a waiter's renewals must outlast a leader election, or waiters lose their place in the queue at every leader change`,
    );
  }
  // A follower must be able to miss a heartbeat without starting an election.
  if (heartbeat !== undefined && election !== undefined && heartbeat * 2 >= election) {
    problems.add(
      'heartbeatIntervalMs',
      `${heartbeat} must be less than half of ${n('electionTimeoutMs')} (${election})`,
    );
  }
}

function checkSizes(l: Partial<Record<IntegerKey, number>>, problems: ConfigProblems): void {
  const n = problems.name;
  const { appendBytesMax: append, inflightBytesMax: inflight, entryBytesMax: entry } = l;
  const { uncommittedBytesMax: uncommitted, frameBytesMax: frame } = l;
  if (append !== undefined && inflight !== undefined && append > inflight) {
    problems.add(
      'inflightBytesMax',
      `${inflight} must be at least ${n('appendBytesMax')} (${append}): the window holds one full message`,
    );
  }
  if (entry !== undefined && uncommitted !== undefined && entry > uncommitted) {
    problems.add(
      'uncommittedBytesMax',
      `${uncommitted} must be at least ${n('entryBytesMax')} (${entry}): the largest entry must be accepted`,
    );
  }
  if (entry !== undefined && append !== undefined && frame !== undefined) {
    const payloadMax = Math.max(entry, append);
    if (payloadMax + FRAME_HEADROOM_BYTES > frame) {
      const larger = entry >= append ? 'entryBytesMax' : 'appendBytesMax';
      problems.add(
        'frameBytesMax',
        `${frame} must be at least ${n(larger)} (${payloadMax}) + ${FRAME_HEADROOM_BYTES} bytes of message headers`,
      );
    }
  }
}

/**
 * Unauthenticated connections must not be able to take every slot of the API port (the Raft
 * port's rule depends on the number of nodes: checkRaftConnections).
 */
function checkConnections(l: Partial<Record<IntegerKey, number>>, problems: ConfigProblems): void {
  const { unauthenticatedConnectionsMax: unauthenticated, apiConnectionsMax: api } = l;
  if (unauthenticated !== undefined && api !== undefined && unauthenticated >= api) {
    problems.add(
      'apiConnectionsMax',
      `${api} must be more than ${problems.name('unauthenticatedConnectionsMax')} (${unauthenticated}): authenticated connections need room`,
    );
  }
}

/** Every other node opens two connections (control and bulk lane), beside the unauthenticated ones. */
function checkRaftConnections(
  nodes: readonly ResolvedNode[],
  l: Record<IntegerKey, number>,
  problems: ConfigProblems,
): void {
  const needed = 2 * (nodes.length - 1) + l.unauthenticatedConnectionsMax;
  if (l.raftConnectionsMax < needed) {
    problems.add(
      'raftConnectionsMax',
      `${l.raftConnectionsMax} must be at least ${needed}: two connections from each of the ${nodes.length - 1} other nodes plus ${problems.name('unauthenticatedConnectionsMax')} (${l.unauthenticatedConnectionsMax})`,
    );
  }
}

function integer(
  value: unknown,
  path: string,
  min: number,
  max: number,
  problems: ConfigProblems,
  requiredWhat: string | null,
): number | null {
  if (value === undefined && requiredWhat !== null) {
    if (!problems.has(path)) problems.add(path, `is required: ${requiredWhat}`);
    return null;
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    problems.add(path, `must be an integer, got ${describeValue(value)}`);
    return null;
  }
  // An integer beyond 2^53 is out of every range (found from outside: "expected an integer").
  if (value < min || value > max || !Number.isSafeInteger(value)) {
    problems.add(path, `must be an integer from ${min} to ${max}, got ${value}`);
    return null;
  }
  return value;
}

function checkUnknownKeys(
  value: Record<string, unknown>,
  prefix: string,
  known: ReadonlySet<string>,
  problems: ConfigProblems,
): void {
  for (const key of Object.keys(value)) {
    if (known.has(key) || value[key] === undefined) continue;
    const guess = closestKey(key, known);
    problems.add(
      `${prefix}${key}`,
      `unknown key${guess === null ? '' : ` (did you mean ${prefix}${guess}?)`}`,
    );
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
