/**
 * The Raft log store seam: the log (vote/term live in the hard state next to it). Two
 * implementations pass the same conformance suite (test/storage/log-store-conformance.ts):
 * `MemoryLogStore` (simulator, unit tests) and `FileLogStore` (segmented files, group commit).
 * See docs/internals/storage.md.
 *
 * Visibility and durability: a call's effect is visible to the synchronous readers at once
 * (so a leader can replicate entries while its own disk write is in flight, Raft thesis
 * §10.2.1); its promise resolves only when the effect is durable. Operations take effect in
 * call order.
 */
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import type { Entry, HardState, LogIndex, Term } from '../raft/types.js';

export interface LogStore {
  /** The first index held: the purge point + 1. */
  firstIndex(): LogIndex;
  /** The last index held; `firstIndex() - 1` when the log is empty. */
  lastIndex(): LogIndex;
  /**
   * The term of the entry at `index`, or of the purge point (the snapshot boundary) when
   * `index === firstIndex() - 1`; undefined outside [firstIndex - 1, lastIndex].
   */
  termAt(index: LogIndex): Term | undefined;
  /**
   * Entries [lo, hiExclusive), which must lie within [firstIndex, lastIndex + 1]. When
   * `bytesMax` is given, stops before the entry that would take the total encoded size
   * (`encodedEntryBytes`) over it, but always returns at least one entry when lo < hiExclusive.
   * Throws `HQL_CORRUPTION` when a record read back from disk fails its checksum.
   */
  entries(lo: LogIndex, hiExclusive: LogIndex, bytesMax?: number): Entry[];
  /**
   * Appends contiguous entries starting within [firstIndex, lastIndex + 1]. When
   * `entries[0].index <= lastIndex`, every entry from that index on is dropped first (the
   * caller, the Raft core, has already found the conflict, Raft §5.3). Resolves once the data
   * is durable. Rejects with `HQL_ENTRY_TOO_LARGE` (one entry over `entryBytesMax`) or
   * `HQL_OVERLOADED` (write queue full) without changing anything.
   */
  append(entries: readonly Entry[]): Promise<void>;
  /**
   * Drops every entry <= `index`, behind a snapshot at (index, term). Raft §7: when the log
   * holds (index, term) the entries after it are kept; otherwise the whole log is discarded
   * and it restarts empty at index + 1. A purge point at or before the current one is a no-op.
   */
  purgeTo(index: LogIndex, term: Term): Promise<void>;
  /** Atomically replaces the hard state; resolves once it is durable. */
  saveHardState(hs: HardState): Promise<void>;
  /** The latest hard state saved (also across restarts), or null when none ever was. */
  loadHardState(): HardState | null;
  /** Waits for pending writes, then releases files. Every later call fails with `HQL_CLOSED`. */
  close(): Promise<void>;
}

/** Default cap on one encoded entry. Bigger commands should be split by the application. */
export const ENTRY_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

export function entryTooLargeError(index: number, bytes: number, entryBytesMax: number): HiqliteError {
  return new HiqliteError(
    'HQL_ENTRY_TOO_LARGE',
    `log entry ${index} encodes to ${bytes} bytes, over entryBytesMax ${entryBytesMax}`,
    { retryable: false },
  );
}

export function closedError(): HiqliteError {
  return new HiqliteError('HQL_CLOSED', 'the log store is closed', { retryable: false });
}

/**
 * Checks what the Raft core guarantees about an append (programmer errors, so assertions):
 * contiguous indices starting within [first, last + 1], and terms that never decrease, also
 * relative to the entry (or purge point) just before. Raft logs only ever grow in term.
 */
export function assertAppendable(
  first: number,
  last: number,
  termAt: (index: LogIndex) => Term | undefined,
  entries: readonly Entry[],
): void {
  const head = entries[0];
  if (head === undefined) return;
  assert(
    head.index >= first && head.index <= last + 1,
    `append at ${head.index} outside [${first}, ${last + 1}]`,
  );
  let prevTerm = termAt((head.index - 1) as LogIndex);
  assert(prevTerm !== undefined, `no term known before index ${head.index}`);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    assert(e.index === head.index + i, `append: index ${e.index} at position ${i} is not contiguous`);
    assert(e.term >= prevTerm, `append: term ${e.term} at index ${e.index} is below ${prevTerm}`);
    prevTerm = e.term;
  }
}

/** Asserts the arguments of `entries(lo, hiExclusive, bytesMax)` against [first, last]. */
export function assertReadable(
  first: number,
  last: number,
  lo: number,
  hiExclusive: number,
  bytesMax: number | undefined,
): void {
  assert(
    lo >= first && lo <= hiExclusive && hiExclusive <= last + 1,
    `entries [${lo}, ${hiExclusive}) outside [${first}, ${last + 1})`,
  );
  assert(bytesMax === undefined || bytesMax >= 0, `bytesMax ${bytesMax} is negative`);
}

/** What `purgeTo(index, term)` does to a log holding [first, last] (Raft §7). */
export type PurgePlan = { readonly type: 'none' } | { readonly type: 'prefix' } | { readonly type: 'all' };

export function planPurge(
  first: number,
  last: number,
  termAt: (index: LogIndex) => Term | undefined,
  index: LogIndex,
  term: Term,
): PurgePlan {
  assert(Number.isSafeInteger(index) && index >= 0, `purge index ${index} invalid`);
  if (index < first) return { type: 'none' };
  if (index <= last && termAt(index) === term) return { type: 'prefix' };
  return { type: 'all' };
}
