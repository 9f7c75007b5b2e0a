/**
 * An in-memory `LogStore` for the deterministic simulator and unit tests. Every call takes
 * effect synchronously on a `MemoryLogState`, which plays the disk: a store reopened on the same
 * state (`new MemoryLogStore({ state })`) sees everything acknowledged before, as after a
 * restart of a file store. Promises resolve on a later microtask, never synchronously, so
 * callers cannot come to depend on an ordering the file store does not give.
 */
import { assert, assertNever } from '../lib/assert.js';
import { encodedEntryBytes } from '../protocol/entry-codec.js';
import type { Entry, HardState, LogIndex, Term } from '../raft/types.js';
import {
  assertAppendable,
  assertReadable,
  closedError,
  ENTRY_BYTES_MAX_DEFAULT,
  entryTooLargeError,
  type LogStore,
  planPurge,
} from './log-store.js';

/** The "disk" of a memory store: what survives close and reopen. */
export interface MemoryLogState {
  purgedIndex: number;
  purgedTerm: number;
  /** Entries purgedIndex + 1, purgedIndex + 2, … */
  entries: Entry[];
  hardState: HardState | null;
}

export interface MemoryLogStoreOptions {
  /** Shared with an earlier store to model a restart; a fresh empty state when omitted. */
  readonly state?: MemoryLogState;
  /** Cap on one encoded entry (same meaning as for the file store). */
  readonly entryBytesMax?: number;
}

export function emptyMemoryLogState(): MemoryLogState {
  return { purgedIndex: 0, purgedTerm: 0, entries: [], hardState: null };
}

export class MemoryLogStore implements LogStore {
  readonly state: MemoryLogState;
  private readonly entryBytesMax: number;
  private closed = false;

  constructor(options: MemoryLogStoreOptions = {}) {
    this.state = options.state ?? emptyMemoryLogState();
    this.entryBytesMax = options.entryBytesMax ?? ENTRY_BYTES_MAX_DEFAULT;
    assert(
      Number.isSafeInteger(this.entryBytesMax) && this.entryBytesMax > 0,
      'entryBytesMax must be a positive integer',
    );
  }

  firstIndex(): LogIndex {
    this.checkOpen();
    return (this.state.purgedIndex + 1) as LogIndex;
  }

  lastIndex(): LogIndex {
    this.checkOpen();
    return (this.state.purgedIndex + this.state.entries.length) as LogIndex;
  }

  termAt(index: LogIndex): Term | undefined {
    this.checkOpen();
    if (index === this.state.purgedIndex) return this.state.purgedTerm as Term;
    return this.state.entries[index - this.state.purgedIndex - 1]?.term;
  }

  entries(lo: LogIndex, hiExclusive: LogIndex, bytesMax?: number): Entry[] {
    this.checkOpen();
    assertReadable(this.firstIndex(), this.lastIndex(), lo, hiExclusive, bytesMax);
    const base = this.state.purgedIndex + 1;
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hiExclusive; i++) {
      const e = this.state.entries[i - base]!;
      bytes += encodedEntryBytes(e);
      if (bytesMax !== undefined && bytes > bytesMax && out.length > 0) break;
      out.push(e);
    }
    return out;
  }

  append(entries: readonly Entry[]): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    const head = entries[0];
    if (head === undefined) return Promise.resolve();
    for (const e of entries) {
      const bytes = encodedEntryBytes(e);
      if (bytes > this.entryBytesMax)
        return Promise.reject(entryTooLargeError(e.index, bytes, this.entryBytesMax));
    }
    assertAppendable(this.firstIndex(), this.lastIndex(), (i) => this.termAt(i), entries);
    const keep = head.index - this.state.purgedIndex - 1;
    this.state.entries.length = keep;
    for (const e of entries) this.state.entries.push(e);
    return Promise.resolve();
  }

  purgeTo(index: LogIndex, term: Term): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    const plan = planPurge(this.firstIndex(), this.lastIndex(), (i) => this.termAt(i), index, term);
    switch (plan.type) {
      case 'none':
        break;
      case 'prefix':
        this.state.entries.splice(0, index - this.state.purgedIndex);
        this.state.purgedIndex = index;
        this.state.purgedTerm = term;
        break;
      case 'all':
        this.state.entries = [];
        this.state.purgedIndex = index;
        this.state.purgedTerm = term;
        break;
      default:
        assertNever(plan, 'purge plan');
    }
    return Promise.resolve();
  }

  saveHardState(hs: HardState): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    this.state.hardState = hs;
    return Promise.resolve();
  }

  loadHardState(): HardState | null {
    this.checkOpen();
    return this.state.hardState;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private checkOpen(): void {
    if (this.closed) throw closedError();
  }
}
