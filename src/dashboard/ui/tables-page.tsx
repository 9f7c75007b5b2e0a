/**
 * Tables: the schema's tables, views, indexes and triggers with their SQL and row counts, and the
 * rows of a table or view page by page. The state machine's own tables are hidden unless asked
 * for, and never read.
 */
import { useEffect, useState } from 'preact/hooks';
import type { RowPage, SchemaList, SchemaObject } from '../api-types.js';
import { api, describeError } from './api.js';
import { RowTable } from './row-table.js';

const PAGE_ROWS = 50;

export function TablesPage() {
  const [list, setList] = useState<SchemaList | null>(null);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const [showInternal, setShowInternal] = useState(false);
  const [selected, setSelected] = useState<SchemaObject | null>(null);

  const reload = () =>
    api<SchemaList>('GET', 'tables').then(
      (l) => {
        setList(l);
        setError(null);
      },
      (e: unknown) => setError(describeError(e)),
    );
  useEffect(() => void reload(), []);

  const visible = (list?.objects ?? []).filter((o) => showInternal || !o.internal);
  return (
    <section class="tables">
      <h2>
        Tables{' '}
        <button type="button" class="secondary small" onClick={() => void reload()}>
          Refresh
        </button>
      </h2>
      {error !== null && (
        <p class="error">
          <code>{error.code}</code> {error.message}
        </p>
      )}
      <div class="split">
        <aside>
          <label class="small">
            <input
              type="checkbox"
              checked={showInternal}
              onChange={(e) => setShowInternal((e.currentTarget as HTMLInputElement).checked)}
            />{' '}
            show internal (<code>_hq_*</code>)
          </label>
          {(['table', 'view', 'index', 'trigger'] as const).map((type) => {
            const of = visible.filter((o) => o.type === type);
            if (of.length === 0) return null;
            return (
              <div key={type}>
                <h3>{type === 'index' ? 'indexes' : `${type}s`}</h3>
                <ul class="objects" id={`${type}-list`}>
                  {of.map((o) => (
                    <li key={`${o.type}:${o.name}`}>
                      <button
                        type="button"
                        class={`link ${selected?.name === o.name && selected.type === o.type ? 'active' : ''}`}
                        data-object={o.name}
                        onClick={() => setSelected(o)}
                      >
                        {o.name}
                      </button>
                      {o.rows !== null && <span class="muted small"> {o.rows} rows</span>}
                      {o.internal && <span class="tag">internal</span>}
                    </li>
                  ))}
                </ul>
              </div>
            );
          })}
          {list?.truncated === true && <p class="muted small">More objects exist than are listed.</p>}
        </aside>
        <div class="detail">
          {selected === null ? (
            <p class="muted">Choose a table, view or index.</p>
          ) : (
            <ObjectDetail key={`${selected.type}:${selected.name}`} o={selected} />
          )}
        </div>
      </div>
    </section>
  );
}

function ObjectDetail({ o }: { o: SchemaObject }) {
  const [page, setPage] = useState<RowPage | null>(null);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const browsable = (o.type === 'table' || o.type === 'view') && !o.internal;

  const load = (offset: number) =>
    api<RowPage>('GET', `rows?name=${encodeURIComponent(o.name)}&offset=${offset}&limit=${PAGE_ROWS}`).then(
      (p) => {
        setPage(p);
        setError(null);
      },
      (e: unknown) => setError(describeError(e)),
    );
  useEffect(() => {
    if (browsable) void load(0);
  }, []);

  return (
    <div>
      <h3>
        {o.type} <code>{o.name}</code>
        {o.table !== o.name && (
          <span class="muted">
            {' '}
            on <code>{o.table}</code>
          </span>
        )}
        {o.rows !== null && <span class="muted"> · {o.rows} rows</span>}
      </h3>
      <pre class="schema" id="schema-sql">
        {o.sql ?? '(created by SQLite)'}
      </pre>
      {o.internal && <p class="muted">Internal to the state machine: not readable from the dashboard.</p>}
      {error !== null && (
        <p class="error">
          <code>{error.code}</code> {error.message}
        </p>
      )}
      {browsable && page !== null && (
        <RowTable
          id="browse-rows"
          columns={page.columns}
          rows={page.rows}
          offset={page.offset}
          hasMore={page.hasMore}
          pageRows={PAGE_ROWS}
          onPage={(offset) => void load(offset)}
        />
      )}
    </div>
  );
}
