/**
 * The cache group's ops of the client-to-node API protocol (api-codec.ts), and the frames a node
 * pushes to a client that listens (docs/internals/api-protocol.md):
 *
 * - `cacheRead`: a read on the node the request reaches (`local`), or after a ReadIndex round of
 *   the cache group (`linearizable`). Writes are `propose` with `group: 'cache'` (the client's
 *   session inside the command bytes gives exactly-once).
 * - `cacheLock`: acquire a lock and wait on the node for the grant, bounded by `waitMs` and the
 *   request's `timeoutMs`. The node withdraws the waiter when the wait ends without a grant, when
 *   the connection closes, or on `cancel`.
 * - `listen` / `unlisten`: a subscription whose notifications the node pushes on the same
 *   connection as `ApiPush` frames tagged with the listen request's id. `afterSeq` resumes after
 *   the last notification seen (notification seqs are gap-free and the same on every member).
 * - `cancel`: stop serving an earlier request of this connection (its answer is HQL_ABORTED).
 *
 * Everything decoded here is untrusted: a field out of shape is a `ProtocolError`.
 */
import type { ApiErrorBody, Consistency } from './api-codec.js';
import { ProtocolError } from './protocol-error.js';

/**
 * A string field is refused above this many UTF-16 units (the node's byte limits are finer). A
 * string this long is longer than any cache key, name or channel can be (`keyBytesMax` is at
 * most 64 KiB): clients answer for such strings themselves (remote-cache.ts).
 */
export const CACHE_STRING_LENGTH_MAX = 1 << 18;
/** The longest lease or wait the protocol carries: 100 years, as the cache commands. */
export const CACHE_DURATION_MS_MAX = 100 * 366 * 24 * 60 * 60 * 1000;

export type CacheReadRequest =
  | { readonly type: 'get'; readonly cache: string; readonly key: string }
  | { readonly type: 'entries'; readonly cache: string }
  | { readonly type: 'counterGet'; readonly counter: string; readonly key: string };

export type CacheApiRequest =
  | {
      readonly id: number;
      readonly op: 'cacheRead';
      readonly read: CacheReadRequest;
      readonly consistency: Consistency;
      readonly timeoutMs?: number;
    }
  | {
      readonly id: number;
      readonly op: 'cacheLock';
      readonly key: string;
      /** Unique per attempt: the node registers the waiter under it. */
      readonly holderId: string;
      readonly leaseMs: number;
      /** 0: try-lock; absent: until granted, the request's deadline or `cancel`. */
      readonly waitMs?: number;
      readonly timeoutMs?: number;
    }
  | {
      readonly id: number;
      readonly op: 'listen';
      /** null: every channel. */
      readonly channel: string | null;
      /** Resume after this notification seq (what the client saw last); absent: from now. */
      readonly afterSeq?: number;
    }
  /** Ends the subscription opened by the `listen` request with id `sub`. */
  | { readonly id: number; readonly op: 'unlisten'; readonly sub: number }
  /** Stops serving the request with id `target` (it is answered HQL_ABORTED). */
  | { readonly id: number; readonly op: 'cancel'; readonly target: number };

export type CacheApiOp = CacheApiRequest['op'];

export const CACHE_API_OPS: ReadonlySet<string> = new Set<CacheApiOp>([
  'cacheRead',
  'cacheLock',
  'listen',
  'unlisten',
  'cancel',
]);

/** A notification as pushed: the state machine's, seq included. */
export interface PushedNotification {
  readonly channel: string;
  readonly payload: Uint8Array;
  readonly index: number;
  readonly time: number;
  readonly seq: number;
}

/**
 * A frame a node pushes for the subscription `push` (the id of its `listen` request). `lagged`
 * and `end` end the subscription: `lagged` when notifications were dropped (the listener fell
 * behind, or a resume asked for ones the node no longer holds), `end` on any other reason
 * (the node shuts down, a proxy lost its way to the cluster): a retryable error means "listen
 * again with afterSeq".
 */
export type ApiPush =
  | { readonly push: number; readonly items: readonly PushedNotification[] }
  | { readonly push: number; readonly lagged: number }
  | { readonly push: number; readonly end: ApiErrorBody };

function bad(detail: string): never {
  throw new ProtocolError('malformed', `api message: ${detail}`);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') bad(`${what} must be a string`);
  if (v.length > CACHE_STRING_LENGTH_MAX)
    bad(`${what} is ${v.length} characters long, more than a request carries (${CACHE_STRING_LENGTH_MAX})`);
  return v;
}

function whole(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    bad(`${what} must be an integer in [${min}, ${max}]`);
  return v;
}

function timeout(v: unknown, op: string): { timeoutMs?: number } {
  return v === undefined ? {} : { timeoutMs: whole(v, `${op}.timeoutMs`, 1, Number.MAX_SAFE_INTEGER) };
}

function readOf(v: unknown): CacheReadRequest {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('cacheRead.read must be a map');
  const r = v as Record<string, unknown>;
  switch (r.type) {
    case 'get':
      return { type: 'get', cache: str(r.cache, 'read.cache'), key: str(r.key, 'read.key') };
    case 'entries':
      return { type: 'entries', cache: str(r.cache, 'read.cache') };
    case 'counterGet':
      return { type: 'counterGet', counter: str(r.counter, 'read.counter'), key: str(r.key, 'read.key') };
    default:
      return bad(`cacheRead.read.type ${JSON.stringify(r.type)} is unknown`);
  }
}

/** Decodes a cache op's fields (`o.op` is one of CACHE_API_OPS). */
export function decodeCacheApiRequest(o: Record<string, unknown>, id: number): CacheApiRequest {
  switch (o.op) {
    case 'cacheRead': {
      const consistency = o.consistency ?? 'local';
      if (consistency !== 'local' && consistency !== 'linearizable')
        bad('cacheRead.consistency must be local or linearizable');
      return { id, op: 'cacheRead', read: readOf(o.read), consistency, ...timeout(o.timeoutMs, 'cacheRead') };
    }
    case 'cacheLock': {
      const holderId = str(o.holderId, 'cacheLock.holderId');
      if (holderId.length === 0) bad('cacheLock.holderId must not be empty');
      return {
        id,
        op: 'cacheLock',
        key: str(o.key, 'cacheLock.key'),
        holderId,
        leaseMs: whole(o.leaseMs, 'cacheLock.leaseMs', 1, CACHE_DURATION_MS_MAX),
        ...(o.waitMs === undefined
          ? {}
          : { waitMs: whole(o.waitMs, 'cacheLock.waitMs', 0, CACHE_DURATION_MS_MAX) }),
        ...timeout(o.timeoutMs, 'cacheLock'),
      };
    }
    case 'listen': {
      const channel = o.channel === undefined || o.channel === null ? null : str(o.channel, 'listen.channel');
      return o.afterSeq === undefined
        ? { id, op: 'listen', channel }
        : {
            id,
            op: 'listen',
            channel,
            afterSeq: whole(o.afterSeq, 'listen.afterSeq', 0, Number.MAX_SAFE_INTEGER),
          };
    }
    case 'unlisten':
      return { id, op: 'unlisten', sub: whole(o.sub, 'unlisten.sub', 0, Number.MAX_SAFE_INTEGER) };
    case 'cancel':
      return { id, op: 'cancel', target: whole(o.target, 'cancel.target', 0, Number.MAX_SAFE_INTEGER) };
    default:
      return bad(`not a cache op: ${JSON.stringify(o.op)}`);
  }
}

/** Items of one push frame are refused beyond this (a node sends far fewer). */
const PUSH_ITEMS_MAX = 1 << 16;

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) bad(`${what} must be bytes`);
  // msgpackr decodes binary as a Node Buffer: hand out plain Uint8Arrays, as the embedded node.
  return Object.getPrototypeOf(v) === Uint8Array.prototype
    ? v
    : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Decodes a pushed frame (`o.push` is present). */
export function decodeApiPush(o: Record<string, unknown>, errorOf: (e: unknown) => ApiErrorBody): ApiPush {
  const push = whole(o.push, 'push', 0, Number.MAX_SAFE_INTEGER);
  if (o.items !== undefined) {
    if (!Array.isArray(o.items) || o.items.length > PUSH_ITEMS_MAX) bad('push.items must be an array');
    const items = o.items.map((raw: unknown): PushedNotification => {
      if (typeof raw !== 'object' || raw === null) bad('push.items[] must be maps');
      const n = raw as Record<string, unknown>;
      return {
        channel: str(n.channel, 'push.items[].channel'),
        payload: bytes(n.payload, 'push.items[].payload'),
        index: whole(n.index, 'push.items[].index', 1, Number.MAX_SAFE_INTEGER),
        time: whole(n.time, 'push.items[].time', 0, Number.MAX_SAFE_INTEGER),
        seq: whole(n.seq, 'push.items[].seq', 1, Number.MAX_SAFE_INTEGER),
      };
    });
    return { push, items };
  }
  if (o.lagged !== undefined)
    return { push, lagged: whole(o.lagged, 'push.lagged', 0, Number.MAX_SAFE_INTEGER) };
  if (o.end !== undefined) return { push, end: errorOf(o.end) };
  return bad('a push carries items, lagged or end');
}
