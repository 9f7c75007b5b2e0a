/**
 * A consistent copy of the node's database at one applied log index (copy-steps.ts), made on a
 * worker thread of its own so the node keeps serving reads and writes meanwhile.
 *
 * Locating the worker script: as src/sm/sql/worker-client.ts does, from compiled JavaScript the
 * worker is `copy-worker.js` next to this file; from TypeScript sources (tests, tsx) a small
 * bootstrap registers tsx inside the worker first.
 */
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { HiqliteError } from '../lib/errors.js';
import { backupCorrupt } from './backup-errors.js';
import type { CopyInfo, CopyRequest, CopyResult, CopyWorkerMessage } from './copy-steps.js';

function spawn(data: CopyRequest): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL('./copy-worker.ts', here).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(bootstrap, { eval: true, workerData: data });
  }
  return new Worker(new URL('./copy-worker.js', here), { workerData: data });
}

/** A copy made and prepared, whose integrity check still runs. */
export interface StartedCopy {
  readonly info: CopyInfo & { readonly vacuumMs: number };
  /**
   * Settles when the integrity check of the copy ends: rejects (and removes the copy) when it
   * fails. The copy's bytes do not change meanwhile: it can be read (streamed) at the same time.
   */
  readonly checked: Promise<{ readonly checkMs: number }>;
}

/**
 * Copies `dbPath` to `outPath` (which must not exist) and resolves once the copy is made and
 * prepared; its integrity check goes on on the copy thread (`checked`). Removes the copy on
 * failure.
 */
export async function startCopy(request: CopyRequest): Promise<StartedCopy> {
  const cleanup = async () => {
    await rm(request.outPath, { force: true });
    await rm(`${request.outPath}-journal`, { force: true });
  };
  let copied!: (m: CopyWorkerMessage) => void;
  let checked!: (m: CopyWorkerMessage) => void;
  const copiedP = new Promise<CopyWorkerMessage>((r) => {
    copied = r;
  });
  const checkedP = new Promise<CopyWorkerMessage>((r) => {
    checked = r;
  });
  const fail = (message: string): CopyWorkerMessage => ({ ok: false, error: { message } });
  const worker = spawn(request);
  let phase: 'copy' | 'check' | 'done' = 'copy';
  worker.on('message', (m: CopyWorkerMessage) => {
    if (m.ok && m.phase === 'copied') {
      phase = 'check';
      copied(m);
      return;
    }
    if (phase === 'copy') copied(m);
    phase = 'done';
    checked(m);
  });
  worker.once('error', (e) => {
    const m = fail(e.message);
    if (phase === 'copy') copied(m);
    phase = 'done';
    checked(m);
  });
  worker.once('exit', (code) => {
    if (phase === 'done') return;
    const m = fail(`the backup copy thread exited with code ${code} without an answer`);
    if (phase === 'copy') copied(m);
    phase = 'done';
    checked(m);
  });
  const first = await copiedP;
  if (!first.ok || first.phase !== 'copied') {
    await cleanup();
    throw asError(first);
  }
  const info = { ...first.value, vacuumMs: first.vacuumMs, bytes: statSync(request.outPath).size };
  const check = checkedP.then(async (m) => {
    if (m.ok && m.phase === 'checked') return { checkMs: m.checkMs };
    await cleanup();
    throw asError(m);
  });
  // A caller that fails before it awaits the check must not leave an unhandled rejection.
  check.catch(() => {});
  return { info, checked: check };
}

/** Copies `dbPath` to `outPath` (which must not exist) and checks the copy; removes it on failure. */
export async function copyDatabase(request: CopyRequest): Promise<CopyResult> {
  const started = await startCopy(request);
  const { checkMs } = await started.checked;
  return { ...started.info, checkMs };
}

function asError(m: CopyWorkerMessage): Error {
  const error = m.ok ? { message: 'unexpected answer of the backup copy thread' } : m.error;
  if (error.code === 'HQL_BACKUP_CORRUPT') return backupCorrupt(error.message);
  return new HiqliteError('HQL_IO', `copying the database for a backup failed: ${error.message}`, {
    retryable: true,
  });
}
