/**
 * The controlled network between the nodes of a fault-suite cluster: for every ordered pair of
 * nodes (m → n) one proxy to n's Raft port and one to n's API port. Node m's configuration names
 * those proxies as n's addresses, so every byte m sends to n (Raft messages, forwarded writes,
 * joins) crosses them, and the answers n gives on those connections come back through them too.
 * Cutting m → n therefore silences m towards n; n → m is a different link, controlled separately.
 * Clients reach the nodes' real API ports, never through a proxy.
 */
import { type LinkMode, LinkProxy } from './proxy.js';

export interface NodePorts {
  readonly id: number;
  readonly raftPort: number;
  readonly apiPort: number;
}

export interface Link {
  readonly from: number;
  readonly to: number;
  readonly raft: LinkProxy;
  readonly api: LinkProxy;
}

/** A partition as the groups of nodes that can still talk to each other. */
export type Groups = ReadonlyArray<readonly number[]>;

export class ProxyNet {
  private readonly links = new Map<string, Link>();
  /** Nodes with a link cut or slowed since this was last cleared (by the cluster, per phase). */
  readonly touched = new Set<number>();

  private constructor(readonly ids: readonly number[]) {}

  /** Starts a proxy pair for every ordered pair of `nodes`. */
  static async create(nodes: readonly NodePorts[]): Promise<ProxyNet> {
    const net = new ProxyNet(nodes.map((n) => n.id));
    try {
      for (const from of nodes) {
        for (const to of nodes) {
          if (from.id === to.id) continue;
          const raft = new LinkProxy(`${from.id}->${to.id} raft`, { host: '127.0.0.1', port: to.raftPort });
          const api = new LinkProxy(`${from.id}->${to.id} api`, { host: '127.0.0.1', port: to.apiPort });
          await raft.listen();
          await api.listen();
          net.links.set(key(from.id, to.id), { from: from.id, to: to.id, raft, api });
        }
      }
    } catch (e) {
      await net.close();
      throw e;
    }
    return net;
  }

  link(from: number, to: number): Link {
    const l = this.links.get(key(from, to));
    if (l === undefined) throw new Error(`no link ${from} -> ${to}`);
    return l;
  }

  allLinks(): Link[] {
    return [...this.links.values()];
  }

  /** Cuts one ordered link (both of its proxies). */
  cut(from: number, to: number, mode: Exclude<LinkMode, 'pass'>): void {
    const l = this.link(from, to);
    this.touched.add(from).add(to);
    l.raft.setMode(mode);
    l.api.setMode(mode);
  }

  /** Cuts both directions between every pair of nodes in different groups. */
  partition(groups: Groups, mode: Exclude<LinkMode, 'pass'>): void {
    const groupOf = new Map<number, number>();
    groups.forEach((g, i) => {
      for (const id of g) groupOf.set(id, i);
    });
    for (const l of this.links.values()) {
      const a = groupOf.get(l.from);
      const b = groupOf.get(l.to);
      if (a !== undefined && b !== undefined && a !== b) this.cut(l.from, l.to, mode);
    }
  }

  slow(from: number, to: number, delayMs: number): void {
    const l = this.link(from, to);
    if (delayMs > 0) this.touched.add(from).add(to);
    l.raft.setDelay(delayMs);
    l.api.setDelay(delayMs);
  }

  /** Passes everything again, with no added latency. */
  healAll(options: { resetFrozen: boolean }): void {
    for (const l of this.links.values()) {
      for (const p of [l.raft, l.api]) {
        p.setDelay(0);
        p.setMode('pass', options);
      }
    }
  }

  /** Links not passing or slowed, for reports: "1->2 blackhole", "2->3 +200ms". */
  describe(): string[] {
    const out: string[] = [];
    for (const l of this.links.values()) {
      const mode = l.raft.currentMode();
      const delay = l.raft.currentDelayMs();
      if (mode !== 'pass') out.push(`${l.from}->${l.to} ${mode}`);
      else if (delay > 0) out.push(`${l.from}->${l.to} +${delay}ms`);
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].flatMap((l) => [l.raft.close(), l.api.close()]));
  }
}

function key(from: number, to: number): string {
  return `${from}->${to}`;
}
