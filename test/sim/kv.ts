/**
 * The simulated state machine: a small key-value register (write / cas through the log, reads
 * through read-index), plus the membership as of the applied index, which a snapshot must carry.
 * Commands travel as bytes (JSON through TextEncoder), as a real state machine's would.
 */
import { assert, assertNever } from '../../src/lib/assert.js';
import type { Entry, LogIndex, Membership, SnapshotMeta, Term } from '../../src/raft/types.js';
import { logIndex, term } from '../../src/raft/types.js';
import type { KvOp, KvResult } from './linearizability.js';

/** A write or cas as proposed through the log; `opId` lets the proposer recognise its own entry. */
export interface KvCommand {
  readonly opId: number;
  readonly op: Extract<KvOp, { type: 'write' | 'cas' }>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(c));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  const c = JSON.parse(decoder.decode(data)) as KvCommand;
  assert(typeof c.opId === 'number' && (c.op.type === 'write' || c.op.type === 'cas'), 'bad command');
  return c;
}

/** What a snapshot holds: immutable, shared by reference between simulated nodes (never mutated). */
export interface KvSnapshot {
  readonly meta: SnapshotMeta;
  readonly pairs: ReadonlyArray<readonly [string, number]>;
  readonly digest: string;
}

export function emptySnapshot(membership: Membership): KvSnapshot {
  return { meta: { index: logIndex(0), term: term(0), membership }, pairs: [], digest: '' };
}

const entryDigests = new WeakMap<Entry, string>();

/** A canonical text of an entry's content, to compare entries across nodes. Cached per object. */
export function entryDigest(e: Entry): string {
  const cached = entryDigests.get(e);
  if (cached !== undefined) return cached;
  let d: string;
  switch (e.kind) {
    case 'command':
      d = `c:${decoder.decode(e.data)}`;
      break;
    case 'noop':
      d = 'n';
      break;
    case 'config':
      d = `m:${e.membership.voters.join(',')}/${e.membership.learners.join(',')}`;
      break;
    default:
      assertNever(e, 'entry');
  }
  entryDigests.set(e, d);
  return d;
}

export class KvStateMachine {
  private readonly map = new Map<string, number>();
  appliedIndex: LogIndex;
  appliedTerm: Term;
  membership: Membership;

  constructor(snapshot: KvSnapshot) {
    for (const [k, v] of snapshot.pairs) this.map.set(k, v);
    this.appliedIndex = snapshot.meta.index;
    this.appliedTerm = snapshot.meta.term;
    this.membership = snapshot.meta.membership;
  }

  /** Apply the next committed entry; returns the command's result (null for noop/config). */
  apply(e: Entry): { opId: number; result: KvResult } | null {
    assert(e.index === this.appliedIndex + 1, `apply out of order: ${e.index} after ${this.appliedIndex}`);
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
    switch (e.kind) {
      case 'noop':
        return null;
      case 'config':
        this.membership = e.membership;
        return null;
      case 'command': {
        const c = decodeCommand(e.data);
        return { opId: c.opId, result: this.execute(c.op) };
      }
      default:
        return assertNever(e, 'entry');
    }
  }

  read(key: string): number | null {
    return this.map.get(key) ?? null;
  }

  snapshot(): KvSnapshot {
    const pairs = [...this.map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return {
      meta: { index: this.appliedIndex, term: this.appliedTerm, membership: this.membership },
      pairs,
      digest: pairs.map(([k, v]) => `${k}=${v}`).join(';'),
    };
  }

  digest(): string {
    return this.snapshot().digest;
  }

  private execute(op: KvCommand['op']): KvResult {
    switch (op.type) {
      case 'write':
        this.map.set(op.key, op.value);
        return { type: 'write' };
      case 'cas': {
        const current = this.map.get(op.key) ?? null;
        if (current !== op.expected) return { type: 'cas', ok: false };
        this.map.set(op.key, op.value);
        return { type: 'cas', ok: true };
      }
      default:
        return assertNever(op, 'op');
    }
  }
}
