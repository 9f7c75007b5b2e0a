/**
 * The dashboard without a cluster: a manual clock, an in-memory DashboardBackend whose SQL runs
 * on a real in-memory SQLite database, and the Dashboard behind a real HTTP server on 127.0.0.1.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import type { DashboardBackend, NodeView, Row } from '../../src/dashboard/backend.js';
import { Dashboard, type DashboardLimits } from '../../src/dashboard/dashboard.js';
import { MetricsHistory } from '../../src/dashboard/metrics-history.js';
import { hashPassword } from '../../src/dashboard/password.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { ManualClock } from '../support/manual-clock.js';

/** The reference implementation's Argon2id test vector (phc-winner-argon2, src/test.c). */
export const REFERENCE_PHC =
  '$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc';
export const REFERENCE_PASSWORD = 'password';
/** A cheap hash of `REFERENCE_PASSWORD` for tests that log in often (1 MiB, one pass). */
export function cheapPhc(password = REFERENCE_PASSWORD): Promise<string> {
  return hashPassword(password, { memoryKib: 1024, iterations: 1, parallelism: 1 });
}

export interface FakeBackendOptions {
  /** Views of the other members; a missing id never answers (a paused node). */
  readonly peers?: ReadonlyMap<number, NodeView | Error>;
}

export function view(id: number, role: NodeView['role'], over: Partial<NodeView> = {}): NodeView {
  return {
    nodeId: id,
    role,
    term: 3,
    leaderId: 1,
    commitIndex: 10,
    appliedIndex: 10,
    lastLogIndex: 10,
    voters: [1, 2, 3],
    learners: [],
    ...over,
  };
}

/** Node 1 of three, with its SQL on an in-memory SQLite database. */
export class FakeBackend implements DashboardBackend {
  readonly nodeId = 1;
  readonly members = [
    { id: 1, addrApi: '127.0.0.1:8201' },
    { id: 2, addrApi: '127.0.0.1:8202' },
    { id: 3, addrApi: '127.0.0.1:8203' },
  ];
  readonly db: Database.Database = new Database(':memory:');
  readonly history = new MetricsHistory(10);
  logIndex = 100;

  constructor(private readonly o: FakeBackendOptions = {}) {
    this.db.exec('CREATE TABLE _hq_meta (id INTEGER PRIMARY KEY, applied_index INTEGER)');
    this.db.exec('INSERT INTO _hq_meta VALUES (0, 42)');
  }

  local() {
    return { view: view(1, 'leader'), healthy: true, error: null };
  }

  peer(id: number): Promise<NodeView> {
    const peers = this.o.peers ?? new Map([2, 3].map((i) => [i, view(i, 'follower')]));
    const v = peers.get(id);
    if (v === undefined) return new Promise(() => {});
    return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
  }

  async query(sql: string, params: readonly unknown[]): Promise<Row[]> {
    if (/_hq_/i.test(sql))
      throw new HiqliteError('HQL_STATEMENT_NOT_ALLOWED', 'internal tables are not readable', {
        retryable: false,
      });
    try {
      const stmt = this.db.prepare(sql);
      if (!stmt.readonly) throw new HiqliteError('HQL_READONLY', 'a read cannot write', { retryable: false });
      return stmt.all(...params) as Row[];
    } catch (e) {
      if (e instanceof HiqliteError) throw e;
      throw new HiqliteError('HQL_SQL', (e as Error).message, { retryable: false });
    }
  }

  async execute(sql: string) {
    try {
      const stmt = this.db.prepare(sql);
      if (stmt.reader) {
        const rows = stmt.all() as Row[];
        return { rowsAffected: rows.length, lastInsertRowid: 0, rows, logIndex: ++this.logIndex };
      }
      const r = stmt.run();
      return {
        rowsAffected: r.changes,
        lastInsertRowid: r.lastInsertRowid,
        rows: [],
        logIndex: ++this.logIndex,
      };
    } catch (e) {
      throw new HiqliteError('HQL_SQL', (e as Error).message, { retryable: false });
    }
  }

  metrics() {
    return this.history.series();
  }

  features() {
    return { caches: false, backups: false };
  }
}

export interface Served {
  readonly url: string;
  readonly dashboard: Dashboard;
  readonly clock: ManualClock;
  readonly backend: FakeBackend;
  close(): Promise<void>;
}

export async function serveDashboard(
  o: {
    passwordHash?: string;
    insecureCookie?: boolean;
    limits?: Partial<DashboardLimits>;
    backend?: FakeBackend;
  } = {},
): Promise<Served> {
  const clock = new ManualClock();
  const backend = o.backend ?? new FakeBackend();
  const dashboard = new Dashboard(backend, {
    passwordHash: o.passwordHash ?? (await cheapPhc()),
    insecureCookie: o.insecureCookie ?? false,
    clock,
    ...(o.limits === undefined ? {} : { limits: o.limits }),
  });
  const server: Server = createServer((req, res) => {
    dashboard
      .serve(req, res, () => {})
      .catch((e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    dashboard,
    clock,
    backend,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      backend.db.close();
    },
  };
}

/** A logged-in browser, as far as cookies and the CSRF token go. */
export async function login(
  s: Served,
  password = REFERENCE_PASSWORD,
): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const r = await fetch(`${s.url}/dashboard/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
  });
  const body = (await r.json()) as { ok: boolean; value?: { csrfToken: string } };
  if (r.status !== 200 || body.value === undefined) throw new Error(`login answered ${r.status}`);
  const setCookie = r.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0] ?? '', csrf: body.value.csrfToken, setCookie };
}
