/**
 * Caches: the cache group as this node holds it (caches with their entries and bytes, counter
 * groups, locks, listeners), refreshed every two seconds; a cache or counter group chosen shows
 * its keys a page at a time (the node cuts the page and previews each value).
 */
import { useEffect, useState } from 'preact/hooks';
import type { CacheKeyPage, CacheKeyRow, CacheOverview, ValuePreview } from '../api-types.js';
import { api, describeError } from './api.js';
import { ErrorLine, formatBytes, formatDuration, plural } from './format.js';
import { usePoll } from './poll.js';
import { Pager } from './row-table.js';

const REFRESH_MS = 2000;
const PAGE_KEYS = 50;

type Selected = { readonly kind: 'cache' | 'counter'; readonly name: string };

export function CachesPage() {
  const { data, error } = usePoll(() => api<CacheOverview>('GET', 'caches'), REFRESH_MS);
  const [selected, setSelected] = useState<Selected | null>(null);
  const isSelected = (kind: Selected['kind'], name: string) =>
    selected?.kind === kind && selected.name === name;
  return (
    <section class="tables">
      <h2>Caches</h2>
      <ErrorLine error={error} />
      {data === null ? (
        <p class="muted">Reading the cache group…</p>
      ) : (
        <>
          <p class="summary" id="cache-summary">
            <strong>{data.caches.length}</strong> {data.caches.length === 1 ? 'cache' : 'caches'} ·{' '}
            <strong>{data.counters.length}</strong> counter {data.counters.length === 1 ? 'group' : 'groups'}{' '}
            · {formatBytes(data.bytes)} of {formatBytes(data.bytesMax)} · locks{' '}
            <strong id="locks-held">{data.locksHeld}</strong> held, {data.lockWaiters} waiting · listeners{' '}
            <strong id="listeners">{data.listeners}</strong> (lag {data.listenerLag}) · notifications held{' '}
            {data.notificationsHeld}
          </p>
          <div class="split">
            <aside>
              <h3>caches</h3>
              {data.caches.length === 0 && <p class="muted small">No cache holds an entry.</p>}
              <ul class="objects" id="cache-list">
                {data.caches.map((c) => (
                  <li key={c.name}>
                    <button
                      type="button"
                      class={`link ${isSelected('cache', c.name) ? 'active' : ''}`}
                      data-cache={c.name}
                      onClick={() => setSelected({ kind: 'cache', name: c.name })}
                    >
                      {c.name}
                    </button>
                    <span class="muted small">
                      {' '}
                      {plural(c.entries, 'entry', 'entries')} · {formatBytes(c.bytes)}
                    </span>
                  </li>
                ))}
              </ul>
              {data.counters.length > 0 && (
                <>
                  <h3>counters</h3>
                  <ul class="objects" id="counter-list">
                    {data.counters.map((c) => (
                      <li key={c.name}>
                        <button
                          type="button"
                          class={`link ${isSelected('counter', c.name) ? 'active' : ''}`}
                          data-counter={c.name}
                          onClick={() => setSelected({ kind: 'counter', name: c.name })}
                        >
                          {c.name}
                        </button>
                        <span class="muted small"> {plural(c.keys, 'key', 'keys')}</span>
                      </li>
                    ))}
                  </ul>
                </>
              )}
              {data.truncated && <p class="muted small">More caches exist than are listed.</p>}
            </aside>
            <div class="detail">
              {selected === null ? (
                <p class="muted">Choose a cache or a counter group.</p>
              ) : (
                <KeyPages key={`${selected.kind}:${selected.name}`} s={selected} />
              )}
            </div>
          </div>
        </>
      )}
    </section>
  );
}

function KeyPages({ s }: { s: Selected }) {
  const [page, setPage] = useState<CacheKeyPage | null>(null);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const load = (offset: number) =>
    api<CacheKeyPage>(
      'GET',
      `cache-keys?kind=${s.kind}&name=${encodeURIComponent(s.name)}&offset=${offset}&limit=${PAGE_KEYS}`,
    ).then(
      (p) => {
        setPage(p);
        setError(null);
      },
      (e: unknown) => setError(describeError(e)),
    );
  useEffect(() => void load(0), []);
  const offset = page?.offset ?? 0;
  return (
    <div>
      <h3>
        {s.kind} <code>{s.name}</code>{' '}
        <button type="button" class="secondary small" onClick={() => void load(offset)}>
          Refresh
        </button>
      </h3>
      <ErrorLine error={error} />
      {page !== null && (
        <div class="rows" id="cache-keys">
          {page.rows.length === 0 ? (
            <p class="muted">No live keys{offset > 0 ? ' on this page' : ''}.</p>
          ) : (
            <div class="scroll">
              <table class="grid">
                <thead>
                  <tr>
                    <th class="rownum">#</th>
                    <th>key</th>
                    <th>value</th>
                    {s.kind === 'cache' && <th>TTL left</th>}
                  </tr>
                </thead>
                <tbody>
                  {page.rows.map((r, i) => (
                    <KeyRow key={r.key} r={r} n={offset + i + 1} cache={s.kind === 'cache'} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {(offset > 0 || page.hasMore) && (
            <Pager
              unit="keys"
              offset={offset}
              shown={page.rows.length}
              pageSize={PAGE_KEYS}
              hasMore={page.hasMore}
              onPage={(o) => void load(o)}
            />
          )}
        </div>
      )}
    </div>
  );
}

function KeyRow({ r, n, cache }: { r: CacheKeyRow; n: number; cache: boolean }) {
  return (
    <tr data-key={r.key}>
      <td class="rownum">{n}</td>
      <td>
        <code>{r.key}</code>
      </td>
      {typeof r.value === 'string' ? <td class="num">{r.value}</td> : <ValueCell v={r.value} />}
      {cache && (
        <td class="ttl">{r.ttlMs === null ? <span class="muted">none</span> : formatDuration(r.ttlMs)}</td>
      )}
    </tr>
  );
}

function ValueCell({ v }: { v: ValuePreview }) {
  switch (v.kind) {
    case 'json':
      return (
        <td class="value">
          <code>
            {v.text}
            {v.truncated ? '…' : ''}
          </code>{' '}
          {v.truncated && <span class="muted">({formatBytes(v.bytes)} msgpack)</span>}
        </td>
      );
    case 'bytes':
      return (
        <td class="blob value">
          x'{v.hex}
          {v.size * 2 > v.hex.length ? '…' : ''}' <span class="muted">({formatBytes(v.size)})</span>
        </td>
      );
    case 'raw':
      return (
        <td class="blob value">
          x'{v.hex}…'{' '}
          <span class="muted">
            ({formatBytes(v.bytes)}, {v.reason === 'too-large' ? 'too large to preview' : 'not msgpack'})
          </span>
        </td>
      );
  }
}
