/** Messages between ReadPool (read-pool.ts) and its threads (read-worker.ts). */
import type { QueryParams } from './reader.js';
import type { SerializedError } from './worker-protocol.js';

export interface ReadWorkerInit {
  readonly dbPath: string;
  readonly statementCacheMax: number;
  readonly busyTimeoutMs: number;
  readonly interruptible: boolean;
  /** SqlReaderOptions.rowsMax. */
  readonly rowsMax: number;
  /** SqlReaderOptions.resultBytesMax. */
  readonly resultBytesMax: number;
  /** SqlReaderOptions.valueBytesMax. */
  readonly valueBytesMax?: number;
}

export type ReadRequest =
  | {
      readonly id: number;
      readonly op: 'query';
      readonly sql: string;
      readonly params: QueryParams;
      /** The statement is interrupted after this long (when the thread's reader can be). */
      readonly timeoutMs: number;
      /** The applied index the runtime knows of (schema changes come with applied writes). */
      readonly applied: number;
    }
  | { readonly id: number; readonly op: 'close' };

/** id 0 is the startup reply: `{ interruptible, connectionId }`, or why the reader did not open. */
export type ReadReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

export interface ReadWorkerStarted {
  readonly interruptible: boolean;
  readonly connectionId: number | null;
}
