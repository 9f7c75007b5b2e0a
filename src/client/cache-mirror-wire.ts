/**
 * What the node's thread sends the application thread's cache mirror (cache-mirror.ts), and the
 * packing of applied entries into one transferable buffer.
 *
 * Order is the whole protocol: these events travel in the same batches as the replies to calls
 * (node-thread-protocol.ts), and a batch's events are handled before its replies, so everything
 * the node applied before it answered a call is in the mirror (or announced lost) when the
 * answer arrives.
 *
 * - `mirror-snapshot` begins a new epoch: the mirror's state is replaced by the snapshot whose
 *   bytes follow in `mirror-chunk` events up to `mirror-snapshot-end`. Entries applied after the
 *   snapshot was captured follow in the same epoch, interleaved with the chunks.
 * - `mirror-entries`: applied entries, contiguous, in log order.
 * - `mirror-lost`: the node stopped sending this epoch's entries (the window was full, or its
 *   state was replaced by an installed snapshot); a new epoch follows once the mirror caught up.
 *
 * Every chunk and entry buffer counts against the window until the mirror acknowledges it
 * (`mirror-ack` with its byte length), which it does once it applied or dropped it.
 */
import { assert } from '../lib/assert.js';
import { decodeEntry, encodedEntryBytes, encodeEntryInto } from '../protocol/entry-codec.js';
import type { Entry } from '../raft/types.js';

export type MirrorEvent =
  | { readonly type: 'mirror-snapshot'; readonly epoch: number; readonly index: number }
  | { readonly type: 'mirror-chunk'; readonly epoch: number; readonly chunk: Uint8Array }
  | { readonly type: 'mirror-snapshot-end'; readonly epoch: number }
  | {
      readonly type: 'mirror-entries';
      readonly epoch: number;
      /** `packEntries` of the batch. */
      readonly bytes: Uint8Array;
      readonly first: number;
      readonly last: number;
    }
  | { readonly type: 'mirror-lost'; readonly epoch: number };

/** Entries as `[u32 length][entry-codec bytes]…` in one fresh buffer (transferable). */
export function packEntries(entries: readonly Entry[]): Uint8Array {
  let size = 0;
  for (const e of entries) size += 4 + encodedEntryBytes(e);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    const n = encodeEntryInto(e, out, at + 4);
    view.setUint32(at, n, true);
    at += 4 + n;
  }
  assert(at === size, 'packEntries: sizes disagree');
  return out;
}

export function unpackEntries(bytes: Uint8Array): Entry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Entry[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const n = view.getUint32(at, true);
    out.push(decodeEntry(bytes.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return out;
}
