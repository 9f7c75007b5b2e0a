/**
 * The CPU cost of applying cache commands alone (no Raft, no threads, no I/O):
 *
 *   node --expose-gc --import tsx bench/cache-apply.ts [--commands N] [--keys K] [--rounds R] [--only name,name]
 *   node --expose-gc --import tsx --cpu-prof --cpu-prof-dir=prof bench/cache-apply.ts --only put-obj-b64-follower
 *
 * Each scenario builds the log entries a cluster would carry for `--commands` puts over `--keys`
 * keys, each under a session as the node proposes them (cache-group.ts), and applies them to a
 * fresh CacheStateMachine. Values: a msgpack object of about 100 bytes (`obj`) or a 100-byte
 * Uint8Array (`bin`), encoded as the client does (encodeCacheValue). Entries hold one command
 * (`single`) or a batch of 64 (`b64`). Paths: `follower` decodes every entry's bytes (followers
 * and the application thread's mirror), with results unwanted; `leader` applies the envelopes
 * validated at proposal (encodeForProposal), results wanted. Reported: µs per command, the best of
 * `--rounds` rounds after a warm-up round (the machine is shared: the best is the least disturbed). Numbers, never pass/fail.
 */
import { parseArgs } from 'node:util';
import { encodeCacheValue } from '../src/client/cache-client.js';
import type { Entry, LogIndex, Term } from '../src/raft/types.js';
import type { CacheCommandEnvelope } from '../src/sm/cache/command.js';
import { CacheStateMachine } from '../src/sm/cache/state-machine.js';

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '64000' },
    keys: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '8' },
    only: { type: 'string' },
  },
});
const COMMANDS = Number(values.commands);
const KEYS = Number(values.keys);
const ROUNDS = Number(values.rounds);
const ONLY = values.only?.split(',');

type Value = 'obj' | 'bin';
type Path = 'follower' | 'leader';

function valueBytes(kind: Value, i: number): Uint8Array {
  if (kind === 'bin') {
    const b = new Uint8Array(100);
    b.fill(i & 0xff);
    return b;
  }
  return encodeCacheValue({
    id: i,
    user: `user-${i}`,
    email: `user-${i}@example.com`,
    roles: ['reader', 'writer'],
    active: true,
    createdAt: 1_700_000_000_000 + i,
  });
}

function envelope(kind: Value, i: number): CacheCommandEnvelope {
  return {
    nowMs: 1_700_000_000_000 + i,
    session: { clientId: `c1-0123456789abcdef-${i % 64}`, seq: 1 + Math.floor(i / 64) },
    command: {
      type: 'put',
      cache: 'bench',
      key: `key-${i % KEYS}`,
      value: valueBytes(kind, i),
      ttlMs: 60_000,
    },
  };
}

/** The entries of one round, proposed through `sm` (the leader keeps their validated form). */
function entries(sm: CacheStateMachine, kind: Value, batch: number, startIndex: number): Entry[] {
  const out: Entry[] = [];
  let index = startIndex;
  for (let i = 0; i < COMMANDS; i += batch) {
    const items: Uint8Array[] = [];
    for (let j = i; j < Math.min(COMMANDS, i + batch); j++)
      items.push(sm.encodeForProposal(envelope(kind, j)));
    const data = batch === 1 ? (items[0] as Uint8Array) : sm.encodeBatchForProposal(items);
    out.push({ kind: 'command', index: index++ as LogIndex, term: 1 as Term, data });
  }
  return out;
}

function run(kind: Value, batch: number, path: Path): number {
  const sm = new CacheStateMachine();
  // The follower's entries come from another state machine: nothing known, every entry decoded.
  const proposer = path === 'leader' ? sm : new CacheStateMachine();
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS + 1; round++) {
    const es = entries(proposer, kind, batch, sm.appliedIndex() + 1);
    const wanted = es.map(() => path === 'leader');
    // The garbage of building the entries is not the apply's (run with --expose-gc).
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = performance.now();
    // 64 entries per call at most, as the runtime hands them (one apply per ready batch).
    for (let i = 0; i < es.length; i += 64) sm.applySync(es.slice(i, i + 64), wanted.slice(i, i + 64));
    const us = ((performance.now() - t0) * 1000) / COMMANDS;
    if (round > 0) best = Math.min(best, us);
  }
  return best;
}

const rows: Array<{ name: string; usPerCommand: number }> = [];
for (const kind of ['obj', 'bin'] as const) {
  for (const batch of [64, 1]) {
    for (const path of ['follower', 'leader'] as const) {
      const name = `put-${kind}-${batch === 1 ? 'single' : `b${batch}`}-${path}`;
      if (ONLY !== undefined && !ONLY.includes(name)) continue;
      rows.push({ name, usPerCommand: run(kind, batch, path) });
    }
  }
}
for (const r of rows) console.log(`${r.name.padEnd(26)} ${r.usPerCommand.toFixed(2).padStart(7)} µs/command`);
