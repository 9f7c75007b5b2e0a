/**
 * The worker thread of db-copy.ts: `VACUUM INTO` from a read-only connection, then checks of the
 * copy. It runs on its own thread because both are synchronous SQLite calls that take seconds
 * on a large database; the node's event loop keeps serving meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type CopyRequest, checkCopy, vacuumInto } from './copy-steps.js';

const request = workerData as CopyRequest;
try {
  const t0 = performance.now();
  vacuumInto(request);
  const t1 = performance.now();
  const info = checkCopy(request.outPath);
  const timings = { vacuumMs: t1 - t0, checkMs: performance.now() - t1 };
  parentPort?.postMessage({ ok: true, value: { ...info, ...timings } });
} catch (e) {
  parentPort?.postMessage({
    ok: false,
    error: { message: e instanceof Error ? e.message : String(e), code: (e as { code?: unknown }).code },
  });
}
