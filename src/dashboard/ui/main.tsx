/**
 * The dashboard page: the login form until a session exists, then a shell with its pages
 * (Cluster, SQL console, Tables, Metrics, and Caches and Backups where the node has them) chosen
 * by the URL's hash (`#/cluster`, …).
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { SessionInfo } from '../api-types.js';
import { api, setCsrfToken, setOnUnauthorized } from './api.js';
import { BackupsPage } from './backups-page.js';
import { CachesPage } from './caches-page.js';
import { ClusterPage } from './cluster-page.js';
import { ConsolePage, clearHistory } from './console-page.js';
import { LoginPage } from './login-page.js';
import { MetricsPage } from './metrics-page.js';
import { TablesPage } from './tables-page.js';
import './app.css';

const PAGES = [
  { id: 'cluster', title: 'Cluster' },
  { id: 'console', title: 'SQL console' },
  { id: 'tables', title: 'Tables' },
  { id: 'caches', title: 'Caches', feature: 'caches' },
  { id: 'backups', title: 'Backups', feature: 'backups' },
  { id: 'metrics', title: 'Metrics' },
] as const;
type PageId = (typeof PAGES)[number]['id'];

function pageFromHash(): PageId {
  const id = location.hash.replace(/^#\/?/, '');
  return PAGES.find((p) => p.id === id)?.id ?? 'cluster';
}

function App() {
  const [session, setSession] = useState<SessionInfo | null | 'checking'>('checking');
  const [page, setPage] = useState<PageId>(pageFromHash());

  useEffect(() => {
    setOnUnauthorized(() => setSession(null));
    api<SessionInfo>('GET', 'session').then(
      (s) => {
        setCsrfToken(s.csrfToken);
        setSession(s);
      },
      () => setSession(null),
    );
    const onHash = () => setPage(pageFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  if (session === 'checking') return <div class="center muted">Loading…</div>;
  if (session === null)
    return (
      <LoginPage
        onLogin={(s) => {
          setCsrfToken(s.csrfToken);
          setSession(s);
        }}
      />
    );

  const logout = async () => {
    try {
      await api('POST', 'logout');
    } finally {
      clearHistory();
      setCsrfToken('');
      setSession(null);
    }
  };

  return (
    <div class="shell">
      <header class="top">
        <span class="brand">
          <img src="/dashboard/favicon.svg" alt="" width={22} height={22} /> hiqlite
        </span>
        <nav>
          {PAGES.filter((p) => !('feature' in p) || session.features[p.feature]).map((p) => (
            <a key={p.id} href={`#/${p.id}`} class={p.id === page ? 'active' : ''} data-page={p.id}>
              {p.title}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <span class="muted">node {session.nodeId}</span>
        <button type="button" class="secondary" id="logout" onClick={() => void logout()}>
          Log out
        </button>
      </header>
      <main>
        {page === 'cluster' && <ClusterPage />}
        {page === 'console' && <ConsolePage />}
        {page === 'tables' && <TablesPage />}
        {page === 'caches' && (session.features.caches ? <CachesPage /> : <Missing what="cache group" />)}
        {page === 'backups' &&
          (session.features.backups ? <BackupsPage nodeId={session.nodeId} /> : <Missing what="backups" />)}
        {page === 'metrics' && <MetricsPage />}
      </main>
    </div>
  );
}

function Missing({ what }: { what: string }) {
  return <p class="muted">This node has no {what} (yet): log in again once it runs.</p>;
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
