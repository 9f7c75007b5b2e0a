/**
 * Backups: the backups of this node's local folder, on a follower also the leader's (it takes
 * the backups), and of the S3 bucket, and "Create backup
 * now" (after a confirmation; the leader takes it). A backup already running when the button is
 * pressed is joined, not started twice. Contents never pass through the dashboard: downloads
 * are `hiqlite backup download` on a machine that holds the keys.
 */
import { useEffect, useState } from 'preact/hooks';
import type { BackupCreated, BackupItem, BackupList, BackupTargetList } from '../api-types.js';
import { api, describeError } from './api.js';
import { ErrorLine, formatBytes } from './format.js';

/** While a backup runs (here or from another tab), the list is read again this often. */
const RUNNING_REFRESH_MS = 2000;

type Outcome =
  | { readonly ok: true; readonly backup: BackupCreated }
  | { readonly ok: false; readonly code: string; readonly message: string };

export function BackupsPage({ nodeId }: { nodeId: number }) {
  const [list, setList] = useState<BackupList | null>(null);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | null>(null);

  const reload = () =>
    api<BackupList>('GET', 'backups').then(
      (l) => {
        setList(l);
        setError(null);
      },
      (e: unknown) => setError(describeError(e)),
    );
  useEffect(() => void reload(), []);
  // Started elsewhere (another tab, before a reload): follow it until it ends.
  const runningElsewhere = !busy && list?.runningSinceWallMs != null;
  useEffect(() => {
    if (!runningElsewhere) return;
    const t = setTimeout(() => void reload(), RUNNING_REFRESH_MS);
    return () => clearTimeout(t);
  }, [runningElsewhere, list]);

  const create = async () => {
    setConfirming(false);
    setBusy(true);
    try {
      const backup = await api<BackupCreated>('POST', 'backup');
      setOutcome({ ok: true, backup });
    } catch (e) {
      setOutcome({ ok: false, ...describeError(e) });
    } finally {
      setBusy(false);
      void reload();
    }
  };

  return (
    <section>
      <h2>
        Backups{' '}
        <button type="button" class="secondary small" onClick={() => void reload()}>
          Refresh
        </button>
      </h2>
      <div class="actions">
        {runningElsewhere ? (
          <button type="button" class="nowrap" id="create-backup" onClick={() => void create()}>
            Wait for the running backup
          </button>
        ) : (
          <button
            type="button"
            class="nowrap"
            id="create-backup"
            disabled={busy}
            onClick={() => setConfirming(true)}
          >
            {busy ? 'Backup running…' : 'Create backup now'}
          </button>
        )}
        <span class="muted small">
          The leader copies the database, encrypts it with the active key and stores it in its local folder
          {list?.s3 != null ? ' and the S3 bucket' : ''}. Download and restore with{' '}
          <code>hiqlite backup</code> on a machine that holds the keys.
        </span>
      </div>
      {confirming && (
        <div class="card confirm" id="confirm-backup" role="dialog" aria-label="Confirm the backup">
          <p>
            <strong>Take a backup now?</strong> It reads the whole database on the leader and writes a file of
            about its size (compressed).
          </p>
          <div class="actions">
            <button type="button" id="confirm-backup-yes" onClick={() => void create()}>
              Create backup
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {outcome?.ok === true && (
        <p class="ok-box" id="backup-result">
          {outcome.backup.joined ? 'Joined the running backup: ' : 'Backup taken: '}
          <code>{outcome.backup.name}</code> · log index <strong>{outcome.backup.logIndex}</strong> ·{' '}
          {formatBytes(outcome.backup.bytes)} (database {formatBytes(outcome.backup.databaseBytes)}) · node{' '}
          {outcome.backup.nodeId} · {outcome.backup.targets.join(' + ')}
        </p>
      )}
      <ErrorLine id="backup-error" error={outcome?.ok === false ? outcome : null} />
      <ErrorLine error={error} />
      {list !== null && (
        <>
          {list.leader !== null && (
            <TargetTable
              id="backups-leader"
              title={
                list.leader.nodeId === null
                  ? 'Local folder of the leader'
                  : `Local folder of node ${list.leader.nodeId} (the leader)`
              }
              t={list.leader.list}
            />
          )}
          <TargetTable
            id="backups-local"
            title={`Local folder of node ${nodeId} (this node${list.leader === null ? ', the leader' : ''})`}
            t={list.local}
          />
          {list.s3 !== null && <TargetTable id="backups-s3" title="S3 bucket" t={list.s3} />}
          <p class="muted small">
            A backup is written to the local folder of the node that leads when it is taken
            {list.s3 === null ? '' : ', and to the bucket'}; the node column says which node took it and holds
            it locally.
          </p>
        </>
      )}
    </section>
  );
}

function TargetTable({ id, title, t }: { id: string; title: string; t: BackupTargetList }) {
  return (
    <div id={id}>
      <h3>{title}</h3>
      {!t.ok ? (
        <ErrorLine error={t.error} />
      ) : t.backups.length === 0 ? (
        <p class="muted">No backups.</p>
      ) : (
        <div class="scroll">
          <table class="grid compact">
            <thead>
              <tr>
                <th>name</th>
                <th>taken</th>
                <th class="num">log index</th>
                <th class="num">node</th>
                <th class="num">size</th>
              </tr>
            </thead>
            <tbody>
              {t.backups.map((b) => (
                <BackupRow key={b.name} b={b} />
              ))}
            </tbody>
          </table>
          {t.truncated && <p class="muted small">Older backups exist beyond these.</p>}
        </div>
      )}
    </div>
  );
}

function BackupRow({ b }: { b: BackupItem }) {
  return (
    <tr data-backup={b.name}>
      <td>
        <code>{b.name}</code>
      </td>
      <td>{new Date(b.createdMs).toLocaleString()}</td>
      <td class="num">{b.logIndex}</td>
      <td class="num">{b.nodeId}</td>
      <td class="num">{formatBytes(b.bytes)}</td>
    </tr>
  );
}
