/**
 * SQL console: a query (local or linearizable) shown page by page; a write only after an explicit
 * confirmation, answered with rowsAffected and logIndex; errors with their code; and the history
 * of this browser session's statements (sessionStorage, cleared at logout).
 */
import { useState } from 'preact/hooks';
import type { ExecuteResult, QueryRequest, RowPage } from '../api-types.js';
import { api, describeError } from './api.js';
import { RowTable } from './row-table.js';

const PAGE_ROWS = 100;
const HISTORY_KEY = 'hiqlite-dashboard-history';
const HISTORY_MAX = 50;

interface HistoryEntry {
  readonly sql: string;
  readonly kind: 'query' | 'write';
  readonly ok: boolean;
  readonly summary: string;
  readonly atMs: number;
}

type Result =
  | { kind: 'query'; request: QueryRequest; page: RowPage }
  | { kind: 'write'; result: ExecuteResult }
  | { kind: 'error'; code: string; message: string };

function loadHistory(): HistoryEntry[] {
  try {
    const v: unknown = JSON.parse(sessionStorage.getItem(HISTORY_KEY) ?? '[]');
    return Array.isArray(v) ? (v as HistoryEntry[]).slice(0, HISTORY_MAX) : [];
  } catch {
    return [];
  }
}

export function clearHistory(): void {
  sessionStorage.removeItem(HISTORY_KEY);
}

export function ConsolePage() {
  const [sql, setSql] = useState('SELECT name, type FROM sqlite_schema ORDER BY name');
  const [consistency, setConsistency] = useState<'local' | 'linearizable'>('local');
  const [confirming, setConfirming] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Result | null>(null);
  const [history, setHistory] = useState<HistoryEntry[]>(loadHistory);

  const remember = (e: Omit<HistoryEntry, 'atMs'>) => {
    const next = [{ ...e, atMs: Date.now() }, ...history].slice(0, HISTORY_MAX);
    setHistory(next);
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(next));
  };

  const runQuery = async (request: QueryRequest, record: boolean) => {
    setBusy(true);
    try {
      const page = await api<RowPage>('POST', 'query', request);
      setResult({ kind: 'query', request, page });
      if (record)
        remember({
          sql: request.sql,
          kind: 'query',
          ok: true,
          summary: `${page.rows.length}${page.hasMore ? '+' : ''} rows, ${page.elapsedMs} ms`,
        });
    } catch (e) {
      const err = describeError(e);
      setResult({ kind: 'error', ...err });
      if (record) remember({ sql: request.sql, kind: 'query', ok: false, summary: err.code });
    } finally {
      setBusy(false);
    }
  };

  const runWrite = async (statement: string) => {
    setConfirming(null);
    setBusy(true);
    try {
      const r = await api<ExecuteResult>('POST', 'execute', { sql: statement });
      setResult({ kind: 'write', result: r });
      remember({
        sql: statement,
        kind: 'write',
        ok: true,
        summary: `${r.rowsAffected} rows, log index ${r.logIndex}`,
      });
    } catch (e) {
      const err = describeError(e);
      setResult({ kind: 'error', ...err });
      remember({ sql: statement, kind: 'write', ok: false, summary: err.code });
    } finally {
      setBusy(false);
    }
  };

  const query = () => void runQuery({ sql, consistency, offset: 0, limit: PAGE_ROWS }, true);

  return (
    <section class="console">
      <h2>SQL console</h2>
      <div class="editor">
        <textarea
          id="sql"
          spellcheck={false}
          rows={6}
          value={sql}
          onInput={(e) => setSql((e.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              query();
            }
          }}
        />
        <div class="actions">
          <button type="button" id="run-query" disabled={busy || sql.trim() === ''} onClick={query}>
            Run query
          </button>
          <select
            id="consistency"
            value={consistency}
            onChange={(e) =>
              setConsistency((e.currentTarget as HTMLSelectElement).value as 'local' | 'linearizable')
            }
          >
            <option value="local">local read</option>
            <option value="linearizable">linearizable read</option>
          </select>
          <span class="spacer" />
          <button
            type="button"
            class="warn"
            id="run-write"
            disabled={busy || sql.trim() === ''}
            onClick={() => setConfirming(sql)}
          >
            Run as write…
          </button>
        </div>
        <p class="muted small">
          Ctrl+Enter runs the query. A query runs on a read-only connection of this node.
        </p>
      </div>

      {confirming !== null && (
        <div class="card confirm" id="confirm-write" role="dialog" aria-label="Confirm the write">
          <p>
            <strong>Run this write?</strong> It goes through Raft and changes the database on every node.
          </p>
          <pre>{confirming}</pre>
          <div class="actions">
            <button
              type="button"
              class="warn"
              id="confirm-write-yes"
              onClick={() => void runWrite(confirming)}
            >
              Write
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(null)}>
              Cancel
            </button>
          </div>
        </div>
      )}

      <div id="result">
        {result?.kind === 'error' && (
          <p class="error" id="result-error">
            <code>{result.code}</code> {result.message}
          </p>
        )}
        {result?.kind === 'write' && (
          <div>
            <p class="ok-box" id="write-result">
              rowsAffected <strong>{result.result.rowsAffected}</strong> · logIndex{' '}
              <strong>{result.result.logIndex}</strong> · lastInsertRowid {result.result.lastInsertRowid} ·{' '}
              {result.result.elapsedMs} ms
            </p>
            {result.result.rows.length > 0 && (
              <RowTable columns={result.result.columns} rows={result.result.rows} />
            )}
          </div>
        )}
        {result?.kind === 'query' && (
          <div>
            <p class="muted">
              {result.request.consistency} read · {result.page.elapsedMs} ms
            </p>
            <RowTable
              id="query-rows"
              columns={result.page.columns}
              rows={result.page.rows}
              offset={result.page.offset}
              hasMore={result.page.hasMore}
              pageRows={PAGE_ROWS}
              onPage={(offset) => void runQuery({ ...result.request, offset }, false)}
            />
          </div>
        )}
      </div>

      {history.length > 0 && (
        <div class="history">
          <h3>This session's statements</h3>
          <ul id="history">
            {history.map((h, i) => (
              <li key={`${h.atMs}-${i}`} class={h.ok ? '' : 'failed'}>
                <button type="button" class="link" title="Put it in the editor" onClick={() => setSql(h.sql)}>
                  <code>{h.sql.length > 160 ? `${h.sql.slice(0, 160)}…` : h.sql}</code>
                </button>
                <span class="muted small">
                  {h.kind} · {h.summary} · {new Date(h.atMs).toLocaleTimeString()}
                </span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
