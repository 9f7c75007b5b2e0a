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
import type { CopyRequest, CopyResult } from './copy-steps.js';

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

/** Copies `dbPath` to `outPath` (which must not exist) and checks the copy; removes it on failure. */
export async function copyDatabase(request: CopyRequest): Promise<CopyResult> {
  try {
    const reply = await new Promise<
      { ok: true; value: CopyResult } | { ok: false; error: { message: string; code?: unknown } }
    >((resolve, reject) => {
      const worker = spawn(request);
      let answered = false;
      worker.once('message', (m) => {
        answered = true;
        resolve(m);
      });
      worker.once('error', reject);
      worker.once('exit', (code) => {
        if (!answered) reject(new Error(`the backup copy thread exited with code ${code} without an answer`));
      });
    });
    if (!reply.ok) {
      if (reply.error.code === 'HQL_BACKUP_CORRUPT') throw backupCorrupt(reply.error.message);
      throw new HiqliteError('HQL_IO', `copying the database for a backup failed: ${reply.error.message}`, {
        retryable: true,
      });
    }
    return { ...reply.value, bytes: statSync(request.outPath).size };
  } catch (e) {
    await rm(request.outPath, { force: true });
    await rm(`${request.outPath}-journal`, { force: true });
    throw e;
  }
}
