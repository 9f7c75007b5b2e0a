/**
 * The worker thread of db-copy.ts: `VACUUM INTO` from a read-only connection, the copy made a
 * self-contained file and its facts read (answered at once, so the backup can stream the copy),
 * then `PRAGMA integrity_check` of the copy (answered when done; the backup is not complete
 * before). It runs on its own thread because these are synchronous SQLite calls that take
 * seconds on a large database; the node's event loop keeps serving meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  type CopyRequest,
  type CopyWorkerMessage,
  integrityCheck,
  prepareCopy,
  vacuumInto,
} from './copy-steps.js';

const request = workerData as CopyRequest;
const post = (m: CopyWorkerMessage) => parentPort?.postMessage(m);
try {
  const t0 = performance.now();
  vacuumInto(request);
  const vacuumMs = performance.now() - t0;
  post({ ok: true, phase: 'copied', value: prepareCopy(request.outPath), vacuumMs });
  const t1 = performance.now();
  integrityCheck(request.outPath);
  post({ ok: true, phase: 'checked', checkMs: performance.now() - t1 });
} catch (e) {
  post({
    ok: false,
    error: { message: e instanceof Error ? e.message : String(e), code: (e as { code?: unknown }).code },
  });
}
