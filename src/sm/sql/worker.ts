/**
 * Worker-thread entry: owns the SqlStateMachine (the writer connection) so that applying,
 * snapshotting and restoring never run on the runtime's event loop. Started by SqlWorker.
 *
 * Requests are handled in arrival order. applyBatch is synchronous. A snapshot copies in steps
 * and does not hold the queue: later applies run between its steps and are included in it. A
 * restore holds the queue (nothing is applied while the content is being replaced), as does
 * close.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { assert } from '../../lib/assert.js';
import { type CommandResult, encodeResult } from './result.js';
import { SqlStateMachine } from './state-machine.js';
import {
  type ApplyBatchReply,
  serializeError,
  unpackEntries,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
  type WorkerStarted,
} from './worker-protocol.js';

assert(parentPort !== null, 'worker.ts must run in a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;

function reply(message: WorkerReply): void {
  port.postMessage(message);
}

function start(): SqlStateMachine | null {
  try {
    const sm = SqlStateMachine.open(init.dir, init.options);
    const started: WorkerStarted = {
      state: sm.appliedState(),
      connectionId: sm.connectionId,
      damaged: sm.damaged,
    };
    reply({ id: 0, ok: true, value: started });
    return sm;
  } catch (e) {
    reply({ id: 0, ok: false, error: serializeError(e) });
    return null;
  }
}

const sm = start();
const queue: WorkerRequest[] = [];
let draining = false;
let snapshotRun: Promise<void> | null = null;

function handleSync(
  sm: SqlStateMachine,
  req: WorkerRequest & { op: 'applyBatch' | 'appliedState' | 'reset' },
): void {
  try {
    if (req.op === 'applyBatch') {
      const all = sm.applyBatch(unpackEntries(req.entries));
      const transfer: ArrayBuffer[] = [];
      const results = all.map((r, i) => {
        if (req.wanted[i] !== true) return undefined;
        if (!isLarge(r)) return r;
        const bytes = encodeResult(r);
        transfer.push(bytes.buffer as ArrayBuffer);
        return bytes;
      });
      const value: ApplyBatchReply = { results, applied: sm.appliedState() };
      port.postMessage({ id: req.id, ok: true, value } satisfies WorkerReply, transfer);
    } else if (req.op === 'reset') {
      reply({ id: req.id, ok: true, value: sm.reset() });
    } else {
      reply({ id: req.id, ok: true, value: sm.appliedState() });
    }
  } catch (e) {
    reply({ id: req.id, ok: false, error: serializeError(e) });
  }
}

/**
 * Results with many parts (a txn's outcomes, returned rows) cross the thread boundary as msgpack:
 * structured clone is slow for many small objects (a 1,000-statement txn: ~0.8 ms against
 * ~0.05 ms to encode), and fast for the small result of a single write.
 */
function isLarge(r: CommandResult): boolean {
  if (!r.ok) return false;
  if (r.type === 'txn' || r.type === 'batch') return r.value.length > 8;
  return r.type === 'execute' && r.value.rows !== undefined && r.value.rows.length > 8;
}

async function handleAsync(
  sm: SqlStateMachine,
  req: WorkerRequest & { op: 'snapshot' | 'restore' | 'close' },
) {
  try {
    let value: unknown;
    if (req.op === 'snapshot') value = await sm.snapshot(req.destPath);
    else if (req.op === 'restore') value = await sm.restore(req.fromPath);
    else {
      if (snapshotRun !== null) await snapshotRun;
      sm.close();
      value = null;
    }
    reply({ id: req.id, ok: true, value });
  } catch (e) {
    reply({ id: req.id, ok: false, error: serializeError(e) });
  }
  // Without a message listener the thread exits once idle (the client also terminates it).
  if (req.op === 'close') port.removeAllListeners('message');
}

async function drain(sm: SqlStateMachine): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    // Bounded by the client's pendingMax: at most that many requests are ever queued.
    while (queue.length > 0) {
      const req = queue.shift()!;
      switch (req.op) {
        case 'applyBatch':
        case 'appliedState':
          handleSync(sm, req);
          break;
        case 'reset':
          // Not while a snapshot is copying the content being dropped.
          if (snapshotRun !== null) await snapshotRun;
          handleSync(sm, req);
          break;
        case 'snapshot': {
          const run = handleAsync(sm, req);
          if (snapshotRun === null) {
            snapshotRun = run.finally(() => {
              snapshotRun = null;
            });
          } else {
            // One snapshot at a time: the state machine rejects this one at once (HQL_OVERLOADED).
            await run;
          }
          break;
        }
        case 'restore':
        case 'close':
          await handleAsync(sm, req);
          break;
      }
    }
  } finally {
    draining = false;
  }
}

// When opening failed there is no listener: the thread exits after the startup reply.
if (sm !== null) {
  port.on('message', (req: WorkerRequest) => {
    queue.push(req);
    drain(sm).catch((e: unknown) => {
      // drain replies to every request itself; reaching here is a bug worth crashing for.
      throw e;
    });
  });
}
