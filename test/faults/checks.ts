/**
 * The checks of a fault run, as pure functions over what the run observed:
 *   linearizable  the register history (test/sim/linearizability.ts); final reads after healing
 *                 are part of it, so an acknowledged write that vanished shows up as a violation
 *   appends       every acknowledged insert exists at the end; nothing exists that was never sent
 *                 or that definitely failed
 *   replicas      every node holds identical content once all applied the same index
 *   liveness      a write and a linearizable read succeed within a bound after the faults stop
 *   rejoin        every node restarted (or wiped) becomes a member again
 *   crashes       no node process exited without being killed
 *   errors        clients only saw the errors faults explain (timeouts, unavailability, …)
 */
import { checkLinearizable, formatOperation, type Operation } from '../sim/linearizability.js';
import type { Crash } from './cluster.js';
import type { AppendRecord } from './workload.js';

export interface CheckOutcome {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Errors a client may see while nodes die, pause or are cut off. Anything else is a finding. */
export const EXPECTED_ERROR_CODES: ReadonlySet<string> = new Set([
  'HQL_TIMEOUT',
  'HQL_OUTCOME_UNKNOWN',
  'HQL_UNAVAILABLE',
  'HQL_NOT_LEADER',
  'HQL_UNREACHABLE',
  'HQL_CLOSED',
  'HQL_OVERLOADED',
  'HQL_PROPOSAL_DROPPED',
  'HQL_LEADERSHIP_TRANSFER',
  'HQL_CONFIG_CHANGE_PENDING',
]);

export function checkHistory(ops: readonly Operation[], statesMax?: number): CheckOutcome {
  const started = performance.now();
  const r = checkLinearizable(ops, statesMax === undefined ? {} : { statesMax });
  const ms = Math.round(performance.now() - started);
  if (r.ok === true) {
    return {
      name: 'linearizable',
      ok: true,
      detail: `${ops.length} ops, ${r.keysChecked} keys, ${r.statesExplored} states, ${ms} ms`,
    };
  }
  if (r.ok === 'unknown') return { name: 'linearizable', ok: false, detail: `undecided: ${r.reason}` };
  const recent = r.ops.slice(-30).map(formatOperation).join('\n    ');
  return {
    name: 'linearizable',
    ok: false,
    detail: `${r.explanation}\n  last ops of key ${r.key}:\n    ${recent}`,
  };
}

/** `finalIds`: the append ids of this run present at the end (on every replica: they are equal). */
export function checkAppends(appends: readonly AppendRecord[], finalIds: ReadonlySet<number>): CheckOutcome {
  const lost: number[] = [];
  const phantom: number[] = [];
  const byId = new Map(appends.map((a) => [a.id, a]));
  let acked = 0;
  let unknownPresent = 0;
  for (const a of appends) {
    if (a.outcome === 'ok') {
      acked++;
      if (!finalIds.has(a.id)) lost.push(a.id);
    } else if (a.outcome === 'failed' && finalIds.has(a.id)) phantom.push(a.id);
    else if (finalIds.has(a.id)) unknownPresent++;
  }
  for (const id of finalIds) if (!byId.has(id)) phantom.push(id);
  const ok = lost.length === 0 && phantom.length === 0;
  const detail = ok
    ? `${acked} acknowledged all present, ${unknownPresent} of unknown outcome present`
    : `lost acknowledged: [${lost.slice(0, 20).join(', ')}]${lost.length > 20 ? ` (+${lost.length - 20})` : ''}; ` +
      `present but never sent or failed: [${phantom.slice(0, 20).join(', ')}]`;
  return { name: 'appends', ok, detail };
}

export interface ReplicaContent {
  readonly id: number;
  readonly checksum: string;
  readonly rows: number;
  readonly appliedIndex: number;
}

export function checkReplicas(contents: readonly ReplicaContent[], expectedNodes: number): CheckOutcome {
  const sums = new Set(contents.map((c) => c.checksum));
  const text = contents
    .map((c) => `n${c.id}@${c.appliedIndex}:${c.checksum.slice(0, 10)}(${c.rows} rows)`)
    .join(' ');
  if (contents.length !== expectedNodes)
    return {
      name: 'replicas',
      ok: false,
      detail: `only ${contents.length}/${expectedNodes} answered: ${text}`,
    };
  return {
    name: 'replicas',
    ok: sums.size === 1,
    detail: sums.size === 1 ? `identical: ${text}` : `DIFFER: ${text}`,
  };
}

export function checkCrashes(crashes: readonly Crash[]): CheckOutcome {
  if (crashes.length === 0) return { name: 'crashes', ok: true, detail: 'none' };
  const first = crashes[0] as Crash;
  return {
    name: 'crashes',
    ok: false,
    detail:
      `${crashes.length} unexpected exit(s); node ${first.id} at ${first.atMs} ms ` +
      `(code ${first.code}, signal ${first.signal}):\n${first.outputTail.slice(-1500)}`,
  };
}

export function checkErrors(codes: ReadonlyMap<string, number>): CheckOutcome {
  const unexpected = [...codes].filter(([code]) => !EXPECTED_ERROR_CODES.has(code));
  const all = [...codes].map(([c, k]) => `${c}×${k}`).join(' ') || 'none';
  return {
    name: 'errors',
    ok: unexpected.length === 0,
    detail:
      unexpected.length === 0
        ? all
        : `unexpected ${unexpected.map(([c, k]) => `${c}×${k}`).join(' ')}; all: ${all}`,
  };
}
