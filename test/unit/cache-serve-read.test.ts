/**
 * A remote client's cache read (src/node/cache-serve.ts serveCacheRequest): a linearizable read
 * waits for its ReadIndex round within what the request's deadline leaves (less the margin for
 * the answer to travel), so the node's own answer (no leader: HQL_UNAVAILABLE) reaches the client
 * before its deadline; it waited read_timeout_ms (10 s) and the client saw only its own
 * HQL_TIMEOUT (found from outside).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CacheGroup } from '../../src/node/cache-group.js';
import { serveCacheRequest } from '../../src/node/cache-serve.js';

function recordingGroup() {
  const calls: Array<{ consistency: unknown; timeoutMs: unknown }> = [];
  const group = {
    read: (_read: unknown, consistency: unknown, timeoutMs?: unknown) => {
      calls.push({ consistency, timeoutMs });
      return null;
    },
  } as unknown as CacheGroup;
  return { calls, groupOf: () => group };
}

const READ = { type: 'get', cache: 'c', key: 'k' } as const;

test('a linearizable read waits within what the request’s deadline leaves, less the answer’s margin', async () => {
  const { calls, groupOf } = recordingGroup();
  await serveCacheRequest(
    groupOf,
    { id: 1, op: 'cacheRead', read: READ, consistency: 'linearizable', timeoutMs: 1500 },
    new AbortController().signal,
  );
  assert.deepEqual(calls, [{ consistency: 'linearizable', timeoutMs: 1350 }]);
});

test('a request without a deadline reads with the node’s own (read_timeout_ms)', async () => {
  const { calls, groupOf } = recordingGroup();
  await serveCacheRequest(
    groupOf,
    { id: 1, op: 'cacheRead', read: READ, consistency: 'linearizable' },
    new AbortController().signal,
  );
  assert.deepEqual(calls, [{ consistency: 'linearizable', timeoutMs: undefined }]);
});
