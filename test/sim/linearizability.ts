/**
 * Linearizability checker for a key-value register workload (write / read / compare-and-set).
 *
 * The algorithm is Wing & Gong's search with Lowe's memoization, laid out as in Porcupine's
 * `checkSingle` (github.com/anishathalye/porcupine, checker.go):
 *   - the history of one key becomes a doubly linked list of call and return events sorted by time;
 *   - the search walks the list; at a call it tries to linearize that op next (apply it to the
 *     sequential register); if the register accepts it and the pair (set of linearized ops, register
 *     value) was never seen, the op's call and return are unlinked ("lifted") and the walk restarts
 *     at the head; at a return it has found an op that had to take effect before this point but
 *     could not, so it backtracks (an explicit stack, no recursion: histories have thousands of ops);
 *   - the key is linearizable when every op with a known outcome has been linearized.
 *
 * Operations on different keys touch disjoint state, so linearizability is checked per key
 * (P-compositionality, Herlihy & Wing 1990, locality): the search cost is a sum over keys instead of a
 * product.
 *
 * Time is any monotonic unit (simulator ticks or wall-clock ms): only the order of call and return
 * times matters. Intervals are CLOSED: an op that returns at t and an op called at t are treated as
 * concurrent (calls sort before returns on equal times, as in Porcupine). This never rejects a real
 * history whose clock has coarse resolution; it can only miss a violation that depends on two events
 * at the very same instant.
 *
 * Unknown outcome (`return: null`: timed out, connection lost): the op may have taken effect at any
 * time after its call, or never. It gets no return event (its return is +infinity), and the search
 * succeeds once every op with a known return is linearized, so unknown ops may stay out ("never").
 * An unknown read has no effect and is dropped; an unknown write may take effect; an unknown cas may
 * take effect only where its expected value matches (a cas that fails has no effect, which is the
 * same as never taking effect).
 *
 * Unknown ops make the plain search exponential (each may be placed at many points, or not at all),
 * so four reductions keep it tractable; each is exact (it never changes the verdict, as argued where
 * it is implemented, and the tests compare the checker with brute-force enumeration):
 *   - dominance in the memo: a state with a subset of the same unknown ops placed, the same known
 *     ops and the same value covers the other (StateCache);
 *   - known ops are tried before unknown ones, so dominating states tend to come first;
 *   - interchangeable unknown ops are placed in call order only (UnknownTwins), and written values
 *     that no op observes are one value (UNOBSERVED);
 *   - an unknown op directly followed by a write is never explored (it had no visible effect).
 * What remains expensive: proving a violation in a long history with many unknown ops that write
 * small, often-read values. Workloads should write unique values (e.g. derived from the op id),
 * which keeps that case cheap too.
 *
 * Depends on nothing from the simulator or the fault-injection suite: both feed it plain histories.
 */
import { assert, assertNever } from '../../src/lib/assert.js';

export type KvOp =
  | { type: 'write'; key: string; value: number }
  | { type: 'read'; key: string }
  | { type: 'cas'; key: string; expected: number | null; value: number }; // null = key absent

export type KvResult =
  | { type: 'write' }
  | { type: 'read'; value: number | null } // null = key absent
  | { type: 'cas'; ok: boolean };

export interface Operation {
  id: number;
  clientId: number;
  op: KvOp;
  /** Invocation time (any monotonic unit). */
  call: number;
  /** Completion time; null = outcome unknown: the op may or may not have taken effect, at any time after `call`. */
  return: number | null;
  /** null iff return === null. */
  result: KvResult | null;
}

export type CheckResult =
  | { ok: true; keysChecked: number; statesExplored: number }
  /** `ops` is that key's whole history, for the failure report. */
  | { ok: false; key: string; explanation: string; ops: Operation[] }
  /** The search budget (`statesMax`) ran out on `key`. */
  | { ok: 'unknown'; key: string; reason: string };

export interface CheckOptions {
  /**
   * Search states the checker may memoize per key before giving up with `ok: 'unknown'`. A state
   * costs about `ops / 8` bytes plus ~100 bytes of overhead (measured: 1,000,000 states of a
   * 2,000-op key fit in 170 MB of RSS), and a few microseconds of search.
   */
  statesMax?: number;
}

export const STATES_MAX_DEFAULT = 2_000_000;

/**
 * Checks a whole history. Keys are checked in order of first appearance; a violation wins over an
 * exhausted budget. A malformed history (duplicate ids, return before call, result not matching
 * the op, non-finite numbers) is a bug in the harness and throws an AssertionError.
 */
export function checkLinearizable(history: readonly Operation[], options?: CheckOptions): CheckResult {
  const statesMax = options?.statesMax ?? STATES_MAX_DEFAULT;
  assert(
    Number.isInteger(statesMax) && statesMax > 0,
    `statesMax must be a positive integer, got ${statesMax}`,
  );
  validateHistory(history);

  const byKey = partitionByKey(history);
  let statesExplored = 0;
  let firstUnknown: { key: string; reason: string } | null = null;
  for (const [key, ops] of byKey) {
    const outcome = checkKey(ops, statesMax);
    switch (outcome.kind) {
      case 'ok':
        statesExplored += outcome.statesExplored;
        break;
      case 'violation':
        return { ok: false, key, explanation: `key ${JSON.stringify(key)}: ${outcome.explanation}`, ops };
      case 'budget':
        firstUnknown ??= {
          key,
          reason: `key ${JSON.stringify(key)}: search gave up after ${statesMax} states (${ops.length} ops)`,
        };
        break;
      default:
        assertNever(outcome, 'key outcome');
    }
  }
  if (firstUnknown !== null) return { ok: 'unknown', ...firstUnknown };
  return { ok: true, keysChecked: byKey.size, statesExplored };
}

/** Groups ops by key, keeping history order within a key and first-appearance order of keys. */
export function partitionByKey(history: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    const ops = byKey.get(op.op.key);
    if (ops === undefined) byKey.set(op.op.key, [op]);
    else ops.push(op);
  }
  return byKey;
}

/** One line per op for failure reports, e.g. `#7 c2 cas 1→3 ok [40, 52]`. */
export function formatOperation(o: Operation): string {
  const v = (x: number | null): string => (x === null ? 'absent' : String(x));
  const r = o.result;
  let what: string;
  switch (o.op.type) {
    case 'write':
      what = `write ${o.op.value}`;
      break;
    case 'read':
      what = r?.type === 'read' ? `read → ${v(r.value)}` : 'read';
      break;
    case 'cas': {
      const outcome = r?.type === 'cas' ? (r.ok ? ' ok' : ' failed') : '';
      what = `cas ${v(o.op.expected)}→${o.op.value}${outcome}`;
      break;
    }
    default:
      assertNever(o.op, 'op');
  }
  const unknown = o.return === null ? ' (outcome unknown)' : '';
  return `#${o.id} c${o.clientId} ${what}${unknown} [${o.call}, ${o.return ?? '?'}]`;
}

// ---------------------------------------------------------------------------------------------
// One key.

type KeyOutcome =
  | { kind: 'ok'; statesExplored: number }
  | { kind: 'violation'; explanation: string }
  | { kind: 'budget' };

type Value = number | null;

/** Longest prefix shown in a failure explanation; older entries are summarized as a count. */
const PREFIX_SHOWN_MAX = 8;

function checkKey(allOps: readonly Operation[], statesMax: number): KeyOutcome {
  // An unknown read returned nothing to anyone and changed nothing: it constrains nothing.
  // Known ops first, so that op indexes [0, knownTotal) are known and the rest unknown.
  const ops = [
    ...allOps.filter((o) => o.return !== null),
    ...allOps.filter((o) => o.return === null && o.op.type !== 'read'),
  ];
  const knownTotal = allOps.reduce((n, o) => n + (o.return === null ? 0 : 1), 0);
  if (knownTotal === 0) return { kind: 'ok', statesExplored: 0 };
  const list = EventList.build(ops);
  const effects = effectValues(ops);
  const twins = UnknownTwins.build(ops, effects, knownTotal, list);

  const linearized = new LinearizedSet(knownTotal, ops.length - knownTotal);
  const cache = new StateCache();
  // Explicit backtracking stack: the call event lifted at each depth, and the value before it.
  const stackEvent = new Int32Array(ops.length);
  const stackValue: Value[] = new Array<Value>(ops.length).fill(null);
  let depth = 0;
  let value: Value = null;
  let knownRemaining = knownTotal;
  // For the failure report: the deepest point reached and the op whose return stopped it there.
  let best: { opIndexes: number[]; value: Value; blockedOpIndex: number } | null = null;
  const lastPlacedIsUnknown = (): boolean =>
    depth > 0 && list.opIndexOf(stackEvent[depth - 1]!) >= knownTotal;

  // Candidates are the calls before the first return event in the list. They are tried in two
  // passes: ops with a known outcome first, then unknown ones. Placing an unknown op is optional,
  // so trying without it first reaches the states that dominate (see StateCache) before the ones
  // they dominate, and those are then skipped instead of explored. (Measured on 2,000-op histories
  // with 20% unknown outcomes: list order alone, or unknown ops whose value a candidate reads
  // first, needed as many states to pass and up to 20 times more to find a violation.)
  const hasUnknown = knownTotal < ops.length;
  let unknownPass = false;
  // Each iteration lifts (a new cache entry: at most statesMax), backtracks (at most one per lift)
  // or moves one event forward (at most two passes over the list between two of the others).
  const iterationsMax = (2 * statesMax + 1) * 2 * (list.size + 1);
  let event = list.first();
  for (let iteration = 0; ; iteration++) {
    assert(iteration < iterationsMax, 'linearizability search did not terminate');
    // Every unlinearized known op still has its return event in the list, ahead of the tail.
    assert(event !== list.tail, 'walked past every return event with known ops left');
    const opIndex = list.opIndexOf(event);
    if (list.isCall(event)) {
      const o = ops[opIndex]!;
      const known = opIndex < knownTotal;
      const candidate =
        known === !unknownPass &&
        (known || twins.isNextUnused(opIndex)) &&
        // An unknown op overwritten right away by a write had no visible effect: not placing it
        // reaches the same known ops and value with fewer unknown ops, which dominates this.
        !(o.op.type === 'write' && lastPlacedIsUnknown());
      const after: Value | undefined = candidate ? apply(value, o, effects[opIndex]!) : undefined;
      if (after !== undefined) {
        linearized.flip(opIndex);
        if (cache.insert(linearized, after, !known)) {
          if (cache.size > statesMax) return { kind: 'budget' };
          stackEvent[depth] = event;
          stackValue[depth] = value;
          depth++;
          value = after;
          list.lift(event);
          if (known) knownRemaining--;
          else twins.use(opIndex);
          if (knownRemaining === 0) return { kind: 'ok', statesExplored: cache.size };
          unknownPass = false;
          event = list.first();
          continue;
        }
        linearized.flip(opIndex); // explored already, or dominated: undo and try the next candidate
      }
      event = list.next(event);
      continue;
    }

    // A return event ends the candidates: the op returning here had to take effect by now.
    if (!unknownPass && hasUnknown) {
      unknownPass = true;
      event = list.first();
      continue;
    }
    // No candidate fits: backtrack.
    if (best === null || depth > best.opIndexes.length) {
      const opIndexes = Array.from(stackEvent.subarray(0, depth), (e) => list.opIndexOf(e));
      best = { opIndexes, value, blockedOpIndex: opIndex };
    }
    if (depth === 0) return { kind: 'violation', explanation: explain(ops, best) };
    depth--;
    const lifted = stackEvent[depth]!;
    const liftedOpIndex = list.opIndexOf(lifted);
    value = stackValue[depth]!;
    linearized.flip(liftedOpIndex);
    list.unlift(lifted);
    if (liftedOpIndex < knownTotal) knownRemaining++;
    else twins.unuse(liftedOpIndex);
    // Resume the pass that had placed it, with the candidate after it.
    unknownPass = liftedOpIndex >= knownTotal;
    event = list.next(lifted);
  }
}

/**
 * Stands for every written value that no op of the key can tell apart from another: no read
 * returns it and no cas expects it. Replacing them all by one token loses nothing (every op behaves
 * the same on each of them) and merges states: unknown writes nobody observed become twins instead
 * of each opening its own branch of the search. Inputs are finite, so this never collides.
 */
const UNOBSERVED: Value = Number.NEGATIVE_INFINITY;

/** Per op: the value it leaves when it takes effect (reads: unused), with UNOBSERVED substituted. */
function effectValues(ops: readonly Operation[]): Value[] {
  const observable = new Set<Value>([null]);
  for (const o of ops) {
    if (o.result?.type === 'read') observable.add(o.result.value);
    if (o.op.type === 'cas') observable.add(o.op.expected);
  }
  return ops.map((o) => {
    if (o.op.type === 'read') return null;
    return observable.has(o.op.value) ? o.op.value : UNOBSERVED;
  });
}

/**
 * The sequential specification: the register value after `o`, or `undefined` when `o` with its
 * observed result cannot happen on a register holding `value`. `effect` is the value `o` writes.
 */
function apply(value: Value, o: Operation, effect: Value): Value | undefined {
  const r = o.result;
  switch (o.op.type) {
    case 'write':
      return effect;
    case 'read':
      assert(r?.type === 'read', 'unknown reads are dropped before the search');
      return r.value === value ? value : undefined;
    case 'cas': {
      const matches = value === o.op.expected;
      // Unknown outcome: only a successful cas is an effect worth placing; a failed one equals "never".
      if (r === null) return matches ? effect : undefined;
      assert(r.type === 'cas', 'result type matches op type');
      if (r.ok) return matches ? effect : undefined;
      return matches ? undefined : value;
    }
    default:
      assertNever(o.op, 'op');
  }
}

function explain(
  ops: readonly Operation[],
  best: { opIndexes: number[]; value: Value; blockedOpIndex: number },
): string {
  const known = ops.filter((o) => o.return !== null).length;
  const n = best.opIndexes.length;
  const shown = best.opIndexes.slice(-PREFIX_SHOWN_MAX).map((i) => formatOperation(ops[i]!));
  const earlier = n > PREFIX_SHOWN_MAX ? `… ${n - PREFIX_SHOWN_MAX} earlier; ` : '';
  const prefix = n === 0 ? '(empty)' : `${earlier}${shown.join('; ')}`;
  const valueText =
    best.value === null ? 'absent' : best.value === UNOBSERVED ? 'a value no op reads' : String(best.value);
  return (
    `not linearizable (${known} ops with known outcome). ` +
    `Longest linearizable prefix, ${n} ops: ${prefix}; value then ${valueText}. ` +
    `Cannot place next: ${formatOperation(ops[best.blockedOpIndex]!)}.`
  );
}

function validateHistory(history: readonly Operation[]): void {
  const ids = new Set<number>();
  for (const o of history) {
    assert(!ids.has(o.id), `duplicate operation id ${o.id}`);
    ids.add(o.id);
    assert(Number.isFinite(o.call), `op #${o.id}: call time must be finite`);
    assert(
      (o.return === null) === (o.result === null),
      `op #${o.id}: result must be null iff return is null`,
    );
    if (o.return !== null) {
      assert(
        Number.isFinite(o.return) && o.return >= o.call,
        `op #${o.id}: return must be finite and ≥ call`,
      );
    }
    if (o.result !== null) assert(o.result.type === o.op.type, `op #${o.id}: result type must match op type`);
    if (o.op.type !== 'read') assert(Number.isFinite(o.op.value), `op #${o.id}: value must be finite`);
    if (o.op.type === 'cas' && o.op.expected !== null) {
      assert(Number.isFinite(o.op.expected), `op #${o.id}: expected must be finite`);
    }
    if (o.result?.type === 'read' && o.result.value !== null) {
      assert(Number.isFinite(o.result.value), `op #${o.id}: read value must be finite`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Data structures of the search.

/**
 * Call and return events in time order, as a doubly linked list over typed arrays, with "dancing
 * links" lift/unlift (Knuth): a lifted op's events are unlinked but keep their own pointers, so
 * unlifting in reverse order restores the list exactly.
 */
class EventList {
  /** Index of the head sentinel; events are 1..size; `tail` is the tail sentinel. */
  static readonly head = 0;
  readonly tail: number;
  readonly size: number;
  private readonly prev: Int32Array;
  private readonly nextOf: Int32Array;
  private readonly op: Int32Array;
  private readonly call: Uint8Array;
  /** For a call event: its return event, or -1 when the outcome is unknown (no return). */
  private readonly match: Int32Array;

  private constructor(size: number) {
    this.size = size;
    this.tail = size + 1;
    this.prev = new Int32Array(size + 2);
    this.nextOf = new Int32Array(size + 2);
    this.op = new Int32Array(size + 2).fill(-1);
    this.call = new Uint8Array(size + 2);
    this.match = new Int32Array(size + 2).fill(-1);
  }

  static build(ops: readonly Operation[]): EventList {
    const raw: { time: number; isCall: boolean; opIndex: number }[] = [];
    ops.forEach((o, opIndex) => {
      raw.push({ time: o.call, isCall: true, opIndex });
      if (o.return !== null) raw.push({ time: o.return, isCall: false, opIndex });
    });
    // Closed intervals: at equal times calls come first, so touching ops are concurrent.
    raw.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall) || a.opIndex - b.opIndex);

    const list = new EventList(raw.length);
    const callEventOf = new Int32Array(ops.length);
    raw.forEach((r, i) => {
      const event = i + 1;
      list.op[event] = r.opIndex;
      list.call[event] = r.isCall ? 1 : 0;
      if (r.isCall) callEventOf[r.opIndex] = event;
      else list.match[callEventOf[r.opIndex]!] = event; // a return sorts after its own call
    });
    for (let e = 0; e <= list.tail; e++) {
      list.prev[e] = e - 1;
      list.nextOf[e] = e + 1;
    }
    return list;
  }

  first(): number {
    return this.nextOf[EventList.head]!;
  }

  next(event: number): number {
    return this.nextOf[event]!;
  }

  isCall(event: number): boolean {
    return this.call[event] === 1;
  }

  opIndexOf(event: number): number {
    return this.op[event]!;
  }

  lift(callEvent: number): void {
    this.unlink(callEvent);
    const ret = this.match[callEvent]!;
    if (ret >= 0) this.unlink(ret);
  }

  unlift(callEvent: number): void {
    const ret = this.match[callEvent]!;
    if (ret >= 0) this.relink(ret);
    this.relink(callEvent);
  }

  private unlink(e: number): void {
    this.nextOf[this.prev[e]!] = this.nextOf[e]!;
    this.prev[this.nextOf[e]!] = this.prev[e]!;
  }

  private relink(e: number): void {
    this.nextOf[this.prev[e]!] = e;
    this.prev[this.nextOf[e]!] = e;
  }
}

/** Set of small integers, with a Zobrist hash (xor of a fixed random word per member) kept up to date in O(1). */
class Bitset {
  readonly words: Uint32Array;
  hash = 0;

  constructor(bits: number) {
    this.words = new Uint32Array(Math.ceil(bits / 32));
  }

  flip(i: number): void {
    this.words[i >>> 5]! ^= 1 << (i & 31);
    this.hash ^= mix32(i + 1);
  }
}

/** The linearized ops of one key: op indexes [0, knownTotal) have a known outcome, the rest do not. */
class LinearizedSet {
  readonly known: Bitset;
  readonly unknown: Bitset;
  private readonly knownTotal: number;

  constructor(knownTotal: number, unknownTotal: number) {
    this.knownTotal = knownTotal;
    this.known = new Bitset(knownTotal);
    this.unknown = new Bitset(unknownTotal);
  }

  flip(opIndex: number): void {
    if (opIndex < this.knownTotal) this.known.flip(opIndex);
    else this.unknown.flip(opIndex - this.knownTotal);
  }
}

/**
 * Unknown ops with the same effect ("twins": same type, expected value and effect value, see
 * effectValues) are interchangeable once both are called, since neither has a return to respect. Placing a later one
 * while an earlier one is unused only permutes names, so only the earliest unused twin (in call
 * order) is a candidate. The unknown ops placed are then always a prefix of each twin group, which
 * keeps the number of distinct states from growing with the number of ways to pick among twins.
 */
class UnknownTwins {
  /** For unknown op index u: group of u at [u - knownTotal], and u's rank within it by call order. */
  private readonly groupOf: Int32Array;
  private readonly rankOf: Int32Array;
  /** Per group: how many of its ops are placed (always its first ones by rank). */
  private readonly usedCount: Int32Array;
  private readonly knownTotal: number;

  private constructor(knownTotal: number, groupOf: Int32Array, rankOf: Int32Array, groupsTotal: number) {
    this.knownTotal = knownTotal;
    this.groupOf = groupOf;
    this.rankOf = rankOf;
    this.usedCount = new Int32Array(groupsTotal);
  }

  static build(
    ops: readonly Operation[],
    effects: readonly Value[],
    knownTotal: number,
    list: EventList,
  ): UnknownTwins {
    const groupIds = new Map<string, number>();
    const groupOf = new Int32Array(ops.length - knownTotal);
    for (let u = knownTotal; u < ops.length; u++) {
      const op = ops[u]!.op;
      const effect = effects[u];
      const signature = op.type === 'cas' ? `cas ${op.expected} ${effect}` : `${op.type} ${effect}`;
      let group = groupIds.get(signature);
      if (group === undefined) {
        group = groupIds.size;
        groupIds.set(signature, group);
      }
      groupOf[u - knownTotal] = group;
    }
    const rankOf = new Int32Array(ops.length - knownTotal);
    const seen = new Int32Array(groupIds.size);
    for (let e = list.first(); e !== list.tail; e = list.next(e)) {
      const u = list.opIndexOf(e);
      if (!list.isCall(e) || u < knownTotal) continue;
      const group = groupOf[u - knownTotal]!;
      rankOf[u - knownTotal] = seen[group]!;
      seen[group]!++;
    }
    return new UnknownTwins(knownTotal, groupOf, rankOf, groupIds.size);
  }

  isNextUnused(u: number): boolean {
    const i = u - this.knownTotal;
    return this.rankOf[i] === this.usedCount[this.groupOf[i]!];
  }

  use(u: number): void {
    assert(this.isNextUnused(u), 'twins are placed in call order');
    this.usedCount[this.groupOf[u - this.knownTotal]!]!++;
  }

  unuse(u: number): void {
    const i = u - this.knownTotal;
    this.usedCount[this.groupOf[i]!]!--;
    assert(this.isNextUnused(u), 'twins are removed in reverse call order');
  }
}

/**
 * Memo of explored search states (Lowe's optimization of Wing & Gong), strengthened with dominance.
 * A state is (known ops placed K, unknown ops placed U, value v, whether the last op placed was
 * unknown f; f forbids a blind write next, see checkKey). State A = (K, U, v, f) dominates
 * B = (K, U', v, f') when U ⊆ U' and f ≤ f': any completion from B also completes from A, because A
 * may place the extra unknown ops later or never (their return is +infinity), and the ops that must
 * still be placed, with their real-time constraints, are the same. So B is skipped when a dominating
 * state was reached before: either A failed, or A is an ancestor still being explored, which reaches
 * whatever B would. Without this, k unobserved unknown writes multiply the states by up to 2^k and a
 * violation after them cannot be proven within any budget.
 */
class StateCache {
  /** States inserted so far (the search budget counts these). */
  size = 0;
  /** By hash of (K, v); each group holds the antichain of (U, f) seen with that K and v. */
  private readonly buckets = new Map<number, CacheGroup[]>();

  /** Adds the state; false when it or a state dominating it was already there. */
  insert(set: LinearizedSet, value: Value, lastUnknown: boolean): boolean {
    const h = (set.known.hash ^ hashValue(value)) >>> 0;
    let bucket = this.buckets.get(h);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(h, bucket);
    }
    let group = bucket.find((g) => g.value === value && wordsEqual(g.known, set.known.words));
    if (group === undefined) {
      group = { known: set.known.words.slice(), value, seen: [] };
      bucket.push(group);
    }
    const unknown = set.unknown.words;
    let kept = 0;
    for (const s of group.seen) {
      if (s.lastUnknown <= lastUnknown && wordsSubset(s.unknown, unknown)) return false;
      // Entries the new state dominates can go: whatever they would prune, the new one prunes too.
      if (!(lastUnknown <= s.lastUnknown && wordsSubset(unknown, s.unknown))) group.seen[kept++] = s;
    }
    group.seen.length = kept;
    group.seen.push({ unknown: unknown.length === 0 ? NO_WORDS : unknown.slice(), lastUnknown });
    this.size++;
    return true;
  }
}

interface CacheGroup {
  known: Uint32Array;
  value: Value;
  seen: { unknown: Uint32Array; lastUnknown: boolean }[];
}

const NO_WORDS = new Uint32Array(0);

function wordsEqual(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** a ⊆ b */
function wordsSubset(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i]! & ~b[i]!) !== 0) return false;
  return true;
}

/** splitmix32 finalizer: spreads consecutive integers over 32 bits. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);

function hashValue(value: Value): number {
  if (value === null) return 0x5bd1e995;
  f64[0] = value === 0 ? 0 : value; // -0 === 0, so they must hash alike
  return mix32(f64Words[0]! ^ mix32(f64Words[1]!));
}
