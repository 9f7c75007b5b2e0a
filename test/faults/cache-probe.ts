/**
 * The killed-holder probe of a fault run, once the faults have stopped: a holder on the cache
 * group's leader takes a lock (public `lock()`, renewed automatically), a second client on
 * another node queues for it, then the holder dies (its client is dropped without a release)
 * and the leader is killed (-9) at the same moment. The waiter must be granted the lock, with a
 * higher fencing token, within the lease plus an election (two election timeouts), the leader's
 * expiry tick and an allowance for a loaded machine. The killed node is restarted afterwards
 * (unless the cluster is about to be closed) and must become READY again.
 */
import type { CheckOutcome } from './checks.js';
import type { FaultCluster } from './cluster.js';
import { sleep } from './workload.js';

export const PROBE_LEASE_MS = 2000;
/** election_timeout_ms of the suite's nodes (cluster.ts) and the default cache_expire_interval_ms. */
const ELECTION_TIMEOUT_MS = 1000;
const EXPIRE_INTERVAL_MS = 200;
/** Scheduling on a shared 2-core machine: processes starting, the runner's own work. */
const ALLOWANCE_MS = 4000;
export const HANDOVER_BOUND_MS = PROBE_LEASE_MS + 2 * ELECTION_TIMEOUT_MS + EXPIRE_INTERVAL_MS + ALLOWANCE_MS;

/** The node that says it leads the cache group (asked through a client bound to each node). */
async function cacheLeader(c: FaultCluster): Promise<number | null> {
  for (const id of c.ids()) {
    const db = await c.client([id], 3000).catch(() => null);
    if (db === null) continue;
    try {
      const m = await db.metrics();
      if (m.cache.role === 'leader') return id;
    } catch {
      // Not answering: ask the next.
    } finally {
      await c.closeClient(db);
    }
  }
  return null;
}

export async function lockHandoverProbe(
  c: FaultCluster,
  key: string,
  event: (line: string) => void,
  o: { readonly restart: boolean },
): Promise<CheckOutcome & { handoverMs: number | null }> {
  let leader: number | null = null;
  // Bounded: 20 rounds of asking every node.
  for (let i = 0; i < 20 && leader === null; i++) {
    leader = await cacheLeader(c);
    if (leader === null) await sleep(250);
  }
  if (leader === null)
    return { name: 'lock-handover', ok: false, detail: 'no cache leader found', handoverMs: null };
  const r = await probeOn(c, leader, key, event);
  if (o.restart && c.node(leader).child === null) {
    try {
      await c.start(leader, 90_000);
    } catch (e) {
      return { ...r, ok: false, detail: `${r.detail}; node ${leader} did not come back: ${String(e)}` };
    }
  }
  return r;
}

async function probeOn(
  c: FaultCluster,
  leader: number,
  key: string,
  event: (line: string) => void,
): Promise<CheckOutcome & { handoverMs: number | null }> {
  const fail = (detail: string) => ({ name: 'lock-handover', ok: false, detail, handoverMs: null });
  const other = c.ids().find((id) => id !== leader) as number;
  const holder = await c.client([leader], 5000);
  const waiter = await c.client([other], 10_000);
  try {
    const held = await holder.lock(key, { leaseMs: PROBE_LEASE_MS });
    const waiting = waiter.lock(key, { waitMs: 60_000 });
    waiting.catch(() => {});
    // Let the waiter's request reach the queue; it is granted at the right time either way.
    await sleep(300);
    const diedAt = performance.now();
    await c.closeClient(holder);
    await c.kill(leader);
    event(`lock probe: holder of '${key}' (token ${held.token}) and cache leader ${leader} killed`);
    let next: Awaited<typeof waiting>;
    try {
      next = await waiting;
    } catch (e) {
      return fail(
        `the waiter on node ${other} was not granted: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const handoverMs = Math.round(performance.now() - diedAt);
    await next.release().catch(() => {});
    const problems: string[] = [];
    if (next.token <= held.token) problems.push(`token ${next.token} after ${held.token}`);
    if (handoverMs > HANDOVER_BOUND_MS) problems.push(`took ${handoverMs} ms > ${HANDOVER_BOUND_MS} ms`);
    return {
      name: 'lock-handover',
      ok: problems.length === 0,
      detail:
        problems.length === 0
          ? `passed on in ${handoverMs} ms (bound ${HANDOVER_BOUND_MS}), token ${held.token} → ${next.token}`
          : problems.join('; '),
      handoverMs,
    };
  } catch (e) {
    return fail(`probe failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await c.closeClient(holder);
    await c.closeClient(waiter);
  }
}
