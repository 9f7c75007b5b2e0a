/**
 * The Caches page's data: the cache group's names and sizes, and its keys one page at a time.
 * Pages are cut on the node (DashboardCaches walks the cache's map up to the page and copies
 * nothing else), and every value is cut to a preview: msgpack (what `db.cache()` stores) decoded
 * and shown as JSON up to `VALUE_PREVIEW_CHARS_MAX` characters, bytes as their size and first
 * bytes in hex; a value larger than `VALUE_DECODE_BYTES_MAX` is not decoded at all. One answer
 * is therefore at most `KEYS_PAGE_MAX` × (a key of `cache_key_bytes_max` + a preview).
 */
import { Unpackr } from 'msgpackr';
import { HiqliteError } from '../lib/errors.js';
import type { CacheKeyPage, CacheKeyRow, CacheOverview, ValuePreview } from './api-types.js';
import type { DashboardCaches } from './backend.js';

/** Keys of one page, default and bound. */
export const KEYS_PAGE_DEFAULT = 50;
export const KEYS_PAGE_MAX = 200;
/** Caches and counter groups listed (the group's `cache_caches_max` may allow more). */
export const CACHES_LISTED_MAX = 1000;
/** Characters of a value's JSON shown. */
export const VALUE_PREVIEW_CHARS_MAX = 300;
/** Larger values are shown as bytes only: decoding them would cost more than a preview is worth. */
export const VALUE_DECODE_BYTES_MAX = 64 * 1024;
/** Bytes shown in hex for bytes and undecoded values. */
export const HEX_BYTES_SHOWN = 32;
/** Entries skipped at most before a page (the node walks them). */
export const KEYS_OFFSET_MAX = 100_000_000;

// The client's options (src/client/cache-client.ts): standard msgpack, int64 as bigint.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });

export function cacheOverview(caches: DashboardCaches): CacheOverview {
  const v = caches.overview();
  if (v === null) throw notRunning();
  const byName = (a: { name: string }, b: { name: string }) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const listed = [...v.caches].sort(byName).slice(0, CACHES_LISTED_MAX);
  const counters = [...v.counterGroups].sort(byName).slice(0, Math.max(0, CACHES_LISTED_MAX - listed.length));
  return {
    caches: listed.map((c) => ({ name: c.name, entries: c.entries, bytes: c.bytes })),
    counters: counters.map((c) => ({ name: c.name, keys: c.keys })),
    truncated: listed.length + counters.length < v.caches.length + v.counterGroups.length,
    bytes: v.bytes,
    bytesMax: v.bytesMax,
    locksHeld: v.locksHeld,
    lockWaiters: v.lockWaiters,
    listeners: v.listeners,
    listenerLag: v.listenerLag,
    notificationsHeld: v.notificationsHeld,
    clockMs: v.clockMs,
  };
}

export function cacheKeyPage(
  caches: DashboardCaches,
  q: { kind: 'cache' | 'counter'; name: string; offset: number; limit: number },
): CacheKeyPage {
  const v = caches.overview();
  if (v === null) throw notRunning();
  let rows: CacheKeyRow[];
  let hasMore: boolean;
  if (q.kind === 'counter') {
    const p = caches.counters(q.name, q.offset, q.limit);
    if (p === null) throw notRunning();
    rows = p.entries.map(([key, n]) => ({ key, value: n.toString(), ttlMs: null }));
    hasMore = p.hasMore;
  } else {
    const p = caches.entries(q.name, q.offset, q.limit);
    if (p === null) throw notRunning();
    rows = p.entries.map((e) => ({
      key: e.key,
      value: previewValue(e.value),
      ttlMs: e.expiresAtMs === null ? null : Math.max(0, e.expiresAtMs - v.nowMs),
    }));
    hasMore = p.hasMore;
  }
  return { kind: q.kind, name: q.name, offset: q.offset, rows, hasMore };
}

/** A stored value as the page shows it (never more than a preview of it). */
export function previewValue(bytes: Uint8Array): ValuePreview {
  const hexOf = (b: Uint8Array) => Buffer.from(b.subarray(0, HEX_BYTES_SHOWN)).toString('hex');
  if (bytes.byteLength > VALUE_DECODE_BYTES_MAX)
    return { kind: 'raw', bytes: bytes.byteLength, hex: hexOf(bytes), reason: 'too-large' };
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch {
    return { kind: 'raw', bytes: bytes.byteLength, hex: hexOf(bytes), reason: 'not-msgpack' };
  }
  if (value instanceof Uint8Array)
    return { kind: 'bytes', bytes: bytes.byteLength, size: value.byteLength, hex: hexOf(value) };
  let text: string;
  try {
    text = JSON.stringify(value, jsonSafe) ?? 'null';
  } catch {
    return { kind: 'raw', bytes: bytes.byteLength, hex: hexOf(bytes), reason: 'not-msgpack' };
  }
  const truncated = text.length > VALUE_PREVIEW_CHARS_MAX;
  return {
    kind: 'json',
    bytes: bytes.byteLength,
    text: truncated ? text.slice(0, VALUE_PREVIEW_CHARS_MAX) : text,
    truncated,
  };
}

/** JSON for what msgpack decodes to that JSON lacks: bigints, bytes, maps and sets. */
function jsonSafe(this: unknown, key: string, v: unknown): unknown {
  // `v` has been through toJSON (a Buffer's is a list of numbers): look at the raw value.
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array)
    return { $bytes: raw.byteLength, hex: Buffer.from(raw.subarray(0, HEX_BYTES_SHOWN)).toString('hex') };
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), x]));
  if (v instanceof Set) return [...v];
  if (v === undefined) return null;
  return v;
}

function notRunning(): HiqliteError {
  return new HiqliteError('HQL_UNAVAILABLE', 'the cache group does not run on this node yet', {
    retryable: true,
  });
}
