/**
 * Binary encoding of a Raft `Message` together with the Raft group it belongs to, so one
 * transport serves several groups. Decoding treats the bytes as hostile: every field is checked
 * for type and range, unknown groups and message types are refused, and an append's entries must
 * form a valid log suffix (contiguous indexes, non-decreasing terms, none above the message's
 * term) because the core asserts on those and must never be crashed by a peer. Anything wrong is
 * a `ProtocolError`; nothing else is thrown.
 *
 * Layout, little-endian, u53 = two u32 words (low, high) below 2^53 (docs/internals/transport.md):
 *
 *   u8 group | u8 type | u32 from | u32 to | u53 term | type-specific fields
 *   append              u53 prevIndex, u53 prevTerm, u53 commit, u53 epoch, u32 count, count x (u32 bytes, entry)
 *   append-response     u53 matchIndex, bool reject, u53 rejectedIndex, u53 rejectHint, u53 rejectHintTerm, u53 epoch
 *   heartbeat           u53 commit, u53 commitTerm, u53 lastIndex, u53 readContext
 *   heartbeat-response  u53 readContext, u53 matchHint
 *   vote, pre-vote      u53 lastIndex, u53 lastTerm, bool transfer
 *   *-vote-response     bool granted
 *   snapshot            u53 index, u53 term, u53 epoch, membership (u32 n, n x u32 voter, u32 m, m x u32 learner)
 *   timeout-now         (nothing)
 *   read-index          u53 requestId
 *   read-index-response u53 requestId, u53 index, bool ok
 *
 * Entries use the log store's own encoding (`entry-codec.ts`). The encoding is canonical:
 * booleans are exactly 0 or 1 and trailing bytes are refused, so decode-then-encode gives back
 * the same bytes.
 */
import { assertNever } from '../lib/assert.js';
import type { Entry, LogIndex, Membership, Message, MessageType, NodeId, Term } from '../raft/types.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { decodeEntry, ENTRY_HEADER_BYTES, encodedEntryBytes, encodeEntryInto } from './entry-codec.js';
import { ProtocolError } from './protocol-error.js';
import { groupIdByte, groupIdFromByte, type RaftGroupId } from './raft-group.js';

/** group + type + from + to + term. */
export const RAFT_MESSAGE_HEADER_BYTES = 1 + 1 + 4 + 4 + 8;

export interface GroupMessage {
  readonly groupId: RaftGroupId;
  readonly message: Message;
}

export type SnapshotMessage = Extract<Message, { type: 'snapshot' }>;

// The wire numbers of message types: part of the protocol, never renumbered.
const TYPE_BYTES: Readonly<Record<MessageType, number>> = {
  append: 1,
  'append-response': 2,
  heartbeat: 3,
  'heartbeat-response': 4,
  vote: 5,
  'pre-vote': 6,
  'vote-response': 7,
  'pre-vote-response': 8,
  snapshot: 9,
  'timeout-now': 10,
  'read-index': 11,
  'read-index-response': 12,
};
const TYPES_BY_BYTE: ReadonlyMap<number, MessageType> = new Map(
  (Object.entries(TYPE_BYTES) as Array<[MessageType, number]>).map(([t, b]) => [b, t]),
);

/** The exact size of the encoding of `m`, without encoding it. */
export function encodedRaftMessageBytes(m: Message): number {
  return RAFT_MESSAGE_HEADER_BYTES + bodyBytes(m);
}

export function encodeRaftMessage(groupId: RaftGroupId, m: Message): Uint8Array {
  const out = new Uint8Array(encodedRaftMessageBytes(m));
  encodeRaftMessageInto(groupId, m, out, 0);
  return out;
}

/** Encodes into `target` at `offset` (room for `encodedRaftMessageBytes(m)`); returns the bytes written. */
export function encodeRaftMessageInto(
  groupId: RaftGroupId,
  m: Message,
  target: Uint8Array,
  offset: number,
): number {
  const w = new ByteWriter(target, offset);
  w.u8(groupIdByte(groupId));
  w.u8(TYPE_BYTES[m.type]);
  w.u32(m.from);
  w.u32(m.to);
  w.u53(m.term);
  switch (m.type) {
    case 'append':
      w.u53(m.prevIndex);
      w.u53(m.prevTerm);
      w.u53(m.commit);
      w.u53(m.epoch);
      w.u32(m.entries.length);
      for (const e of m.entries) {
        const size = encodedEntryBytes(e);
        w.u32(size);
        encodeEntryInto(e, target, w.offset);
        w.skip(size);
      }
      break;
    case 'append-response':
      w.u53(m.matchIndex);
      w.bool(m.reject);
      w.u53(m.rejectedIndex);
      w.u53(m.rejectHint);
      w.u53(m.rejectHintTerm);
      w.u53(m.epoch);
      break;
    case 'heartbeat':
      w.u53(m.commit);
      w.u53(m.commitTerm);
      w.u53(m.lastIndex);
      w.u53(m.readContext);
      break;
    case 'heartbeat-response':
      w.u53(m.readContext);
      w.u53(m.matchHint);
      break;
    case 'vote':
    case 'pre-vote':
      w.u53(m.lastIndex);
      w.u53(m.lastTerm);
      w.bool(m.transfer);
      break;
    case 'vote-response':
    case 'pre-vote-response':
      w.bool(m.granted);
      break;
    case 'snapshot':
      w.u53(m.snapshot.index);
      w.u53(m.snapshot.term);
      w.u53(m.epoch);
      writeMembership(w, m.snapshot.membership);
      break;
    case 'timeout-now':
      break;
    case 'read-index':
      w.u53(m.requestId);
      break;
    case 'read-index-response':
      w.u53(m.requestId);
      w.u53(m.index);
      w.bool(m.ok);
      break;
    default:
      assertNever(m, 'message');
  }
  return w.offset - offset;
}

/** Decodes exactly `bytes` (one encoded message, nothing after it). */
export function decodeRaftMessage(bytes: Uint8Array): GroupMessage {
  const r: ByteReader = new ByteReader(bytes, 'raft message');
  const decoded = readRaftMessage(r);
  r.end();
  return decoded;
}

/** Reads one message from `r` (for frames that embed a message after their own fields). */
export function readRaftMessage(r: ByteReader): GroupMessage {
  const groupByte = r.u8('group');
  const groupId = groupIdFromByte(groupByte);
  if (groupId === null) throw new ProtocolError('unknown-type', `unknown raft group ${groupByte}`);
  const typeByte = r.u8('type');
  const type = TYPES_BY_BYTE.get(typeByte);
  if (type === undefined) throw new ProtocolError('unknown-type', `unknown raft message type ${typeByte}`);
  const from = r.u32('from') as NodeId;
  const to = r.u32('to') as NodeId;
  const term = r.u53('term') as Term;
  return { groupId, message: readBody(r, type, from, to, term) };
}

function readBody(r: ByteReader, type: MessageType, from: NodeId, to: NodeId, term: Term): Message {
  const index = (field: string) => r.u53(field) as LogIndex;
  const termField = (field: string) => r.u53(field) as Term;
  switch (type) {
    case 'append': {
      const prevIndex = index('prevIndex');
      const prevTerm = termField('prevTerm');
      const commit = index('commit');
      const epoch = r.u53('epoch');
      const entries = readEntries(r, prevIndex, prevTerm, term);
      return { type, from, to, term, prevIndex, prevTerm, entries, commit, epoch };
    }
    case 'append-response': {
      const matchIndex = index('matchIndex');
      const reject = r.bool('reject');
      const rejectedIndex = index('rejectedIndex');
      const rejectHint = index('rejectHint');
      const rejectHintTerm = termField('rejectHintTerm');
      const epoch = r.u53('epoch');
      return { type, from, to, term, matchIndex, reject, rejectedIndex, rejectHint, rejectHintTerm, epoch };
    }
    case 'heartbeat': {
      const commit = index('commit');
      const commitTerm = termField('commitTerm');
      const lastIndex = index('lastIndex');
      const readContext = r.u53('readContext');
      return { type, from, to, term, commit, commitTerm, lastIndex, readContext };
    }
    case 'heartbeat-response': {
      const readContext = r.u53('readContext');
      const matchHint = index('matchHint');
      return { type, from, to, term, readContext, matchHint };
    }
    case 'vote':
    case 'pre-vote': {
      const lastIndex = index('lastIndex');
      const lastTerm = termField('lastTerm');
      const transfer = r.bool('transfer');
      return { type, from, to, term, lastIndex, lastTerm, transfer };
    }
    case 'vote-response':
    case 'pre-vote-response':
      return { type, from, to, term, granted: r.bool('granted') };
    case 'snapshot': {
      const snapIndex = index('snapshot index');
      const snapTerm = termField('snapshot term');
      if (snapTerm > term) r.fail(`snapshot term ${snapTerm} above the message term ${term}`);
      const epoch = r.u53('epoch');
      const membership = readMembership(r, 'snapshot membership');
      return { type, from, to, term, snapshot: { index: snapIndex, term: snapTerm, membership }, epoch };
    }
    case 'timeout-now':
      return { type, from, to, term };
    case 'read-index':
      return { type, from, to, term, requestId: r.u53('requestId') };
    case 'read-index-response': {
      const requestId = r.u53('requestId');
      const readIndex = index('index');
      const ok = r.bool('ok');
      return { type, from, to, term, requestId, index: readIndex, ok };
    }
    default:
      return assertNever(type, 'message type');
  }
}

/**
 * The entries of an append must extend the log right after `prevIndex` (Raft §5.3) with terms
 * that never decrease, start at or above `prevTerm` and never exceed the leader's term: the
 * core's log asserts on each of these, so they are checked here, on the untrusted side.
 */
function readEntries(r: ByteReader, prevIndex: LogIndex, prevTerm: Term, msgTerm: Term): Entry[] {
  const count = r.u32('entry count');
  // Each entry needs at least its length word and header: a hostile count cannot make us loop.
  if (count > r.remaining / (4 + ENTRY_HEADER_BYTES)) r.fail(`entry count ${count} overruns the message`);
  const entries: Entry[] = [];
  let lastTerm: number = prevTerm;
  for (let i = 0; i < count; i++) {
    const size = r.u32('entry length');
    const bytes = r.bytesView(size, 'entry');
    let e: Entry;
    try {
      e = decodeEntry(bytes);
    } catch (err) {
      return r.fail(`entry ${i}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (e.index !== prevIndex + 1 + i)
      r.fail(`entry ${i} has index ${e.index}, expected ${prevIndex + 1 + i}`);
    if (e.term < lastTerm) r.fail(`entry ${i} term ${e.term} below the previous term ${lastTerm}`);
    if (e.term > msgTerm) r.fail(`entry ${i} term ${e.term} above the message term ${msgTerm}`);
    if (e.kind === 'config') checkMembership(r, e.membership, `entry ${i} membership`);
    lastTerm = e.term;
    entries.push(e);
  }
  return entries;
}

function writeMembership(w: ByteWriter, m: Membership): void {
  w.u32(m.voters.length);
  for (const id of m.voters) w.u32(id);
  w.u32(m.learners.length);
  for (const id of m.learners) w.u32(id);
}

function readMembership(r: ByteReader, what: string): Membership {
  const voters = readNodeIds(r, `${what} voters`);
  const learners = readNodeIds(r, `${what} learners`);
  const m: Membership = { voters, learners };
  checkMembership(r, m, what);
  return m;
}

function readNodeIds(r: ByteReader, what: string): NodeId[] {
  const count = r.u32(`${what} count`);
  if (count > r.remaining / 4) r.fail(`${what} count ${count} overruns the message`);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) ids.push(r.u32(what) as NodeId);
  return ids;
}

/** A node is at most once in a membership, as a voter or as a learner. */
function checkMembership(r: ByteReader, m: Membership, what: string): void {
  const seen = new Set<number>();
  for (const id of [...m.voters, ...m.learners]) {
    if (seen.has(id)) r.fail(`${what} lists node ${id} twice`);
    seen.add(id);
  }
}

function bodyBytes(m: Message): number {
  switch (m.type) {
    case 'append': {
      let total = 8 * 4 + 4;
      for (const e of m.entries) total += 4 + encodedEntryBytes(e);
      return total;
    }
    case 'append-response':
      return 8 + 1 + 8 + 8 + 8 + 8;
    case 'heartbeat':
      return 8 + 8 + 8 + 8;
    case 'heartbeat-response':
      return 8 + 8;
    case 'vote':
    case 'pre-vote':
      return 8 + 8 + 1;
    case 'vote-response':
    case 'pre-vote-response':
      return 1;
    case 'snapshot':
      return (
        8 + 8 + 8 + 8 + 4 * (m.snapshot.membership.voters.length + m.snapshot.membership.learners.length)
      );
    case 'timeout-now':
      return 0;
    case 'read-index':
      return 8;
    case 'read-index-response':
      return 8 + 8 + 1;
    default:
      return assertNever(m, 'message');
  }
}
