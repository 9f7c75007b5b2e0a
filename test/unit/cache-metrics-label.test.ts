/**
 * `/metrics` labels each cache by its name, bounded: a long name (up to cache_key_bytes_max,
 * 4 KiB) is cut with a hash of the whole, so 1,024 such caches do not make a scrape of megabytes
 * and two long names with the same beginning stay two series.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CACHE_LABEL_CHARS_MAX, cacheLabel } from '../../src/node/cache-metrics.js';

test('short names are their own label; long ones are cut to the bound and stay distinct', () => {
  assert.equal(cacheLabel('sessions'), 'sessions');
  const exact = 'x'.repeat(CACHE_LABEL_CHARS_MAX);
  assert.equal(cacheLabel(exact), exact);
  const labels = new Set<string>();
  for (let i = 0; i < 1024; i++) {
    const label = cacheLabel(`${'n'.repeat(4000)}${i}`);
    assert.ok(label.length <= CACHE_LABEL_CHARS_MAX, `${label.length} characters`);
    assert.match(label, /…#[0-9a-f]{12}$/);
    labels.add(label);
  }
  assert.equal(labels.size, 1024);
  assert.equal(cacheLabel(`${'n'.repeat(4000)}7`), cacheLabel(`${'n'.repeat(4000)}7`), 'stable');
});
