/**
 * Read-pool thread entry (read-pool.ts): one read-only, interruptible SqlReader per thread.
 * Requests arrive one at a time (the pool sends the next only after the reply to the last).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { assert } from '../../lib/assert.js';
import type { ReadReply, ReadRequest, ReadWorkerInit } from './read-protocol.js';
import { SqlReader } from './reader.js';
import { serializeError } from './worker-protocol.js';

assert(parentPort !== null, 'read-worker.ts must run in a worker thread');
const port = parentPort;
const init = workerData as ReadWorkerInit;

function open(): SqlReader | null {
  try {
    const reader = SqlReader.open(init.dbPath, {
      statementCacheMax: init.statementCacheMax,
      busyTimeoutMs: init.busyTimeoutMs,
      interruptible: init.interruptible,
      rowsMax: init.rowsMax,
      resultBytesMax: init.resultBytesMax,
      ...(init.valueBytesMax === undefined ? {} : { valueBytesMax: init.valueBytesMax }),
    });
    port.postMessage({
      id: 0,
      ok: true,
      value: { interruptible: reader.interruptible, connectionId: reader.connectionId },
    } satisfies ReadReply);
    return reader;
  } catch (e) {
    port.postMessage({ id: 0, ok: false, error: serializeError(e) } satisfies ReadReply);
    return null;
  }
}

const reader = open();
if (reader !== null) {
  port.on('message', (req: ReadRequest) => {
    if (req.op === 'close') {
      reader.close();
      port.removeAllListeners('message');
      port.postMessage({ id: req.id, ok: true, value: null } satisfies ReadReply);
      return;
    }
    try {
      // Schema changes arrive through applied writes: the reader re-checks the schema version
      // when the applied index it is told about moves.
      reader.applied.advance(req.applied);
      const options = reader.interruptible ? { timeoutMs: req.timeoutMs } : {};
      const rows = reader.query(req.sql, req.params, options);
      port.postMessage({ id: req.id, ok: true, value: rows } satisfies ReadReply);
    } catch (e) {
      port.postMessage({ id: req.id, ok: false, error: serializeError(e) } satisfies ReadReply);
    }
  });
}
