/**
 * The client-to-node API protocol, spoken on the API port after an HTTP upgrade and the
 * mutual handshake (`purpose: 'api'`, secret_api): one length-prefixed frame per message, each a
 * standard msgpack map (no msgpackr records, so other languages can speak it). Requests carry an
 * id; responses echo it, so one connection multiplexes any number of requests.
 *
 * Everything decoded here is untrusted: each field is checked, and anything malformed is a
 * `ProtocolError`, never an exception of another kind.
 */
import type { ErrorCode } from '../lib/errors.js';
import {
  type ApiPush,
  CACHE_API_OPS,
  type CacheApiRequest,
  decodeApiPush,
  decodeCacheApiRequest,
} from './cache-api-codec.js';
import { MapsPackr } from './msgpack-maps.js';
import { ProtocolError } from './protocol-error.js';

export type { ApiPush, CacheApiRequest, CacheReadRequest, PushedNotification } from './cache-api-codec.js';

// An int64 on the wire (msgpackr packs bigints so, numbers never) decodes as a bigint, made a
// number when it is a safe integer (revived below), as SQLite's integers are on an embedded node
// (src/sm/sql/values.ts). msgpackr's int64AsType 'auto' also made ±2^53 a number: an INTEGER of
// 2^53 read remotely was a number (a bigint embedded), and a bigint parameter 2^53 of a remote
// read bound as a REAL.
const packr = new MapsPackr({ useRecords: false, int64AsType: 'bigint', largeBigIntToFloat: false });
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

export type Consistency = 'local' | 'linearizable';

export type ApiRequest =
  /**
   * Leader only: propose prepared command bytes to a group (sql: src/sm/sql `prepareForProposal`;
   * cache: src/sm/cache `encodeCacheCommand`, whose time the leader stamps again).
   */
  | {
      readonly id: number;
      readonly op: 'propose';
      readonly group: ApiGroup;
      readonly data: Uint8Array;
      /**
       * What is left of the caller's deadline: the node answers by then (HQL_UNAVAILABLE when it
       * could not propose, HQL_OUTCOME_UNKNOWN when it did but has no result), or by its own
       * `proposal_timeout_ms` if that comes first.
       */
      readonly timeoutMs?: number;
    }
  | {
      readonly id: number;
      readonly op: 'query';
      readonly sql: string;
      readonly params: unknown;
      readonly consistency: Consistency;
      readonly minIndex: number;
      /**
       * What is left of the caller's deadline: the node stops the read (and answers
       * HQL_TIMEOUT) by then, or by its own `query_timeout_ms` if that comes first.
       */
      readonly timeoutMs?: number;
    }
  | { readonly id: number; readonly op: 'metrics' }
  /** The node's limits a client checks before sending: `{ commandBytesMax }`. */
  | { readonly id: number; readonly op: 'limits' }
  /** Where the leader of a group (default sql) is: its id and API address, as this node knows them. */
  | { readonly id: number; readonly op: 'leader'; readonly group?: ApiGroup }
  /** Leader only: a node with no state of the group asks to be added as a learner. */
  | {
      readonly id: number;
      readonly op: 'join';
      readonly nodeId: number;
      readonly nonce: string;
      readonly group?: ApiGroup;
      /**
       * The joining node's `sqlite` setting (absent: true, as nodes of earlier versions): a
       * leader of the other setting refuses it (HQL_CLUSTER_MISMATCH).
       */
      readonly sqlite?: boolean;
    }
  /** Leader only: a caught-up learner of the group asks to become a voter. */
  | { readonly id: number; readonly op: 'promote'; readonly nodeId: number; readonly group?: ApiGroup }
  /**
   * Removes a node from the membership of both groups (a client's, to any node: removeNode), or,
   * sent by a node with `group`, from that group on its leader. Answers the membership after it.
   */
  | { readonly id: number; readonly op: 'removeNode'; readonly nodeId: number; readonly group?: ApiGroup }
  /** Take a backup now (on the leader; a follower forwards it). Answers the backup's description. */
  | {
      readonly id: number;
      readonly op: 'backup';
      /** What is left of the caller's deadline (a proxy waits for the answer that long). */
      readonly timeoutMs?: number;
    }
  /**
   * The backups in the answering node's local folder (names, sizes; never contents). A
   * follower's dashboard asks the leader, which writes the backups it takes there.
   */
  | { readonly id: number; readonly op: 'backupList' }
  /**
   * Keepalive: the server answers at once (no work, no handler) with its wall clock, ms since
   * the epoch (a node asks its peers this way: src/node/peer-clocks.ts; earlier versions
   * answered `null`). A client sends it on a connection that has been silent
   * (api-connection.ts); any frame it sends also tells the server the connection is alive
   * (`api_idle_timeout_ms`). A node of an earlier version answers it HQL_PROTOCOL (an unknown
   * op), which is as good a sign of life.
   */
  | { readonly id: number; readonly op: 'ping' }
  /** The cache group's reads, locks and listeners (cache-api-codec.ts). */
  | CacheApiRequest;

/** The Raft groups of a node (src/protocol/raft-group.ts). Absent on the wire: sql. */
export type ApiGroup = 'sql' | 'cache';

export type ApiOp = ApiRequest['op'];

export interface ApiErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly leaderId?: number | null;
  /** Extra fields of SQL errors (sqliteCode, statementIndex, migrationId). */
  readonly details?: Record<string, unknown>;
}

export type ApiResponse =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: ApiErrorBody };

export const SQL_BYTES_MAX = 1 << 20;

/**
 * The last frame a node sends on a connection it closes because it shuts down (api-server.ts):
 * every request it read from the connection has been answered except those listed in `pending`
 * (still being served: a lock wait); every other request without an answer was never read, so
 * never processed, and can be sent to another node as if it had not been sent at all.
 */
export interface ApiGoAway {
  readonly goaway: true;
  readonly pending: readonly number[];
}

/**
 * Something a node tells every client connection of its own accord (handshake 10):
 * - `cacheRefounded`: its cache group, kept in memory, was founded anew (a majority of the nodes
 *   had restarted without it): every lock granted before is gone, and the client's held locks
 *   are lost now rather than at their next renewal.
 * - `cacheTokenFloor` (with `floor`): the lowest fencing token of the node's cache group, sent when
 *   it becomes known or changes (the node applied its group's first command or a snapshot, as
 *   after a restart into a group founded anew); a lock the client holds with a lower token was
 *   granted by a group founded before, and is gone. The `limits` answer says it too
 *   (`cacheTokenFloor`, 0 when not known).
 * A client ignores an event it does not know (a later version's).
 */
export interface ApiEvent {
  readonly event: string;
  /** `cacheTokenFloor`'s floor: a safe non-negative integer. */
  readonly floor?: number;
}

/** The events this version sends. */
export const API_EVENT_CACHE_REFOUNDED = 'cacheRefounded';
export const API_EVENT_CACHE_TOKEN_FLOOR = 'cacheTokenFloor';

/**
 * The most ids a goaway may list (a client refuses a longer one as malformed): a node serving more
 * on one connection (api_requests_inflight_max set that high) sends no goaway, and closes.
 */
export const GOAWAY_PENDING_MAX = 1 << 17;

export function encodeApiMessage(m: ApiRequest | ApiResponse | ApiPush | ApiGoAway | ApiEvent): Uint8Array {
  return packr.pack(m);
}

function bad(detail: string): never {
  throw new ProtocolError('malformed', `api message: ${detail}`);
}

function decodeMap(bytes: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(bytes);
  } catch (e) {
    throw new ProtocolError('malformed', `api message: not msgpack (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array)
    bad('expected a map');
  return v as Record<string, unknown>;
}

function requestId(o: Record<string, unknown>): number {
  const id = o.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) bad('id must be a non-negative integer');
  return id;
}

/**
 * The id of a request frame that decodeApiRequest refused, when the frame is a map with a valid
 * id (its fields are wrong, or its op unknown): the server answers that request with its error
 * and goes on serving the connection. Null when the frame is not even that (then the connection
 * is closed: its requests cannot be told apart).
 */
export function apiRequestIdOf(bytes: Uint8Array): number | null {
  try {
    return requestId(revived(decodeMap(bytes), 0, false) as Record<string, unknown>);
  } catch {
    return null;
  }
}

function groupOf(o: Record<string, unknown>): ApiGroup {
  if (o.group !== 'sql' && o.group !== 'cache') bad(`unknown group ${JSON.stringify(o.group)}`);
  return o.group;
}

function nodeIdOf(o: Record<string, unknown>): number {
  const n = o.nodeId;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > 0xffff_ffff)
    bad('nodeId must be a positive integer');
  return n;
}

export function decodeApiRequest(bytes: Uint8Array): ApiRequest {
  const o = revived(decodeMap(bytes), 0, false) as Record<string, unknown>;
  const id = requestId(o);
  if (typeof o.op === 'string' && CACHE_API_OPS.has(o.op)) return decodeCacheApiRequest(o, id);
  switch (o.op) {
    case 'propose': {
      if (o.group !== 'sql' && o.group !== 'cache') bad(`unknown group ${JSON.stringify(o.group)}`);
      if (!(o.data instanceof Uint8Array)) bad('propose.data must be bytes');
      const timeoutMs = optionalTimeout(o.timeoutMs, 'propose');
      return timeoutMs === undefined
        ? { id, op: 'propose', group: o.group, data: o.data }
        : { id, op: 'propose', group: o.group, data: o.data, timeoutMs };
    }
    case 'query': {
      // An empty one is the node's to answer (HQL_SQL, as on an embedded node).
      if (typeof o.sql !== 'string') bad('query.sql must be a string');
      if (o.sql.length > SQL_BYTES_MAX)
        bad(`query.sql is ${o.sql.length} characters long, more than a request carries (${SQL_BYTES_MAX})`);
      const consistency = o.consistency ?? 'local';
      if (consistency !== 'local' && consistency !== 'linearizable')
        bad('query.consistency must be local or linearizable');
      const minIndex = o.minIndex ?? 0;
      if (typeof minIndex !== 'number' || !Number.isSafeInteger(minIndex) || minIndex < 0)
        bad('query.minIndex must be >= 0');
      const params = o.params ?? [];
      if (typeof params !== 'object' || params === null) bad('query.params must be an array or a map');
      const timeoutMs = optionalTimeout(o.timeoutMs, 'query');
      if (timeoutMs === undefined) return { id, op: 'query', sql: o.sql, params, consistency, minIndex };
      return { id, op: 'query', sql: o.sql, params, consistency, minIndex, timeoutMs };
    }
    case 'metrics':
    case 'limits':
      return { id, op: o.op };
    case 'leader':
      return o.group === undefined ? { id, op: 'leader' } : { id, op: 'leader', group: groupOf(o) };
    case 'join': {
      if (typeof o.nonce !== 'string' || o.nonce.length === 0 || o.nonce.length > 64)
        bad('join.nonce must be a short string');
      if (o.sqlite !== undefined && typeof o.sqlite !== 'boolean') bad('join.sqlite must be a boolean');
      const join = {
        id,
        op: 'join',
        nodeId: nodeIdOf(o),
        nonce: o.nonce,
        ...(o.group === undefined ? {} : { group: groupOf(o) }),
        ...(o.sqlite === undefined ? {} : { sqlite: o.sqlite }),
      } as const;
      return join;
    }
    case 'promote': {
      const promote = { id, op: 'promote', nodeId: nodeIdOf(o) } as const;
      return o.group === undefined ? promote : { ...promote, group: groupOf(o) };
    }
    case 'removeNode': {
      const remove = { id, op: 'removeNode', nodeId: nodeIdOf(o) } as const;
      return o.group === undefined ? remove : { ...remove, group: groupOf(o) };
    }
    case 'backup': {
      const timeoutMs = optionalTimeout(o.timeoutMs, 'backup');
      return timeoutMs === undefined ? { id, op: 'backup' } : { id, op: 'backup', timeoutMs };
    }
    case 'backupList':
      return { id, op: 'backupList' };
    case 'ping':
      return { id, op: 'ping' };
    default:
      throw new ProtocolError('unknown-type', `api message: unknown op ${JSON.stringify(o.op)}`);
  }
}

/** Nesting depth of messages (rows inside results inside a txn) that is walked. */
const VALUE_DEPTH_MAX = 16;

/**
 * A decoded message as the API promises it: a bigint that is a safe integer is a number; with
 * `bytes`, binary (which msgpackr decodes as Node Buffers) is a plain Uint8Array, the type the
 * embedded node returns BLOBs as. Responses' values are revived with bytes, requests without.
 */
function revived(v: unknown, depth: number, bytes: boolean): unknown {
  if (typeof v === 'bigint') return v >= -SAFE_MAX && v <= SAFE_MAX ? Number(v) : v;
  if (v instanceof Uint8Array) {
    return !bytes || Object.getPrototypeOf(v) === Uint8Array.prototype
      ? v
      : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  if (depth >= VALUE_DEPTH_MAX || typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = revived(v[i], depth + 1, bytes);
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) o[k] = revived(o[k], depth + 1, bytes);
  return o;
}

export function decodeApiResponse(bytes: Uint8Array): ApiResponse {
  return responseOf(decodeMap(bytes));
}

/**
 * What a node sends a client: an answer, a frame pushed for one of its listeners, its goaway, or
 * an event (ApiEvent).
 */
export function decodeApiServerMessage(bytes: Uint8Array): ApiResponse | ApiPush | ApiGoAway | ApiEvent {
  const o = decodeMap(bytes);
  if (o.event !== undefined) return eventOf(o);
  if (o.push === undefined && o.goaway === undefined) return responseOf(o);
  revived(o, 0, false);
  return o.goaway === undefined ? decodeApiPush(o, errorBodyOf) : goAwayOf(o);
}

/** Event names are short words; a longer one is no event of any version. */
const API_EVENT_NAME_MAX = 64;

function eventOf(o: Record<string, unknown>): ApiEvent {
  const event = o.event;
  if (typeof event !== 'string' || event.length === 0 || event.length > API_EVENT_NAME_MAX)
    bad(`event must be a name of 1 to ${API_EVENT_NAME_MAX} characters`);
  const floor = o.floor;
  if (floor === undefined) return { event };
  if (typeof floor !== 'number' || !Number.isSafeInteger(floor) || floor < 0)
    bad('event.floor must be a non-negative integer');
  return { event, floor };
}

function goAwayOf(o: Record<string, unknown>): ApiGoAway {
  if (o.goaway !== true) bad('goaway must be true');
  const pending = o.pending;
  if (!Array.isArray(pending) || pending.length > GOAWAY_PENDING_MAX)
    bad(`goaway.pending must be an array of at most ${GOAWAY_PENDING_MAX} ids`);
  for (const id of pending)
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0)
      bad('goaway.pending must hold request ids');
  return { goaway: true, pending: pending as number[] };
}

function responseOf(o: Record<string, unknown>): ApiResponse {
  revived(o, 0, true);
  const id = requestId(o);
  if (o.ok === true) return { id, ok: true, value: o.value };
  if (o.ok !== false) bad('response.ok must be a boolean');
  return { id, ok: false, error: errorBodyOf(o.error) };
}

function errorBodyOf(error: unknown): ApiErrorBody {
  const e = error as Record<string, unknown> | null | undefined;
  if (typeof e !== 'object' || e === null) bad('response.error must be a map');
  if (typeof e.code !== 'string' || !e.code.startsWith('HQL_'))
    bad('response.error.code must be an HQL_ code');
  if (typeof e.message !== 'string') bad('response.error.message must be a string');
  const leaderId = e.leaderId;
  const details = e.details;
  return {
    code: e.code as ErrorCode,
    message: e.message,
    retryable: e.retryable === true,
    ...(typeof leaderId === 'number' || leaderId === null ? { leaderId } : {}),
    ...(typeof details === 'object' && details !== null
      ? { details: details as Record<string, unknown> }
      : {}),
  };
}

/** An optional `timeoutMs` of a request: a whole number of milliseconds, at least 1. */
function optionalTimeout(value: unknown, op: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    bad(`${op}.timeoutMs must be an integer >= 1`);
  return value;
}
