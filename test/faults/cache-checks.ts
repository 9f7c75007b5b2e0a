/**
 * The checks of the cache workloads (cache-workload.ts), pure functions over a CacheHistory:
 *
 *   cache-linearizable  put / get (linearizable) / putIfAbsent form a linearizable register history
 *   getRemove           of the takers of one value exactly one got it (or, with unknown outcomes,
 *                       at most one, and the value is gone only if someone may have taken it)
 *   locks               per key, in token order: grants move forward in log time, and no grant
 *                       falls inside an earlier holder's tenure as far as it is known (up to the
 *                       last acknowledged renewal of a released lock; up to the acknowledged lease
 *                       end of a lock that was abandoned or expired); every token is granted once
 *   notify              every listener receives seqs one after the other (no silent gap); a seq
 *                       is one notification everywhere and a notification one seq; acknowledged
 *                       ones carry the seq their sender was told; a listener that reported no lag
 *                       and no error received everything up to the final notification; and on
 *                       nodes no fault touched, the listener never lagged nor failed
 *   ttl                 in real time, a value put with a TTL is there for every read answered
 *                       before the TTL (from the put's start) ends, less a margin, and gone for
 *                       every read sent after the TTL (from its acknowledgement) ended, plus it
 */
import type { CacheHistory, HolderRecord, ListenSegment, TakeRound, TtlRound } from './cache-history.js';
import { type CheckOutcome, checkErrors, checkHistory } from './checks.js';

export function checkCacheRegisters(h: CacheHistory, statesMax?: number): CheckOutcome {
  return { ...checkHistory(h.registers.checkedOps(), statesMax), name: 'cache-linearizable' };
}

export function checkCacheErrors(h: CacheHistory): CheckOutcome {
  return { ...checkErrors(h.errorCodes), name: 'cache-errors' };
}

/** Needs `final` (a linearizable get after healing) on rounds without an acknowledged winner. */
export function roundsNeedingFinalRead(rounds: readonly TakeRound[]): TakeRound[] {
  return rounds.filter((r) => !r.takers.some((t) => t.outcome === 'ok' && t.value !== null));
}

export function checkGetRemove(rounds: readonly TakeRound[]): CheckOutcome {
  const problems: string[] = [];
  let won = 0;
  for (const r of rounds) {
    const winners = r.takers.filter((t) => t.outcome === 'ok' && t.value !== null);
    const okTakers = r.takers.filter((t) => t.outcome === 'ok').length;
    const unknownTakers = r.takers.length - okTakers;
    if (winners.length > 1) problems.push(`${r.key}: ${winners.length} takers got the value`);
    for (const w of winners)
      if (w.value !== r.value) problems.push(`${r.key}: a taker got ${w.value}, not ${r.value}`);
    if (winners.length === 1) won++;
    if (winners.length > 0 || r.final === undefined) continue;
    if (r.final !== null && r.final !== r.value) problems.push(`${r.key}: holds ${r.final}, never put there`);
    if (r.put === 'ok') {
      // Stored before every taker started: a taker that answered took it, unless another had.
      if (r.final === r.value && okTakers > 0)
        problems.push(`${r.key}: ${okTakers} takers answered null while the value stayed`);
      if (r.final === null && unknownTakers === 0)
        problems.push(`${r.key}: the value vanished; every taker answered null`);
    }
  }
  return {
    name: 'getRemove',
    ok: problems.length === 0,
    detail:
      problems.length === 0
        ? `${rounds.length} rounds, ${won} with an acknowledged winner`
        : `${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (+${problems.length - 10})` : ''}`,
  };
}

/**
 * TTLs against real time (the check's own monotonic clock): log time may follow neither a node's
 * clock that runs ahead (the TTL would end early) nor one that runs behind (late). A read's answer
 * holds at some moment between its start and its end, so an absent value is early only when the
 * read ended before the TTL, counted from the put's start, less `marginMs`; a present one is late
 * only when the read started after the TTL, counted from the acknowledgement, plus `marginMs`.
 */
export function checkTtls(rounds: readonly TtlRound[], marginMs: number): CheckOutcome {
  const problems: string[] = [];
  let reads = 0;
  for (const r of rounds) {
    if (r.ackAt === null) continue;
    for (const read of r.reads) {
      reads++;
      if (read.value !== null && read.value !== r.value)
        problems.push(`${r.key}: read ${read.value}, never put there`);
      if (read.value === null && read.end < r.putAt + r.ttlMs - marginMs)
        problems.push(
          `${r.key}: gone ${Math.round(read.end - r.putAt)} ms after the put was sent (TTL ${r.ttlMs} ms): ended early`,
        );
      if (read.value !== null && read.start > r.ackAt + r.ttlMs + marginMs)
        problems.push(
          `${r.key}: still there ${Math.round(read.start - r.ackAt)} ms after the put was acknowledged (TTL ${r.ttlMs} ms): ended late`,
        );
    }
  }
  return {
    name: 'ttl',
    ok: problems.length === 0,
    detail:
      problems.length === 0
        ? `${rounds.filter((r) => r.ackAt !== null).length} TTLs, ${reads} reads in time`
        : `${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (+${problems.length - 10})` : ''}`,
  };
}

/** The log time up to which `h` certainly held its lock. */
function heldUntilMs(h: HolderRecord): number {
  // Released (or maybe released): certainly held at its last acknowledged renewal. Otherwise
  // nothing but the lease's end could end it, and the lease ran at least to the acknowledged end.
  return h.end === 'released' || h.end === 'release-unknown' ? h.confirmedAtMs : h.leaseEndMs;
}

export function checkLocks(holders: readonly HolderRecord[]): CheckOutcome {
  const problems: string[] = [];
  const byToken = new Map<number, HolderRecord>();
  for (const h of holders) {
    const other = byToken.get(h.token);
    if (other !== undefined) problems.push(`token ${h.token} granted twice (${other.key}, ${h.key})`);
    byToken.set(h.token, h);
  }
  const keys = new Set(holders.map((h) => h.key));
  let abandoned = 0;
  let expired = 0;
  for (const key of keys) {
    const list = holders.filter((h) => h.key === key).sort((a, b) => a.token - b.token);
    let prev: HolderRecord | null = null;
    let heldUntil: { ms: number; by: HolderRecord } | null = null;
    for (const h of list) {
      if (h.end === 'abandoned') abandoned++;
      if (h.end === 'expired') expired++;
      if (prev !== null && h.grantAtMs < prev.grantAtMs)
        problems.push(
          `${key}: token ${h.token} granted at log ${h.grantAtMs}, before token ${prev.token} (${prev.grantAtMs})`,
        );
      if (heldUntil !== null && h.grantAtMs < heldUntil.ms)
        problems.push(
          `${key}: token ${h.token} granted at log ${h.grantAtMs} while token ${heldUntil.by.token} ` +
            `(${heldUntil.by.end ?? 'held'}) held it until at least ${heldUntil.ms}`,
        );
      const until = heldUntilMs(h);
      if (heldUntil === null || until > heldUntil.ms) heldUntil = { ms: until, by: h };
      prev = h;
    }
  }
  return {
    name: 'locks',
    ok: problems.length === 0,
    detail:
      problems.length === 0
        ? `${holders.length} tenures on ${keys.size} keys (${abandoned} abandoned, ${expired} ended by their lease), no overlap, tokens increasing`
        : `${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (+${problems.length - 10})` : ''}`,
  };
}

export interface NotifyCheckInput {
  readonly history: CacheHistory;
  /** Nodes a fault touched in the phase: their listeners may lag or fail (reported). */
  readonly touched: ReadonlySet<number>;
  /** The final notification (after healing): every listener still open must have received it. */
  readonly final: { readonly seq: number; readonly at: number } | null;
  /** Nodes whose open listener did not deliver the final notification in time. */
  readonly late: readonly number[];
}

export function checkNotify(i: NotifyCheckInput): CheckOutcome {
  const { history: h } = i;
  const problems: string[] = [];
  const valueAt = new Map<number, number>();
  const seqOf = new Map<number, number>();
  let delivered = 0;
  for (const s of h.segments) {
    let last: number | null = null;
    for (const [seq, value] of s.items) {
      delivered++;
      if (last !== null && seq !== last + 1)
        problems.push(
          `node ${s.node}: seq ${seq} delivered after ${last} (${seq - last - 1} skipped in silence)`,
        );
      last = seq;
      const v = valueAt.get(seq);
      if (v !== undefined && v !== value)
        problems.push(`seq ${seq} is ${v} on one listener, ${value} on another`);
      valueAt.set(seq, value);
      const q = seqOf.get(value);
      if (q !== undefined && q !== seq)
        problems.push(`notification ${value} delivered at seqs ${q} and ${seq}`);
      seqOf.set(value, seq);
    }
  }
  const sent = new Map(h.notifies.map((n) => [n.value, n]));
  for (const [value] of seqOf) if (!sent.has(value)) problems.push(`notification ${value} was never sent`);
  for (const n of h.notifies) {
    if (n.seq === null) continue;
    const v = valueAt.get(n.seq);
    if (v !== undefined && v !== n.value)
      problems.push(`seq ${n.seq} was acknowledged as ${n.value}, delivered as ${v}`);
  }
  for (const s of h.segments) {
    if (s.end !== null) {
      if (!i.touched.has(s.node))
        problems.push(
          `node ${s.node} (no fault touched it): its listener ${s.end.kind === 'lagged' ? `lagged (${s.end.missed} missed)` : `failed (${s.end.code})`}`,
        );
      continue;
    }
    if (i.final === null || s.opened > i.final.at) continue;
    const last = s.items[s.items.length - 1]?.[0] ?? null;
    if (last === null || last < i.final.seq)
      problems.push(
        `node ${s.node}: a listener that reported no lag stopped at seq ${last ?? 'none'} (final ${i.final.seq})`,
      );
  }
  if (i.final === null) problems.push('the final notification was not acknowledged');
  for (const node of i.late)
    problems.push(`node ${node}: its listener did not deliver the final notification`);
  const lags = h.segments.filter((s) => s.end?.kind === 'lagged').length;
  const errors = h.segments.filter((s) => s.end?.kind === 'error').length;
  const acked = h.notifies.filter((n) => n.outcome === 'ok').length;
  return {
    name: 'notify',
    ok: problems.length === 0,
    detail:
      problems.length === 0
        ? `${acked} acknowledged, ${delivered} deliveries on ${h.segments.length} listen segments (${lags} lagged, ${errors} failed, on touched nodes only), all in order, none missed in silence`
        : `${[...new Set(problems)].slice(0, 10).join('; ')}${problems.length > 10 ? ` (+${problems.length - 10})` : ''}`,
  };
}

/** For reports: segments per node and how they ended. */
export function describeSegments(segments: readonly ListenSegment[]): string {
  return segments
    .map((s) => `n${s.node}:${s.items.length}${s.end === null ? '' : `/${s.end.kind}`}`)
    .join(' ');
}
