/**
 * Raft groups sharing one transport (DESIGN.md: one `sql` and one `cache` group per process).
 * On the wire a group is one byte; the mapping is part of the protocol and never reordered.
 */
import { assertNever } from '../lib/assert.js';

export type RaftGroupId = 'sql' | 'cache';

export const RAFT_GROUP_IDS: readonly RaftGroupId[] = ['sql', 'cache'];

export function groupIdByte(g: RaftGroupId): number {
  switch (g) {
    case 'sql':
      return 1;
    case 'cache':
      return 2;
    default:
      return assertNever(g, 'raft group');
  }
}

/** The group of a wire byte, or null for a byte no group uses. */
export function groupIdFromByte(b: number): RaftGroupId | null {
  if (b === 1) return 'sql';
  if (b === 2) return 'cache';
  return null;
}
