/**
 * The run's fingerprint and its recent past. Every processed event and every notable fact is
 * folded into a 32-bit FNV-1a hash: two runs of one seed must end with the same hash, which is
 * how the determinism test catches hidden randomness. The last `linesMax` records are kept for a
 * failure report; records are formatted only when printed (a run makes hundreds of thousands).
 */
import { assertNever } from '../../src/lib/assert.js';
import type { Message } from '../../src/raft/types.js';

interface TraceRecord {
  timeUs: number;
  text: string | null;
  msg: Message | null;
}

export class Trace {
  private hash = 0x811c9dc5;
  private readonly ring: TraceRecord[] = [];
  private ringNext = 0;

  constructor(private readonly linesMax: number) {}

  /** Fold numbers into the hash (cheap: called for every event). */
  mix(a: number, b = 0, c = 0): void {
    this.mixOne(a);
    this.mixOne(b);
    this.mixOne(c);
  }

  mixString(s: string): void {
    let h = this.hash;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    this.hash = h;
  }

  /** A notable fact (crash, leader, partition, …): hashed and kept for the report. */
  note(timeUs: number, text: string): void {
    this.mixOne(timeUs);
    this.mixString(text);
    this.push(timeUs, text, null);
  }

  /** A delivered message: hashed by its shape, formatted only if the trace is printed. */
  message(timeUs: number, msg: Message): void {
    this.mix(timeUs, msg.from * 64 + msg.to, msg.term);
    this.mixString(msg.type);
    this.push(timeUs, null, msg);
  }

  /** The recorded lines, oldest first. */
  recent(): string[] {
    const ordered =
      this.ring.length < this.linesMax
        ? this.ring
        : [...this.ring.slice(this.ringNext), ...this.ring.slice(0, this.ringNext)];
    return ordered.map((r) => `${formatTimeUs(r.timeUs)} ${r.text ?? formatMessage(r.msg as Message)}`);
  }

  get digest(): string {
    return this.hash.toString(16).padStart(8, '0');
  }

  private push(timeUs: number, text: string | null, msg: Message | null): void {
    if (this.linesMax === 0) return;
    if (this.ring.length < this.linesMax) {
      this.ring.push({ timeUs, text, msg });
    } else {
      const r = this.ring[this.ringNext] as TraceRecord;
      r.timeUs = timeUs;
      r.text = text;
      r.msg = msg;
    }
    this.ringNext = (this.ringNext + 1) % this.linesMax;
  }

  private mixOne(x: number): void {
    // Numbers in the sim are integers below 2^53; fold both halves so large times still mix.
    const lo = x >>> 0;
    const hi = Math.floor(x / 4294967296) >>> 0;
    let h = this.hash;
    h = Math.imul(h ^ lo, 0x01000193) >>> 0;
    h = Math.imul(h ^ hi, 0x01000193) >>> 0;
    this.hash = h;
  }
}

/** `12.345ms` style virtual time for traces. */
export function formatTimeUs(timeUs: number): string {
  return `${(timeUs / 1000).toFixed(3)}ms`;
}

export function formatMessage(m: Message): string {
  const head = `  ${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'append': {
      const first = m.entries[0];
      const span = first === undefined ? 'none' : `${first.index}..${first.index + m.entries.length - 1}`;
      return `${head} prev=${m.prevIndex}/${m.prevTerm} entries=${span} commit=${m.commit}`;
    }
    case 'append-response':
      return `${head} ${m.reject ? `reject hint=${m.rejectHint}/${m.rejectHintTerm}` : `match=${m.matchIndex}`}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}/${m.commitTerm} ctx=${m.readContext}`;
    case 'heartbeat-response':
      return `${head} ctx=${m.readContext} match=${m.matchHint}`;
    case 'vote':
    case 'pre-vote':
      return `${head} last=${m.lastIndex}/${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'vote-response':
    case 'pre-vote-response':
      return `${head} ${m.granted ? 'granted' : 'rejected'}`;
    case 'snapshot':
      return `${head} snap=${m.snapshot.index}/${m.snapshot.term}`;
    case 'timeout-now':
      return head;
    case 'read-index':
      return `${head} req=${m.requestId}`;
    case 'read-index-response':
      return `${head} req=${m.requestId} index=${m.index} ok=${m.ok}`;
    default:
      return assertNever(m, 'message');
  }
}
