/**
 * The durability checker both simulators share (node.ts for the SQL group, cache/node.ts for
 * the cache group): every message a node sends is checked against what its simulated disk
 * holds durably at that instant.
 */
import type { LogIndex, Message, NodeId, Term } from '../../src/raft/types.js';
import type { MemoryLogState } from '../../src/storage/memory-log-store.js';
import { fail } from './failure.js';

/**
 * Acknowledgements never precede durability (Raft Figure 2: persist before responding): a
 * successful append response vouches for the log up to its match index, a granted vote for
 * the vote itself, a vote request or a leader's message of term T for the candidate's own vote
 * in T (a node that forgot it could vote again in T: two leaders, or one node leading T twice
 * with different entries), and the disk knows what is durable.
 */
export function checkSentDurable(
  id: NodeId,
  d: Readonly<MemoryLogState>,
  liveTermAt: (index: LogIndex) => Term | undefined,
  m: Message,
): void {
  if (
    m.type === 'vote' ||
    m.type === 'append' ||
    m.type === 'heartbeat' ||
    m.type === 'snapshot' ||
    m.type === 'timeout-now' ||
    (m.type === 'read-index-response' && m.ok)
  ) {
    const hs = d.hardState;
    if (hs === null || hs.term < m.term || (hs.term === m.term && hs.vote !== id)) {
      fail(
        'durability',
        `node ${id} sent ${m.type} to n${m.to} as candidate or leader of term ${m.term} before its own vote in that term was durable (disk: term ${hs?.term ?? 0}, vote ${hs?.vote ?? null})`,
      );
    }
  }
  if (m.type === 'append-response' && !m.reject) {
    const durableLast = d.purgedIndex + d.entries.length;
    if (m.matchIndex > durableLast) {
      fail(
        'durability',
        `node ${id} acknowledged its log up to ${m.matchIndex} to n${m.to} (term ${m.term}) with only ${durableLast} durable`,
      );
    }
    const durableTerm =
      m.matchIndex > d.purgedIndex ? d.entries[m.matchIndex - d.purgedIndex - 1]?.term : undefined;
    const liveTerm = liveTermAt(m.matchIndex);
    if (durableTerm !== undefined && liveTerm !== undefined && durableTerm !== liveTerm) {
      fail(
        'durability',
        `node ${id} acknowledged entry ${m.matchIndex} of term ${liveTerm} to n${m.to}; its disk holds term ${durableTerm} there`,
      );
    }
  }
  if (m.type === 'vote-response' && m.granted) {
    const hs = d.hardState;
    if (hs === null || hs.term < m.term || (hs.term === m.term && hs.vote !== m.to)) {
      fail(
        'durability',
        `node ${id} granted its vote in term ${m.term} to n${m.to} before it was durable (disk: term ${hs?.term ?? 0}, vote ${hs?.vote ?? null})`,
      );
    }
  }
}
