/**
 * A node that cannot bind one of its ports says which address it is and which configuration keys
 * set it: the port is the one of the node's own `nodes` entry, the host is `listen_addr_raft` /
 * `listen_addr_api` when set (docs/CONFIGURATION.md). Without this, a busy port reads as a bare
 * `EADDRINUSE` with no hint of where the address came from.
 */
import { HiqliteError } from '../lib/errors.js';
import { type NodeConfig, resolveConfig } from '../node/config/config.js';

const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is in use (by another process, or by a node this process started and has not closed)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the host is not an address of this machine',
};

interface ListenFailure {
  readonly code: string;
  readonly port: number;
}

/** The system error of a failed listen() in `e` or its chain of causes, if any. */
function listenFailure(e: unknown): ListenFailure | null {
  let cur: unknown = e;
  for (let depth = 0; depth < 5 && typeof cur === 'object' && cur !== null; depth++) {
    const o = cur as { code?: unknown; syscall?: unknown; port?: unknown; cause?: unknown };
    if (o.syscall === 'listen' && typeof o.code === 'string' && typeof o.port === 'number')
      return { code: o.code, port: o.port };
    cur = o.cause;
  }
  return null;
}

/**
 * `e` explained if it is a failure to bind the node's Raft or API address; otherwise `e` itself.
 * The code stays `HQL_IO`, which a failed listen on the Raft port already had.
 */
export function explainListenError(e: unknown, config: NodeConfig): unknown {
  const failure = listenFailure(e);
  if (failure === null) return e;
  let cfg: ReturnType<typeof resolveConfig>;
  try {
    cfg = resolveConfig(config);
  } catch {
    return e;
  }
  const which =
    failure.port === cfg.listenRaft.port
      ? { name: 'Raft', listen: cfg.listenRaft, key: 'listen_addr_raft (listenAddrRaft)' }
      : failure.port === cfg.listenApi.port
        ? { name: 'API', listen: cfg.listenApi, key: 'listen_addr_api (listenAddrApi)' }
        : null;
  if (which === null) return e;
  const reason = REASONS[failure.code] ?? failure.code;
  return new HiqliteError(
    'HQL_IO',
    `node ${cfg.nodeId} cannot listen on ${which.listen.host}:${which.listen.port}, its ${which.name} address: ` +
      `${reason} (${failure.code}). The port is the ${which.name} port in node ${cfg.nodeId}'s entry of ` +
      `nodes; the host is ${which.key} if set, else the host of that entry.`,
    { retryable: false, cause: e },
  );
}

/**
 * A failed listen() in `e` as a sentence ("the port is in use (EADDRINUSE)"), or null when `e`
 * is no such failure: for the proxy, whose address is one key (`proxy_addr_api`).
 */
export function listenFailureReason(e: unknown): string | null {
  const failure = listenFailure(e);
  return failure === null ? null : `${REASONS[failure.code] ?? failure.code} (${failure.code})`;
}
