/**
 * A stable binary encoding of a Raft log `Entry`, used by the log store on disk and usable on
 * the wire. Decoding validates untrusted bytes and throws `EntryDecodeError` (code
 * 'HQL_CORRUPTION'); it never throws a RangeError or returns a half-valid entry.
 *
 * Layout, little-endian, no padding (docs/internals/storage.md):
 *
 *   u8   kind          1 = command, 2 = noop, 3 = config
 *   u32  term low, u32 term high      (term  = high * 2^32 + low, below 2^53)
 *   u32  index low, u32 index high    (index = high * 2^32 + low, below 2^53)
 *   command: u32 dataBytes, then dataBytes bytes
 *   noop:    nothing
 *   config:  u32 voterCount, voterCount x u32 node id, u32 learnerCount, learnerCount x u32 node id
 *
 * The encoding is exact: trailing bytes are rejected, so one encoded entry has one length.
 */
import { assert, assertNever } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import type { Entry, LogIndex, Membership, NodeId, Term } from '../raft/types.js';

const KIND_COMMAND = 1;
const KIND_NOOP = 2;
const KIND_CONFIG = 3;

/** kind + term + index. */
export const ENTRY_HEADER_BYTES = 1 + 8 + 8;
/** The byte offset of the index inside an encoded entry (lets a scanner check it cheaply). */
export const ENTRY_INDEX_OFFSET = 1 + 8;

const U32_LIMIT = 2 ** 32;
/** The high word of any safe integer is at most 2^21 - 1. */
const U53_HIGH_MAX = 2 ** 21 - 1;

/** Malformed entry bytes: truncated, unknown kind, out-of-range integers, trailing bytes. */
export class EntryDecodeError extends HiqliteError {
  override readonly name = 'EntryDecodeError';
  /** Where in the input the problem was found. */
  readonly offset: number;

  constructor(reason: string, offset: number) {
    super('HQL_CORRUPTION', `malformed log entry at byte ${offset}: ${reason}`, { retryable: false });
    this.offset = offset;
  }
}

/** The exact size of `encodeEntry(e)`, without encoding it. */
/** The largest command payload whose entry encodes to at most `entryBytesMax` bytes. */
export function commandBytesMaxFor(entryBytesMax: number): number {
  return entryBytesMax - ENTRY_HEADER_BYTES - 4;
}

export function encodedEntryBytes(e: Entry): number {
  switch (e.kind) {
    case 'command':
      return ENTRY_HEADER_BYTES + 4 + e.data.byteLength;
    case 'noop':
      return ENTRY_HEADER_BYTES;
    case 'config':
      return ENTRY_HEADER_BYTES + 8 + 4 * (e.membership.voters.length + e.membership.learners.length);
    default:
      return assertNever(e, 'entry');
  }
}

export function encodeEntry(e: Entry): Uint8Array {
  const out = new Uint8Array(encodedEntryBytes(e));
  const written = encodeEntryInto(e, out, 0);
  assert(written === out.byteLength, 'encodedEntryBytes disagrees with encodeEntryInto');
  return out;
}

/**
 * Encodes `e` into `target` at `offset` (which must have `encodedEntryBytes(e)` bytes of room)
 * and returns the number of bytes written. Lets the log store build a record without a copy.
 */
export function encodeEntryInto(e: Entry, target: Uint8Array, offset: number): number {
  const size = encodedEntryBytes(e);
  assert(offset >= 0 && offset + size <= target.byteLength, 'encodeEntryInto: target too small');
  const view = new DataView(target.buffer, target.byteOffset + offset, size);
  view.setUint8(0, kindByte(e));
  writeU53(view, 1, e.term, 'term');
  writeU53(view, ENTRY_INDEX_OFFSET, e.index, 'index');
  let at = ENTRY_HEADER_BYTES;
  switch (e.kind) {
    case 'command':
      assert(e.data.byteLength < U32_LIMIT, 'command data too large to encode');
      view.setUint32(at, e.data.byteLength, true);
      target.set(e.data, offset + at + 4);
      at += 4 + e.data.byteLength;
      break;
    case 'noop':
      break;
    case 'config':
      at = writeNodeIds(view, at, e.membership.voters);
      at = writeNodeIds(view, at, e.membership.learners);
      break;
    default:
      assertNever(e, 'entry');
  }
  return at;
}

/**
 * Decodes one entry from exactly `bytes`. Command data is copied, so the result does not keep
 * a large read buffer alive.
 */
export function decodeEntry(bytes: Uint8Array): Entry {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < ENTRY_HEADER_BYTES) {
    throw new EntryDecodeError(`${bytes.byteLength} bytes, shorter than the entry header`, 0);
  }
  const kind = view.getUint8(0);
  const term = readU53(view, 1, 'term') as Term;
  const index = readU53(view, ENTRY_INDEX_OFFSET, 'index') as LogIndex;
  let at = ENTRY_HEADER_BYTES;
  let entry: Entry;
  switch (kind) {
    case KIND_COMMAND: {
      need(view, at, 4, 'command length');
      const dataBytes = view.getUint32(at, true);
      at += 4;
      need(view, at, dataBytes, 'command data');
      const data = new Uint8Array(dataBytes);
      data.set(bytes.subarray(at, at + dataBytes));
      at += dataBytes;
      entry = { kind: 'command', index, term, data };
      break;
    }
    case KIND_NOOP:
      entry = { kind: 'noop', index, term };
      break;
    case KIND_CONFIG: {
      const voters = readNodeIds(view, at, 'voters');
      at = voters.next;
      const learners = readNodeIds(view, at, 'learners');
      at = learners.next;
      const membership: Membership = { voters: voters.ids, learners: learners.ids };
      entry = { kind: 'config', index, term, membership };
      break;
    }
    default:
      throw new EntryDecodeError(`unknown entry kind ${kind}`, 0);
  }
  if (at !== bytes.byteLength) {
    throw new EntryDecodeError(`${bytes.byteLength - at} trailing bytes after the entry`, at);
  }
  return entry;
}

function kindByte(e: Entry): number {
  switch (e.kind) {
    case 'command':
      return KIND_COMMAND;
    case 'noop':
      return KIND_NOOP;
    case 'config':
      return KIND_CONFIG;
    default:
      return assertNever(e, 'entry');
  }
}

function writeU53(view: DataView, at: number, value: number, what: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${what} ${value} is not a non-negative safe integer`);
  view.setUint32(at, value % U32_LIMIT, true);
  view.setUint32(at + 4, Math.floor(value / U32_LIMIT), true);
}

function readU53(view: DataView, at: number, what: string): number {
  need(view, at, 8, what);
  const low = view.getUint32(at, true);
  const high = view.getUint32(at + 4, true);
  if (high > U53_HIGH_MAX) throw new EntryDecodeError(`${what} is not below 2^53`, at);
  return high * U32_LIMIT + low;
}

function writeNodeIds(view: DataView, at: number, ids: readonly NodeId[]): number {
  view.setUint32(at, ids.length, true);
  at += 4;
  for (const id of ids) {
    assert(Number.isInteger(id) && id >= 0 && id < U32_LIMIT, `node id ${id} is not a u32`);
    view.setUint32(at, id, true);
    at += 4;
  }
  return at;
}

function readNodeIds(view: DataView, at: number, what: string): { ids: NodeId[]; next: number } {
  need(view, at, 4, `${what} count`);
  const count = view.getUint32(at, true);
  at += 4;
  // Checked against the bytes present before allocating: a hostile count cannot make us allocate.
  if (count > (view.byteLength - at) / 4) throw new EntryDecodeError(`${what} count ${count} overruns`, at);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(view.getUint32(at, true) as NodeId);
    at += 4;
  }
  return { ids, next: at };
}

function need(view: DataView, at: number, bytes: number, what: string): void {
  if (at + bytes > view.byteLength) {
    throw new EntryDecodeError(`truncated ${what}: need ${bytes} bytes, ${view.byteLength - at} left`, at);
  }
}
