/**
 * Where the proxy sends each op of the binary API protocol, and how it retries it
 * (cluster-link.ts): one line per op. An op missing here (one added to api-codec.ts later) is
 * still carried: to the leader, which can answer any op, sent at most once (`once`), its answer
 * returned as it is. Add a line to route it to any node, or to let the proxy retry it.
 */
import type { LinkKind, LinkRoute } from '../client/cluster-link.js';
import type { ApiOp, ApiRequest } from '../protocol/api-codec.js';

export type OpRoute =
  /** Forwarded to the cluster. */
  | { readonly forward: true; readonly kind: LinkKind; readonly route: LinkRoute }
  /** Answered by the proxy itself (`leader`: the proxy is where a client sends leader work). */
  | { readonly forward: false; readonly answer: 'leader' | 'limits' }
  /** Refused: membership changes travel between nodes, never through a proxy. */
  | { readonly forward: false; readonly answer: 'refuse' };

type Rule = OpRoute | ((req: ApiRequest) => OpRoute);

const toLeader = (kind: LinkKind): OpRoute => ({ forward: true, kind, route: 'leader' });
const toAny = (kind: LinkKind): OpRoute => ({ forward: true, kind, route: 'any' });

/** The default of an op not in the table. */
export const UNKNOWN_OP_ROUTE: OpRoute = toLeader('once');

export const OP_ROUTES: Readonly<Partial<Record<ApiOp, Rule>>> = {
  // Carries the client's session and sequence number unchanged: retried, it is deduplicated.
  propose: toLeader('write'),
  query: (req) =>
    req.op === 'query' && req.consistency === 'linearizable' ? toLeader('read') : toAny('read'),
  metrics: toAny('other'),
  limits: { forward: false, answer: 'limits' },
  leader: { forward: false, answer: 'leader' },
  join: { forward: false, answer: 'refuse' },
  // An operator's removal of a node (removeNode): any node takes it; a repeat answers the same.
  removeNode: toAny('other'),
  promote: { forward: false, answer: 'refuse' },
  // The cache group (cache-api-codec.ts). Writes are `propose` (above). A linearizable read
  // goes to the cache group's leader, a local one to any node; a lock waits on the cache
  // leader, sent once (its node withdraws the waiter when the proxy's connection fails or the
  // client cancels; the client asks again with a new holder id). `listen`, `unlisten` and
  // `cancel` are ops of the client's connection, served by the proxy's API server (a listener
  // is relayed from one node: relay-listen.ts), never forwarded as requests.
  cacheRead: (req) =>
    req.op === 'cacheRead' && req.consistency === 'linearizable' ? toLeader('read') : toAny('read'),
  cacheLock: toLeader('once'),
};

export function routeOf(req: ApiRequest): OpRoute {
  const rule = OP_ROUTES[req.op];
  if (rule === undefined) return UNKNOWN_OP_ROUTE;
  return typeof rule === 'function' ? rule(req) : rule;
}
