/** A Raft append of term 1 carrying one command entry: what transport tests and benchmarks send. */
import type { LogIndex, Message, NodeId, Term } from '../../src/raft/types.js';

/** An append from `from` to `to` of the entry at `index` (term 1, commit 0, progress epoch 1). */
export function appendOf(from: NodeId, to: NodeId, index: number, data: Uint8Array): Message {
  return {
    type: 'append',
    from,
    to,
    term: 1 as Term,
    prevIndex: (index - 1) as LogIndex,
    prevTerm: 1 as Term,
    entries: [{ kind: 'command', index: index as LogIndex, term: 1 as Term, data }],
    commit: 0 as LogIndex,
    epoch: 1,
  };
}
