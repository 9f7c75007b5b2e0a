/** RemoteCacheOps options for unit tests over a fake link: small bounds, a 1 s resume deadline. */
import type { RemoteCacheOptions } from '../../src/client/remote-cache.js';

export const TEST_REMOTE_CACHE_OPTIONS: RemoteCacheOptions = {
  writesMax: 4,
  listenBufferMax: 16,
  listenBufferBytesMax: 1 << 20,
  listenResumeTimeoutMs: 1_000,
};
