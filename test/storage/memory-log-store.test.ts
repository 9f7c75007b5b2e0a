import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LogIndex } from '../../src/raft/types.js';
import { emptyMemoryLogState, MemoryLogStore } from '../../src/storage/memory-log-store.js';
import { commands, logStoreConformance } from './log-store-conformance.js';

logStoreConformance('MemoryLogStore', async (limits) => {
  // The state object plays the disk: a new store on it is a restart.
  const state = emptyMemoryLogState();
  return {
    open: async () => new MemoryLogStore({ state, entryBytesMax: limits.entryBytesMax }),
    cleanup: async () => {},
  };
});

test('MemoryLogStore: a store reopened on the same state sees what the first one appended', async () => {
  const first = new MemoryLogStore();
  await first.append(commands(1, 4, 1));
  await first.close();
  const second = new MemoryLogStore({ state: first.state });
  assert.deepEqual(second.entries(1 as LogIndex, 4 as LogIndex), commands(1, 4, 1));
});
