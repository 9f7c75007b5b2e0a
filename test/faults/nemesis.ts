/**
 * Nemeses: each `inject` applies one fault episode, chosen with the seeded PRNG, and returns how
 * to heal it. The runner alternates quiet periods and episodes, then heals everything at the end.
 *
 *   kill         SIGKILL a random minority (sometimes a majority: the cluster must come back
 *                with every acknowledged write), restart on heal
 *   kill-leader  SIGKILL the leader, restart on heal
 *   pause        SIGSTOP the leader or a random minority, SIGCONT on heal
 *   partition    cut links through the proxies: majority/minority halves, the leader alone, a
 *                bridge (two sides that only share one node), one-way cuts; refused or blackholed
 *   slow         latency per chunk on all links, on one node's links, or on random links
 *   wipe         SIGKILL a node, delete its data directory, restart: it must rejoin
 *   operator     delete a stopped node's log dir, database, snapshots or data dir (node 1 too,
 *                with the others down and node 1 started alone first), restart it
 *   mixed        one or two of the above at once (wipe only alone, on a healthy cluster; clock
 *                when the cluster was made with clocks, as the runner makes it for mixed)
 *   clock        step the wall clocks of a random minority (sometimes with the leader) ahead or
 *                behind by seconds to an hour, alone, or with those nodes cut off (so what
 *                they knew of the others' clocks ages out) or restarted at once (they start
 *                with the wrong clock); clocks reset on heal. Needs a cluster made with `clocks`
 *                (libfaketime); the runner makes one for this nemesis
 *   disk-full    fill the disk of a random minority (the leader in half of the episodes): every
 *                write, sync and allocation under its data_dir fails with ENOSPC; it must stop
 *                (exit 1, naming the cause) and the others go on; space again and a restart on
 *                heal. Needs a cluster made with `disks` (the ENOSPC shim); the runner makes one
 */
import { assertNever } from '../../src/lib/assert.js';
import type { Random } from '../../src/lib/prng.js';
import type { FaultCluster } from './cluster.js';
import type { Groups } from './network.js';

export const NEMESES = [
  'kill',
  'kill-leader',
  'pause',
  'partition',
  'slow',
  'wipe',
  'operator',
  'mixed',
  'clock',
  'disk-full',
] as const;
export type NemesisName = (typeof NEMESES)[number];

/**
 * The nemeses of a cluster whose cache group is kept in memory (`--cache-memory`): those that
 * never take a majority's cache state (kills wait until the group is whole again); the others
 * wipe, restart several nodes at once or stop nodes for their disk.
 */
export const CACHE_MEMORY_NEMESES: readonly NemesisName[] = [
  'kill',
  'kill-leader',
  'pause',
  'partition',
  'slow',
];

export function isNemesisName(s: string): s is NemesisName {
  return (NEMESES as readonly string[]).includes(s);
}

export interface NemesisContext {
  readonly cluster: FaultCluster;
  readonly rng: Random;
  readonly log: (line: string) => void;
}

export interface Fault {
  readonly description: string;
  heal(): Promise<void>;
}

/** One episode of `name`; null when its precondition did not hold (e.g. wipe on an unhealthy cluster). */
export async function inject(name: NemesisName, ctx: NemesisContext): Promise<Fault | null> {
  switch (name) {
    case 'kill':
      return killSome(ctx);
    case 'kill-leader':
      return killLeader(ctx);
    case 'pause':
      return pause(ctx);
    case 'partition':
      return partition(ctx);
    case 'slow':
      return slow(ctx);
    case 'wipe':
      return wipe(ctx);
    case 'operator':
      return operator(ctx);
    case 'mixed':
      return mixed(ctx);
    case 'clock':
      return clockStep(ctx);
    case 'disk-full':
      return diskFull(ctx);
    default:
      assertNever(name, 'nemesis');
  }
}

// ---------------------------------------------------------------------------------------------

function minority(n: number): number {
  return Math.floor((n - 1) / 2);
}

function shuffled<T>(rng: Random, items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

function running(c: FaultCluster): number[] {
  return c.ids().filter((id) => c.node(id).child !== null);
}

/** Restarts the nodes that are down; does not wait for READY (the runner checks that at the end). */
function restart(c: FaultCluster, ids: readonly number[]): void {
  for (const id of ids) {
    if (c.node(id).child === null) c.start(id).catch(() => {});
  }
}

async function killSome(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng } = ctx;
  const n = c.ids().length;
  const alive = running(c);
  if (alive.length === 0) return null;
  // A cache group kept in memory loses a killed node's state: only a minority's, and only while
  // the others hold the group (what a majority lost is gone for good, by design).
  if (c.cacheMemory && !c.cacheLoss && !(await c.cacheGroupWhole())) return null;
  // Mostly a minority; sometimes a majority, which stops the cluster until they come back (with
  // the cache group in memory, only when its loss is allowed: it is founded anew, empty).
  const majority = c.cacheLoss ? rng.chance(0.35) : rng.chance(0.15) && !c.cacheMemory;
  const k = majority ? Math.floor(n / 2) + 1 : rng.int(1, minority(n) + 1);
  const targets = shuffled(rng, alive).slice(0, k);
  for (const id of targets) await c.kill(id);
  return {
    description: `kill -9 ${targets.join(',')}`,
    heal: async () => restart(c, targets),
  };
}

async function killLeader(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng } = ctx;
  if (c.cacheMemory && !c.cacheLoss && !(await c.cacheGroupWhole())) return null;
  const leader = await c.leader();
  const alive = running(c);
  if (alive.length === 0) return null;
  const target = leader ?? rng.pick(alive);
  await c.kill(target);
  return {
    description: `kill -9 ${leader === null ? `node ${target} (no leader known)` : `leader ${target}`}`,
    heal: async () => restart(c, [target]),
  };
}

async function pause(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng } = ctx;
  const alive = running(c).filter((id) => c.node(id).state !== 'paused');
  if (alive.length === 0) return null;
  let targets: number[];
  // The leader stamps: a wrong clock there is the one that would end TTLs and leases.
  const leader = rng.chance(0.7) ? await c.leader() : null;
  if (leader !== null && alive.includes(leader)) targets = [leader];
  else targets = shuffled(rng, alive).slice(0, rng.int(1, minority(c.ids().length) + 1));
  for (const id of targets) c.pause(id);
  return {
    description: `SIGSTOP ${leader !== null && targets[0] === leader ? 'leader ' : ''}${targets.join(',')}`,
    heal: async () => {
      for (const id of targets) c.resume(id);
    },
  };
}

async function partition(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng } = ctx;
  const ids = c.ids();
  const n = ids.length;
  const mode = rng.chance(0.5) ? 'refuse' : 'blackhole';
  const resetFrozen = rng.chance(0.5);
  let description: string;
  const kind = rng.pick(['halves', 'isolate-leader', 'bridge', 'one-way-out', 'one-way-in', 'random-links']);
  switch (kind) {
    case 'halves': {
      const s = shuffled(rng, ids);
      const small = s.slice(0, rng.int(1, minority(n) + 1));
      const large = s.slice(small.length);
      c.net.partition([small, large], mode);
      description = `partition ${groupsText([small, large])}`;
      break;
    }
    case 'isolate-leader': {
      const leader = (await c.leader()) ?? rng.pick(ids);
      const rest = ids.filter((id) => id !== leader);
      c.net.partition([[leader], rest], mode);
      description = `partition leader ${leader} away: ${groupsText([[leader], rest])}`;
      break;
    }
    case 'bridge': {
      // The bridge node talks to both sides; the sides do not talk to each other.
      const s = shuffled(rng, ids);
      const bridge = s[0] as number;
      const rest = s.slice(1);
      const a = rest.slice(0, Math.ceil(rest.length / 2));
      const b = rest.slice(a.length);
      for (const x of a) {
        for (const y of b) {
          c.net.cut(x, y, mode);
          c.net.cut(y, x, mode);
        }
      }
      description = `bridge ${bridge} between {${a.join(',')}} and {${b.join(',')}}`;
      break;
    }
    case 'one-way-out':
    case 'one-way-in': {
      // Out: the node can receive but its own messages are lost. In: the reverse.
      const x = rng.chance(0.5) ? ((await c.leader()) ?? rng.pick(ids)) : rng.pick(ids);
      for (const y of ids) {
        if (y === x) continue;
        if (kind === 'one-way-out') c.net.cut(x, y, mode);
        else c.net.cut(y, x, mode);
      }
      description = `${kind === 'one-way-out' ? `${x} cannot send` : `${x} cannot receive`}`;
      break;
    }
    case 'random-links': {
      const cut: string[] = [];
      for (const l of c.net.allLinks()) {
        if (rng.chance(0.3)) {
          c.net.cut(l.from, l.to, mode);
          cut.push(`${l.from}->${l.to}`);
        }
      }
      description = `cut links ${cut.join(' ') || '(none)'}`;
      break;
    }
    default:
      throw new Error(`unknown partition kind ${kind}`);
  }
  return {
    description: `${description} [${mode}${mode === 'blackhole' ? (resetFrozen ? ', reset on heal' : ', resume on heal') : ''}]`,
    heal: async () => c.net.healAll({ resetFrozen }),
  };
}

function groupsText(groups: Groups): string {
  return groups.map((g) => `{${[...g].sort((a, b) => a - b).join(',')}}`).join(' | ');
}

async function slow(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng } = ctx;
  const ids = c.ids();
  const kind = rng.pick(['all', 'node', 'random-links']);
  let description: string;
  switch (kind) {
    case 'all': {
      const ms = rng.int(20, 250);
      for (const l of c.net.allLinks()) c.net.slow(l.from, l.to, ms);
      description = `all links +${ms}ms`;
      break;
    }
    case 'node': {
      // Up to beyond the election timeout: heartbeats arrive late, elections may follow.
      const x = rng.chance(0.5) ? ((await c.leader()) ?? rng.pick(ids)) : rng.pick(ids);
      const ms = rng.int(100, 1500);
      for (const y of ids) {
        if (y === x) continue;
        c.net.slow(x, y, ms);
        c.net.slow(y, x, ms);
      }
      description = `links of ${x} +${ms}ms`;
      break;
    }
    case 'random-links': {
      const parts: string[] = [];
      for (const l of c.net.allLinks()) {
        if (rng.chance(0.5)) {
          const ms = rng.int(10, 800);
          c.net.slow(l.from, l.to, ms);
          parts.push(`${l.from}->${l.to}+${ms}`);
        }
      }
      description = `slow ${parts.join(' ') || '(none)'}`;
      break;
    }
    default:
      throw new Error(`unknown slow kind ${kind}`);
  }
  return { description, heal: async () => c.net.healAll({ resetFrozen: false }) };
}

/**
 * Wipes one node, but only when every node is up, a voter, and caught up: losing a volume while
 * another replica is down or behind may legitimately lose acknowledged writes (more than a
 * minority lost), which is not what this nemesis tests.
 */
async function wipe(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng, log } = ctx;
  if (!(await healthyAndCaughtUp(c, 15_000))) {
    log('wipe skipped: the cluster is not fully healthy and caught up');
    return null;
  }
  const target = rng.pick(c.ids());
  await c.kill(target);
  c.wipe(target);
  const now = rng.chance(0.5);
  if (now) restart(c, [target]);
  return {
    description: `wipe ${target} (${now ? 'restarted at once' : 'restarted on heal'})`,
    heal: async () => restart(c, [target]),
  };
}

/**
 * An operator's mistakes on a stopped node: its log directory, its database, its snapshots or
 * its whole data directory deleted, restarted at once or later. One episode in three does it to
 * node 1 while every other node is down, and starts node 1 alone first: it must wait for the
 * others rather than found a cluster of its own (the others come back on heal). Like `wipe`, only
 * on a fully healthy, caught-up cluster: one lost replica is within the fault model.
 */
async function operator(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng, log } = ctx;
  if (!(await healthyAndCaughtUp(c, 15_000))) {
    log('operator skipped: the cluster is not fully healthy and caught up');
    return null;
  }
  const what = rng.pick(['logs', 'db', 'snapshots', 'all'] as const);
  if (c.ids().includes(1) && rng.chance(1 / 3)) {
    const others = c.ids().filter((id) => id !== 1);
    for (const id of others) await c.kill(id);
    await c.kill(1);
    c.damage(1, what);
    restart(c, [1]);
    return {
      description: `node 1 loses ${what} while the others are down; started alone`,
      heal: async () => restart(c, others),
    };
  }
  const target = rng.pick(c.ids());
  await c.kill(target);
  c.damage(target, what);
  const now = rng.chance(0.5);
  if (now) restart(c, [target]);
  return {
    description: `node ${target} loses ${what} (${now ? 'restarted at once' : 'restarted on heal'})`,
    heal: async () => restart(c, [target]),
  };
}

/** Every node up and a voter, all applied up to the leader's commit index (bounded wait). */
export async function healthyAndCaughtUp(c: FaultCluster, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  const n = c.ids().length;
  while (performance.now() < deadline) {
    if (c.ids().every((id) => c.node(id).state === 'up')) {
      const hs = await Promise.all(c.ids().map((id) => c.health(id)));
      const leader = hs.find((h) => h?.role === 'leader') ?? null;
      if (
        leader !== null &&
        hs.every(
          (h) =>
            h !== null &&
            h.voters.length === n &&
            h.learners.length === 0 &&
            h.appliedIndex >= leader.commitIndex,
        )
      ) {
        return true;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function mixed(ctx: NemesisContext): Promise<Fault | null> {
  const { rng } = ctx;
  if (rng.chance(0.1)) return wipe(ctx);
  const families: NemesisName[] = ['kill', 'kill-leader', 'pause', 'partition', 'slow'];
  if (ctx.cluster.clocks) families.push('clock');
  const first = rng.pick(families);
  const faults: Fault[] = [];
  const f1 = await inject(first, ctx);
  if (f1 !== null) faults.push(f1);
  if (rng.chance(0.5)) {
    const second = rng.pick(families.filter((f) => f !== first));
    const f2 = await inject(second, ctx);
    if (f2 !== null) faults.push(f2);
  }
  if (faults.length === 0) return null;
  return {
    description: faults.map((f) => f.description).join(' + '),
    heal: async () => {
      for (const f of [...faults].reverse()) await f.heal();
    },
  };
}

const CLOCK_STEPS_MS = [3_600_000, 60_000, 5_000] as const;

async function clockStep(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng } = ctx;
  if (!c.clocks) throw new Error('the clock nemesis needs a cluster made with clocks (libfaketime)');
  const ids = c.ids();
  const k = rng.int(1, minority(ids.length) + 1);
  // The leader stamps: a wrong clock there is the one that would end TTLs and leases.
  const leader = rng.chance(0.7) ? await c.leader() : null;
  const rest = shuffled(
    rng,
    ids.filter((id) => id !== leader),
  );
  const targets = (leader === null ? rest : [leader, ...rest]).slice(0, k);
  const steps = targets.map((id) => {
    // Mostly ahead: a clock behind cannot move log time back (the state machines never do).
    const ms = (rng.chance(0.7) ? 1 : -1) * rng.pick(CLOCK_STEPS_MS);
    c.setClockOffset(id, ms);
    return `${id}${ms > 0 ? '+' : ''}${ms / 1000}s`;
  });
  const also = rng.pick(['alone', 'cut-off', 'restarted'] as const);
  if (also === 'cut-off') {
    c.net.partition(
      [targets, ids.filter((id) => !targets.includes(id))],
      rng.chance(0.5) ? 'refuse' : 'blackhole',
    );
  } else if (also === 'restarted') {
    for (const id of targets) await c.kill(id);
    restart(c, targets);
  }
  return {
    description: `clock ${steps.join(' ')}${leader !== null && targets.includes(leader) ? ' (leader)' : ''}${also === 'alone' ? '' : `, ${also}`}`,
    heal: async () => {
      if (also === 'cut-off') c.net.healAll({ resetFrozen: false });
      for (const id of targets) c.setClockOffset(id, 0);
    },
  };
}

async function diskFull(ctx: NemesisContext): Promise<Fault | null> {
  const { cluster: c, rng } = ctx;
  if (!c.disks) throw new Error('the disk-full nemesis needs a cluster made with disks (the ENOSPC shim)');
  const alive = running(c);
  if (alive.length === 0) return null;
  const k = rng.int(1, minority(c.ids().length) + 1);
  const leader = rng.chance(0.5) ? await c.leader() : null;
  const rest = shuffled(
    rng,
    alive.filter((id) => id !== leader),
  );
  const targets = (leader === null ? rest : [leader, ...rest]).slice(0, k);
  for (const id of targets) c.setDiskFull(id, true);
  return {
    description: `disk full on ${targets.join(',')}${leader !== null && targets.includes(leader) ? ' (the leader)' : ''}`,
    heal: async () => {
      for (const id of targets) c.setDiskFull(id, false);
      // A node that has not written since keeps running; one that stopped for its disk restarts.
      restart(c, targets);
    },
  };
}
