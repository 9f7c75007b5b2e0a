/**
 * A checker's verdict that the run is wrong. Thrown from anywhere in the simulation; the runner
 * catches it and reports the seed, the checker and the recent trace.
 */
export type CheckerName =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'linearizability'
  | 'liveness'
  /** The core broke its Ready contract (e.g. non-contiguous entries to persist). */
  | 'ready-contract'
  /** The core or the runtime threw (an assertion inside it failed), or the group stopped. */
  | 'core-exception'
  /** An acknowledgement left a node before the state it vouches for was durable there. */
  | 'durability'
  /** A leader had more unacknowledged appends in flight to a follower than its window allows. */
  | 'flow-control'
  /** Node 1 founded a cluster while another node still held the existing one. */
  | 'bootstrap-safety'
  /** Cache group (test/sim/cache): two callers held one lock at once, or fencing tokens went back. */
  | 'lock-safety'
  /** Cache group: an atomic take with two winners, a counter off its acknowledged adds. */
  | 'cache-semantics'
  /** Cache group: a listener got a notification twice, out of log order, or missed one silently. */
  | 'notify-order';

export class SimFailure extends Error {
  override readonly name = 'SimFailure';

  constructor(
    readonly checker: CheckerName,
    message: string,
  ) {
    super(message);
  }
}

export function fail(checker: CheckerName, message: string): never {
  throw new SimFailure(checker, message);
}
