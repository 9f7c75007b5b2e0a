/**
 * The simulated network: every message is an event delivered after a random latency, so jitter
 * reorders them; a message may be dropped or duplicated, and links may be cut in one direction
 * or both (partitions). A cut link drops what is sent on it and what is in flight when it arrives.
 */
import { assert } from '../../src/lib/assert.js';
import type { Random } from '../../src/lib/prng.js';
import type { Message } from '../../src/raft/types.js';
import type { EventQueue } from './event-queue.js';
import type { KvSnapshot } from './kv.js';

/** A message on the wire; a snapshot message carries the sender's snapshot data next to its meta. */
export interface Envelope {
  readonly msg: Message;
  readonly snapshot: KvSnapshot | null;
  /** A cache-group snapshot's bytes (test/sim/cache): chunks, as its transport streams them. */
  readonly chunks?: readonly Uint8Array[];
  /** The sender's incarnation: a snapshot outcome is reported only to the process that sent it. */
  readonly senderIncarnation: number;
  /** For a snapshot: tells the sender's transport how the stream ended (delivered or not). */
  readonly report?: ((delivered: boolean) => void) | null;
}

export interface NetworkFaults {
  /** Probability that a message is lost. */
  readonly dropRate: number;
  /** Probability that a message is delivered twice (each copy with its own latency). */
  readonly dupRate: number;
  readonly latencyUsMin: number;
  readonly latencyUsMax: number;
  /** Probability that a message is held back much longer (reordering across many others). */
  readonly longDelayRate: number;
  readonly longDelayUsMax: number;
}

export const CALM_NETWORK: NetworkFaults = {
  dropRate: 0,
  dupRate: 0,
  latencyUsMin: 500,
  latencyUsMax: 2_000,
  longDelayRate: 0,
  longDelayUsMax: 0,
};

export interface NetworkHandlers {
  /** The message reached a node (which may be down: the receiver decides). */
  deliver(env: Envelope): void;
  /** The message was lost: at random ('drop') or on a cut link ('cut', which a transport notices). */
  lost(env: Envelope, why: 'drop' | 'cut'): void;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  /** Requests and answers of the API port (joins, the bootstrap proof): sent and lost. */
  apiSent: number;
  apiLost: number;
}

/** Node ids are small (1..7): a link is encoded as from * LINK_BASE + to. */
const LINK_BASE = 64;

export class Network {
  faults: NetworkFaults;
  private readonly cut = new Set<number>();
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, apiSent: 0, apiLost: 0 };

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Random,
    faults: NetworkFaults,
    private readonly handlers: NetworkHandlers,
  ) {
    this.faults = faults;
  }

  send(env: Envelope): void {
    const { from, to } = env.msg;
    assert(from !== to, `node ${from} sent a message to itself`);
    this.stats.sent++;
    if (this.isCut(from, to)) {
      this.drop(env, 'cut');
      return;
    }
    if (this.rng.chance(this.faults.dropRate)) {
      this.drop(env, 'drop');
      return;
    }
    this.schedule(env);
    if (this.rng.chance(this.faults.dupRate)) {
      this.stats.duplicated++;
      this.schedule(env);
    }
  }

  /**
   * A request or answer between the API ports of two nodes (a TCP stream: never duplicated). It
   * arrives after the same latency as a Raft message, or never: lost on a cut link (at sending
   * or on arrival) or at the drop rate (the connection broke). The sender's timeout then fires.
   */
  sendApi(from: number, to: number, arrive: () => void): void {
    assert(from !== to, `node ${from} sent an API request to itself`);
    this.stats.apiSent++;
    if (this.isCut(from, to) || this.rng.chance(this.faults.dropRate)) {
      this.stats.apiLost++;
      return;
    }
    this.queue.after(this.latencyUs(), 'api', to, () => {
      if (this.isCut(from, to)) {
        this.stats.apiLost++;
        return;
      }
      arrive();
    });
  }

  isCut(from: number, to: number): boolean {
    return this.cut.has(from * LINK_BASE + to);
  }

  /** Cut the link from → to (one way). */
  cutLink(from: number, to: number): void {
    assert(from < LINK_BASE && to < LINK_BASE, 'node id too large for the link table');
    this.cut.add(from * LINK_BASE + to);
  }

  /** Cut both directions between every node of `a` and every node of `b`. */
  partition(a: readonly number[], b: readonly number[]): void {
    for (const x of a) {
      for (const y of b) {
        if (x === y) continue;
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  get cutLinks(): number {
    return this.cut.size;
  }

  private latencyUs(): number {
    const f = this.faults;
    let delayUs = this.rng.int(f.latencyUsMin, f.latencyUsMax + 1);
    if (f.longDelayRate > 0 && this.rng.chance(f.longDelayRate))
      delayUs += this.rng.int(0, f.longDelayUsMax + 1);
    return delayUs;
  }

  private schedule(env: Envelope): void {
    this.queue.after(this.latencyUs(), 'deliver', env.msg.to, () => {
      if (this.isCut(env.msg.from, env.msg.to)) {
        this.drop(env, 'cut');
        return;
      }
      this.stats.delivered++;
      this.handlers.deliver(env);
    });
  }

  private drop(env: Envelope, why: 'drop' | 'cut'): void {
    this.stats.dropped++;
    this.handlers.lost(env, why);
  }
}
