/**
 * The HTTP status of an error code, the same on every HTTP surface (the API port's JSON and cache
 * routes, a proxy's, the dashboard's). 4xx says the request is at fault and must be changed; 5xx
 * says the server could not do it now (docs/ERRORS.md, "HTTP routes of the API port"). The
 * switch is exhaustive: a new code must be given its status here.
 */
import type { ErrorCode } from './errors.js';

export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'HQL_UNAUTHORIZED':
      return 401;
    case 'HQL_NOT_FOUND':
    case 'HQL_NO_ROWS':
    case 'HQL_BACKUP_NOT_FOUND':
      return 404;
    // A request larger than a limit: the same request will never fit.
    case 'HQL_REQUEST_TOO_LARGE':
    case 'HQL_ENTRY_TOO_LARGE':
    case 'HQL_CACHE_TOO_LARGE':
      return 413;
    // A cache-only node has no SQLite: the route exists, this server does not implement it.
    case 'HQL_SQLITE_DISABLED':
      return 501;
    // A capacity limit of the cache group: the request is well formed, the server has no room
    // for it now (entries expire, others are deleted). Not 503: the node is healthy, and every
    // node of the cluster holds the same state, so a load balancer should not fail over.
    case 'HQL_CACHE_FULL':
      return 507;
    // Too many clients started writing within session_protect_ms: retry later. Every node
    // holds the same sessions, so failing over does not help either.
    case 'HQL_SESSIONS_FULL':
      return 429;
    // The server, not the request: retry later (or on another node).
    case 'HQL_NOT_LEADER':
    case 'HQL_UNAVAILABLE':
    case 'HQL_OVERLOADED':
    case 'HQL_LEADERSHIP_TRANSFER':
    case 'HQL_PROPOSAL_DROPPED':
    case 'HQL_CONFIG_CHANGE_PENDING':
    case 'HQL_CLOSED':
    case 'HQL_UNREACHABLE':
    case 'HQL_SNAPSHOT_FAILED':
      return 503;
    case 'HQL_TIMEOUT':
    case 'HQL_OUTCOME_UNKNOWN':
      return 504;
    // An upstream (S3) failed.
    case 'HQL_S3':
      return 502;
    // The server's own state or configuration is at fault.
    case 'HQL_IO':
    case 'HQL_INTERNAL':
    case 'HQL_CORRUPTION':
    case 'HQL_CLUSTER_MISMATCH':
    case 'HQL_BACKUP_CORRUPT':
    case 'HQL_BACKUP_KEY_UNKNOWN':
    case 'HQL_BACKUP_UNSUPPORTED':
      return 500;
    // The request is at fault: change it.
    case 'HQL_ABORTED':
    case 'HQL_INVALID_CONFIG_CHANGE':
    case 'HQL_INVALID_CONFIG':
    case 'HQL_PROTOCOL':
    case 'HQL_SQL':
    case 'HQL_CONSTRAINT':
    case 'HQL_INVALID_PARAMS':
    case 'HQL_NONDETERMINISTIC':
    case 'HQL_STATEMENT_NOT_ALLOWED':
    case 'HQL_MALFORMED_COMMAND':
    case 'HQL_MIGRATION_ORDER':
    case 'HQL_MIGRATION_CHANGED':
    case 'HQL_SESSION_STALE':
    case 'HQL_SESSION_RESULT_UNAVAILABLE':
    case 'HQL_READONLY':
    case 'HQL_RESULT_TOO_LARGE':
    case 'HQL_LAGGED':
      return 400;
  }
}
