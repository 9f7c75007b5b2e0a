/**
 * The path and query of an HTTP request, as the client sent them: what every route of the API
 * port and the dashboard is matched against.
 *
 * Not `new URL(req.url)`: the URL parser resolves dot segments, encoded ones included, so
 * `/cache/x/%2e%2e/%2e%2e/query` became `/query`. A reverse proxy that lets only `/cache/*` through
 * (it does not resolve `%2e%2e`) then reached the SQL routes. Here the path is taken as sent:
 * a literal `.` or `..` segment is refused (clients resolve those before sending; one that
 * arrives is a request meant to be read two ways), an encoded one (`%2E%2E`) is data, decoded by
 * the route that reads it (a cache key `..`), and a backslash, which the URL parser reads as `/`,
 * is refused too. Only printable ASCII is taken: clients percent-encode everything else.
 */
import { HiqliteError } from '../lib/errors.js';

export interface RequestTarget {
  /** The path as sent, still percent-encoded. */
  readonly pathname: string;
  /** `?` and the query as sent, or '' without one. */
  readonly search: string;
  readonly searchParams: URLSearchParams;
}

/** `scheme://authority` of a request target in absolute form (sent to proxies, allowed to servers). */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** The target of a request (`req.url`); HQL_INVALID_PARAMS when it cannot be read one way only. */
export function requestTarget(raw: string | undefined): RequestTarget {
  let target = raw ?? '/';
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute !== null) target = target.slice(absolute[0].length) || '/';
  if (!target.startsWith('/')) throw badTarget('the request target must be a path starting with /');
  const q = target.indexOf('?');
  const pathname = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? null : target.slice(q + 1);
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x23 /* # */)
      throw badTarget('the request target holds a character that must be percent-encoded');
  }
  if (pathname.includes('\\')) throw badTarget('the path holds a backslash: percent-encode it as %5C');
  for (const segment of pathname.split('/'))
    if (segment === '.' || segment === '..')
      throw badTarget(`the path has a "${segment}" segment: percent-encode it (%2E) to mean the text`);
  return {
    pathname,
    search: query === null || query === '' ? '' : `?${query}`,
    searchParams: new URLSearchParams(query ?? ''),
  };
}

function badTarget(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}
