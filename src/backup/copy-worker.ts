/**
 * The worker thread of db-copy.ts: `VACUUM INTO` from a read-only connection, then checks of the
 * copy. It runs on its own thread because both are synchronous SQLite calls that take seconds
 * on a large database; the node's event loop keeps serving meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type CopyRequest, checkCopy, vacuumInto } from './copy-steps.js';

const request = workerData as CopyRequest;
try {
  vacuumInto(request);
  parentPort?.postMessage({ ok: true, value: checkCopy(request.outPath) });
} catch (e) {
  parentPort?.postMessage({
    ok: false,
    error: { message: e instanceof Error ? e.message : String(e), code: (e as { code?: unknown }).code },
  });
}
