/**
 * A read's `minIndex` (read-your-writes): wait until this node applied it, and refuse at once an
 * index beyond the cluster's log, which no acknowledged write of this cluster has (another
 * cluster's, or one from before a restore) and would otherwise wait for its whole deadline.
 *
 * Finding that out costs a ReadIndex round with the leader, so it is asked only once the wait
 * has lasted `probeAfterMs` (a heartbeat interval): a client's own write is normally applied here
 * well within it, and the common read that waits a moment costs no round. The node's own thread
 * (hiqlite-node.ts) and an application's thread (client/worker-node.ts) share this.
 */
import type { Clock } from '../../lib/clock.js';
import { beyondTheLog } from './errors.js';

export interface AppliedIndexWait {
  /** Settles when this node applied the index (rejects at the read's deadline). */
  readonly applied: Promise<void>;
  /** One ReadIndex round: the cluster's commit index (rejects without a leader, or at the deadline). */
  readonly readIndex: () => Promise<number>;
  /** How long the wait lasts before the round is asked. */
  readonly probeAfterMs: number;
  readonly clock: Pick<Clock, 'setTimer' | 'clearTimer'>;
}

const APPLIED = Symbol('applied');
const PROBE = Symbol('probe');

/**
 * Resolves when `w.applied` does; rejects with its error, or with HQL_INVALID_PARAMS
 * (`beyondTheLog`) when the round answers first with a commit index below `minIndex`. Without an
 * answer (no leader) the wait goes on to its deadline.
 */
export async function untilAppliedIndex(minIndex: number, w: AppliedIndexWait): Promise<void> {
  const done = w.applied.then(
    () => APPLIED,
    () => APPLIED,
  );
  let timer: ReturnType<Clock['setTimer']> | null = null;
  const probe = new Promise<typeof PROBE>((resolve) => {
    timer = w.clock.setTimer(() => resolve(PROBE), w.probeAfterMs, { keepAlive: false });
  });
  const first = await Promise.race([done, probe]);
  if (timer !== null) w.clock.clearTimer(timer);
  if (first === PROBE) {
    const committed = w.readIndex().then(
      (index) => index,
      () => null,
    );
    const answer = await Promise.race([done.then(() => null), committed]);
    if (answer !== null && answer < minIndex) {
      w.applied.catch(() => {});
      throw beyondTheLog(minIndex, answer);
    }
  }
  await w.applied;
}
