/**
 * The dashboard: a web page served on the API port under `/dashboard`, enabled by
 * `password_dashboard`, and its JSON routes under `/dashboard/api/`. This is the router and the
 * guard in front of every route:
 *
 * - Login (`POST /dashboard/api/login`) checks the password against the Argon2id hash of the
 *   config, rate-limited per client address and globally (login-limiter.ts), one verification at
 *   a time. Success creates a session (sessions.ts): a random token in an HttpOnly,
 *   SameSite=Strict cookie, `__Host-` and `Secure` unless `insecure_cookie`.
 * - Every other API route needs a live session; state-changing ones (POST) also need the
 *   session's CSRF token in `X-CSRF-Token`, and are refused when the browser says they come from
 *   another site.
 * - Every answer carries a strict Content-Security-Policy and the other headers of http.ts.
 *
 * No secret reaches the browser: not the password hash, not `secret_api` (peers are asked by the
 * node), not the session token (HttpOnly). A connection that presents a live session counts as
 * authenticated for the port's connection bounds (`admit`); any other is answered with
 * `Connection: close`, so strangers hold no idle connections.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type BodyLimits,
  HTTP_BODY_TIMEOUT_MS_DEFAULT,
  HTTP_JSON_DEPTH_MAX_DEFAULT,
  HTTP_JSON_VALUES_MAX_DEFAULT,
  HttpBodyError,
  methodNotAllowedMessage,
  readJsonObject,
} from '../http/http-body.js';
import { badlyEncodedQueryParam } from '../http/query-encoding.js';
import { consistencyOf, onlyFields, onlyParams } from '../http/request-fields.js';
import { type RequestTarget, requestTarget } from '../http/request-target.js';
import { assert } from '../lib/assert.js';
import type { Clock } from '../lib/clock.js';
import { type ErrorCode, HiqliteError } from '../lib/errors.js';
import { httpStatusOf } from '../lib/http-status.js';
import type { ApiAnswer, SessionInfo } from './api-types.js';
import { type AssetMap, loadAssets } from './assets.js';
import type { DashboardBackend } from './backend.js';
import { BackupPanel } from './backup-panel.js';
import {
  cacheKeyPage,
  cacheOverview,
  KEYS_OFFSET_MAX,
  KEYS_PAGE_DEFAULT,
  KEYS_PAGE_MAX,
} from './cache-browser.js';
import { CLUSTER_STATUS_DEFAULT, type ClusterStatusOptions, ClusterStatusSource } from './cluster-status.js';
import {
  clearedCookie,
  crossSite,
  readCookie,
  SECURITY_HEADERS,
  sendError,
  sendJson,
  sessionCookie,
} from './http.js';
import { LOGIN_LIMITS_DEFAULT, LoginLimiter, type LoginLimits } from './login-limiter.js';
import { PASSWORD_BYTES_MAX, type PhcArgon2id, parsePhc, verifyPassword } from './password.js';
import { browseRows, listSchema } from './schema-browser.js';
import {
  csrfMatches,
  SESSION_LIMITS_DEFAULT,
  type Session,
  type SessionLimits,
  SessionStore,
} from './sessions.js';
import {
  executeWrite,
  OFFSET_MAX,
  PAGE_ROWS_DEFAULT,
  PAGE_ROWS_MAX,
  queryPage,
  SQL_CHARS_MAX,
} from './sql-console.js';

export const DASHBOARD_PREFIX = '/dashboard';

export interface DashboardLimits {
  readonly login: LoginLimits;
  readonly sessions: SessionLimits;
  readonly cluster: ClusterStatusOptions;
  /** Largest JSON body of a dashboard request (a statement of the console and its envelope). */
  readonly bodyBytesMax: number;
  /** How long a request body may take to arrive (`http_body_timeout_ms`); later is 408. */
  readonly bodyTimeoutMs: number;
  /** How deep a JSON body may nest (`http_json_depth_max`); deeper is 400. */
  readonly jsonDepthMax: number;
  /** How many values a JSON body may hold (`http_json_values_max`); more is 400. */
  readonly jsonValuesMax: number;
  /** Logins waiting for the one verification in progress; beyond, 429. */
  readonly loginQueueMax: number;
}

export const DASHBOARD_LIMITS_DEFAULT: DashboardLimits = {
  login: LOGIN_LIMITS_DEFAULT,
  sessions: SESSION_LIMITS_DEFAULT,
  cluster: CLUSTER_STATUS_DEFAULT,
  bodyBytesMax: 4 * SQL_CHARS_MAX,
  bodyTimeoutMs: HTTP_BODY_TIMEOUT_MS_DEFAULT,
  jsonDepthMax: HTTP_JSON_DEPTH_MAX_DEFAULT,
  jsonValuesMax: HTTP_JSON_VALUES_MAX_DEFAULT,
  loginQueueMax: 4,
};

export interface DashboardOptions {
  /** `password_dashboard`: an Argon2id PHC string (or base64 of one), checked by config validation. */
  readonly passwordHash: string;
  readonly insecureCookie: boolean;
  readonly clock: Clock;
  readonly limits?: Partial<DashboardLimits>;
  readonly logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

type Route = (req: IncomingMessage, res: ServerResponse, s: Session, signal: AbortSignal) => Promise<unknown>;

/** Refused logins are logged at most once per this long (with their count). */
const RATE_LIMIT_LOG_MS = 10_000;

export class Dashboard {
  readonly prefix = DASHBOARD_PREFIX;
  private readonly phc: PhcArgon2id;
  private readonly limits: DashboardLimits;
  private readonly sessions: SessionStore;
  private readonly limiter: LoginLimiter;
  private rateLimited = 0;
  private rateLimitLoggedAtMs = Number.NEGATIVE_INFINITY;
  private readonly cluster: ClusterStatusSource;
  private readonly backups: BackupPanel | null;
  private verifying: Promise<unknown> = Promise.resolve();
  private loginsWaiting = 0;
  private readonly gets: ReadonlyMap<string, Route>;
  private readonly posts: ReadonlyMap<string, Route>;

  constructor(
    private readonly backend: DashboardBackend,
    private readonly o: DashboardOptions,
  ) {
    const parsed = parsePhc(o.passwordHash);
    assert(parsed.ok, 'password_dashboard is validated with the config');
    this.phc = parsed.value;
    this.limits = { ...DASHBOARD_LIMITS_DEFAULT, ...o.limits };
    const now = () => o.clock.monotonicMs();
    this.sessions = new SessionStore(this.limits.sessions, now);
    this.limiter = new LoginLimiter(this.limits.login, now);
    this.cluster = new ClusterStatusSource(backend, o.clock, this.limits.cluster);
    const backups = backend.backups === undefined ? null : new BackupPanel(backend.backups, o.clock);
    this.backups = backups;
    // The pages of features beside the SQL group (the extension point): routes only where the
    // feature exists on this node.
    const featureGets: [string, Route][] = [];
    const featurePosts: [string, Route][] = [];
    const caches = backend.caches;
    if (caches !== undefined) {
      featureGets.push(['caches', async () => cacheOverview(caches)]);
      featureGets.push(['cache-keys', async (req) => cacheKeyPage(caches, cacheKeysQuery(req))]);
    }
    if (backups !== null) {
      featureGets.push(['backups', async (_q, _r, _s, signal) => backups.list(signal)]);
      featurePosts.push(['backup', async () => backups.create()]);
    }
    this.gets = new Map<string, Route>([
      ['session', async (_q, _r, s) => this.sessionInfo(s)],
      ['cluster', async () => this.cluster.get()],
      ['metrics', async () => this.backend.metrics()],
      ['tables', async (_q, _r, _s, signal) => listSchema(this.backend, signal, now)],
      ['rows', async (req, _r, _s, signal) => this.rows(req, signal)],
      ...featureGets,
    ]);
    this.posts = new Map<string, Route>([
      ['logout', async (req, res) => this.logout(req, res)],
      ['query', async (req, _r, _s, signal) => this.query(req, signal)],
      ['execute', async (req) => this.execute(req)],
      ...featurePosts,
    ]);
  }

  /** Sessions alive now (for tests and metrics). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Requests waiting for the backup this dashboard asked for (for tests). */
  get backupRequestsWaiting(): number {
    return this.backups?.waiting ?? 0;
  }

  /** Serves one request under `/dashboard`; `admit` marks the connection authenticated. */
  async serve(req: IncomingMessage, res: ServerResponse, admit: () => void): Promise<void> {
    let url: RequestTarget;
    try {
      url = requestTarget(req.url);
    } catch (e) {
      if (!(e instanceof HiqliteError)) throw e;
      return sendError(res, 400, 'HQL_INVALID_PARAMS', e.message);
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (!path.startsWith(`${DASHBOARD_PREFIX}/api/`)) return this.serveStatic(method, path, req, res);
    const name = path.slice(`${DASHBOARD_PREFIX}/api/`.length);
    const badParam = badlyEncodedQueryParam(url.search);
    if (badParam !== null)
      return sendError(
        res,
        400,
        'HQL_INVALID_PARAMS',
        `the query parameter ${JSON.stringify(badParam)} is not valid percent-encoded UTF-8 (it would be read as another value)`,
      );
    if (method === 'POST' && name === 'login') return this.login(req, res, admit);
    const route = (method === 'GET' ? this.gets : method === 'POST' ? this.posts : undefined)?.get(name);
    if (route === undefined) {
      const allow = [
        ...(this.gets.has(name) ? ['GET'] : []),
        ...(this.posts.has(name) || name === 'login' ? ['POST'] : []),
      ];
      if (allow.length === 0) return this.fail(res, 404, 'HQL_NOT_FOUND', `no route ${method} ${path}`, true);
      const methods = allow.join(', ');
      return this.fail(res, 405, 'HQL_INVALID_PARAMS', methodNotAllowedMessage(method, path, methods), true, {
        allow: methods,
      });
    }
    // A misspelled or repeated parameter is refused, as on the API port's routes (it was read
    // as absent, or as its first value, in silence).
    try {
      onlyParams(url.searchParams, method === 'GET' ? (GET_PARAMS[name] ?? []) : []);
    } catch (e) {
      if (!(e instanceof HiqliteError)) throw e;
      return this.fail(res, 400, 'HQL_INVALID_PARAMS', e.message, true);
    }
    const session = this.sessions.use(readCookie(req, this.cookie));
    if (session === null)
      return this.fail(res, 401, 'HQL_UNAUTHORIZED', 'log in first (no session, or it expired)', true);
    if (method === 'POST') {
      if (crossSite(req)) return this.fail(res, 403, 'HQL_UNAUTHORIZED', 'cross-site request refused', true);
      const csrf = req.headers['x-csrf-token'];
      if (!csrfMatches(session, typeof csrf === 'string' ? csrf : undefined))
        return this.fail(res, 403, 'HQL_UNAUTHORIZED', 'missing or wrong X-CSRF-Token', true);
    }
    admit();
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    try {
      const value = await route(req, res, session, gone.signal);
      if (!res.headersSent) sendJson(res, 200, { ok: true, value } as ApiAnswer<unknown>);
    } catch (e) {
      this.sendCaught(res, e);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private get cookie(): { insecure: boolean } {
    return { insecure: this.o.insecureCookie };
  }

  private async login(req: IncomingMessage, res: ServerResponse, admit: () => void): Promise<void> {
    const address = req.socket.remoteAddress ?? 'unknown';
    if (crossSite(req)) return this.fail(res, 403, 'HQL_UNAUTHORIZED', 'cross-site request refused', true);
    const verdict = this.limiter.attempt(address);
    if (!verdict.ok) {
      this.logRateLimited(address, verdict.scope);
      return this.tooMany(res, verdict.retryAfterMs);
    }
    const body = await readJsonObject(req, this.bodyLimits(4 * PASSWORD_BYTES_MAX)).catch((e: unknown) => {
      if (e instanceof HttpBodyError) return e;
      throw e;
    });
    // Too large (413 HQL_REQUEST_TOO_LARGE) or late (408 HQL_TIMEOUT), as on every other route;
    // only a body that is not a JSON object is the 400 below.
    if (body instanceof HttpBodyError && body.status !== 400)
      return this.fail(res, body.status, body.code, body.message, true);
    if (body instanceof HttpBodyError || typeof body.password !== 'string')
      return this.fail(res, 400, 'HQL_INVALID_PARAMS', 'the body must be {"password": "..."}', true);
    if (this.loginsWaiting >= this.limits.loginQueueMax) return this.tooMany(res, 1000);
    this.loginsWaiting++;
    const password = body.password;
    const check = this.verifying.then(() => verifyPassword(password, this.phc));
    this.verifying = check.catch(() => false);
    let ok: boolean;
    try {
      ok = await check;
    } finally {
      this.loginsWaiting--;
    }
    if (!ok) {
      this.o.logger?.warn({ address }, 'dashboard login refused: wrong password');
      return this.fail(res, 401, 'HQL_UNAUTHORIZED', 'wrong password', true);
    }
    this.limiter.succeeded(address);
    // A new session each login (an old cookie is never promoted: no session fixation).
    this.sessions.end(readCookie(req, this.cookie));
    const { token, session } = this.sessions.create();
    // The connection proved the password: the port's bound and deadline for strangers no longer apply.
    admit();
    this.o.logger?.info({ address }, 'dashboard login');
    sendJson(
      res,
      200,
      { ok: true, value: this.sessionInfo(session) },
      {
        'set-cookie': sessionCookie(this.cookie, token),
      },
    );
  }

  /**
   * One warning per RATE_LIMIT_LOG_MS with the count since the last: a line for every refused
   * attempt let anyone grow the log by ~50 KB/s without a password.
   */
  private logRateLimited(address: string, scope: 'address' | 'global'): void {
    this.rateLimited++;
    const t = performance.now();
    if (t - this.rateLimitLoggedAtMs < RATE_LIMIT_LOG_MS) return;
    this.o.logger?.warn({ address, scope, refused: this.rateLimited }, 'dashboard logins rate-limited');
    this.rateLimited = 0;
    this.rateLimitLoggedAtMs = t;
  }

  private async logout(req: IncomingMessage, res: ServerResponse): Promise<null> {
    this.sessions.end(readCookie(req, this.cookie));
    sendJson(
      res,
      200,
      { ok: true, value: null },
      { 'set-cookie': clearedCookie(this.cookie), connection: 'close' },
    );
    return null;
  }

  private sessionInfo(s: Session): SessionInfo {
    return {
      csrfToken: s.csrfToken,
      nodeId: this.backend.nodeId,
      expiresInMs: Math.max(0, Math.round(this.sessions.expiresAtMs(s) - this.o.clock.monotonicMs())),
      features: this.backend.features(),
    };
  }

  private async query(req: IncomingMessage, signal: AbortSignal): Promise<unknown> {
    const body = await this.body(req);
    onlyFields(body, ['sql', 'consistency', 'offset', 'limit'], 'query');
    const sql = sqlOf(body);
    const consistency = consistencyOf(body.consistency ?? 'local', 'consistency');
    const offset = intOf(body.offset, 0, OFFSET_MAX, 0, 'offset');
    const limit = intOf(body.limit, 1, PAGE_ROWS_MAX, PAGE_ROWS_DEFAULT, 'limit');
    return queryPage(this.backend, { sql, consistency, offset, limit }, signal, () =>
      this.o.clock.monotonicMs(),
    );
  }

  private async execute(req: IncomingMessage): Promise<unknown> {
    const body = await this.body(req);
    onlyFields(body, ['sql'], 'execute');
    const sql = sqlOf(body);
    return executeWrite(this.backend, sql, () => this.o.clock.monotonicMs());
  }

  private async rows(req: IncomingMessage, signal: AbortSignal): Promise<unknown> {
    const q = requestTarget(req.url).searchParams;
    const name = q.get('name') ?? '';
    if (name.length === 0 || name.length > 1024) throw invalid('rows needs ?name=<table or view>');
    const offset = intOf(numberOrUndefined(q.get('offset')), 0, OFFSET_MAX, 0, 'offset');
    const limit = intOf(numberOrUndefined(q.get('limit')), 1, PAGE_ROWS_MAX, PAGE_ROWS_DEFAULT, 'limit');
    return browseRows(this.backend, name, offset, limit, signal, () => this.o.clock.monotonicMs());
  }

  private body(req: IncomingMessage): Promise<Record<string, unknown>> {
    return readJsonObject(req, this.bodyLimits(this.limits.bodyBytesMax));
  }

  private bodyLimits(bytesMax: number): BodyLimits {
    return {
      bytesMax,
      timeoutMs: this.limits.bodyTimeoutMs,
      jsonDepthMax: this.limits.jsonDepthMax,
      jsonValuesMax: this.limits.jsonValuesMax,
    };
  }

  private async serveStatic(
    method: string,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD')
      return this.fail(
        res,
        405,
        'HQL_INVALID_PARAMS',
        methodNotAllowedMessage(method, path, 'GET, HEAD'),
        true,
        {
          allow: 'GET, HEAD',
        },
      );
    if (path === DASHBOARD_PREFIX) {
      res.writeHead(302, { ...SECURITY_HEADERS, location: `${DASHBOARD_PREFIX}/`, connection: 'close' });
      res.end();
      return;
    }
    const name =
      path === `${DASHBOARD_PREFIX}/` || path === `${DASHBOARD_PREFIX}/index.html`
        ? 'index.html'
        : path === `${DASHBOARD_PREFIX}/favicon.svg`
          ? 'favicon.svg'
          : path.startsWith(`${DASHBOARD_PREFIX}/assets/`)
            ? path.slice(`${DASHBOARD_PREFIX}/assets/`.length)
            : null;
    let assets: AssetMap;
    try {
      assets = await loadAssets();
    } catch (e) {
      this.o.logger?.warn({ err: e instanceof Error ? e.message : String(e) }, 'dashboard page unavailable');
      return this.fail(res, 503, 'HQL_UNAVAILABLE', e instanceof Error ? e.message : String(e), true);
    }
    const asset = name === null || name.includes('/') ? undefined : assets.get(name);
    if (asset === undefined) return this.fail(res, 404, 'HQL_NOT_FOUND', `no file ${path}`, true);
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'content-type': asset.contentType,
      'cache-control': asset.cacheControl,
      etag: asset.etag,
      vary: 'accept-encoding',
      connection: 'close',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const gzip = asset.gzip !== null && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const bytes = gzip && asset.gzip !== null ? asset.gzip : asset.bytes;
    res.writeHead(200, {
      ...headers,
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      'content-length': String(bytes.byteLength),
    });
    res.end(method === 'HEAD' ? undefined : bytes);
  }

  private tooMany(res: ServerResponse, retryAfterMs: number): void {
    const secs = Math.max(1, Math.ceil(retryAfterMs / 1000));
    this.fail(res, 429, 'HQL_OVERLOADED', `too many login attempts: try again in ${secs} s`, true, {
      'retry-after': String(secs),
    });
  }

  /** An error answer; `close` for requests without a session (strangers keep no connection). */
  private fail(
    res: ServerResponse,
    status: number,
    code: ErrorCode,
    message: string,
    close: boolean,
    headers: Record<string, string> = {},
  ): void {
    sendError(res, status, code, message, close ? { ...headers, connection: 'close' } : headers);
  }

  private sendCaught(res: ServerResponse, e: unknown): void {
    if (res.headersSent) return;
    // A body refused (too large, late, not JSON): its own status, and a 413 or 408 closes.
    if (e instanceof HttpBodyError) {
      this.fail(res, e.status, e.code, e.message, e.closeConnection);
      return;
    }
    if (!(e instanceof HiqliteError)) {
      this.o.logger?.warn({ err: e instanceof Error ? e.stack : String(e) }, 'dashboard: internal error');
      sendError(res, 500, 'HQL_INTERNAL', `internal error: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    sendJson(res, httpStatusOf(e.code), {
      ok: false,
      error: { code: e.code, message: e.message, retryable: e.retryable },
    });
  }
}

/** The query parameters each GET route reads; the others take none. */
const GET_PARAMS: Readonly<Record<string, readonly string[]>> = {
  rows: ['name', 'offset', 'limit'],
  'cache-keys': ['kind', 'name', 'offset', 'limit'],
};

function invalid(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}

function sqlOf(body: Record<string, unknown>): string {
  const sql = body.sql;
  if (typeof sql !== 'string' || sql.trim().length === 0) throw invalid('"sql" must be a statement');
  if (sql.length > SQL_CHARS_MAX) throw invalid(`"sql" is longer than ${SQL_CHARS_MAX} characters`);
  return sql;
}

function intOf(v: unknown, min: number, max: number, dflt: number, what: string): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw invalid(`"${what}" must be an integer from ${min} to ${max}`);
  return v;
}

function cacheKeysQuery(req: IncomingMessage): {
  kind: 'cache' | 'counter';
  name: string;
  offset: number;
  limit: number;
} {
  const q = requestTarget(req.url).searchParams;
  const kind = q.get('kind') ?? 'cache';
  if (kind !== 'cache' && kind !== 'counter') throw invalid('"kind" must be cache or counter');
  const name = q.get('name') ?? '';
  if (name.length === 0 || name.length > 64 * 1024)
    throw invalid('cache-keys needs ?name=<cache or counter>');
  const offset = intOf(numberOrUndefined(q.get('offset')), 0, KEYS_OFFSET_MAX, 0, 'offset');
  const limit = intOf(numberOrUndefined(q.get('limit')), 1, KEYS_PAGE_MAX, KEYS_PAGE_DEFAULT, 'limit');
  return { kind, name, offset, limit };
}

function numberOrUndefined(s: string | null): number | undefined {
  return s === null || s === '' ? undefined : Number(s);
}
