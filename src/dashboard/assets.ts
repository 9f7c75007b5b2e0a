/**
 * The dashboard page's static files, held in memory (about 40 KiB) with their gzip, ETag, content
 * type and cache policy. From the package: the files `npm run build` wrote beside this module
 * (dist/dashboard/ui). From the TypeScript sources (tests, `npm start`): built in memory by
 * esbuild on first use (scripts/build-dashboard.mjs), once per process.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { HiqliteError } from '../lib/errors.js';

export interface Asset {
  readonly bytes: Uint8Array;
  readonly gzip: Uint8Array | null;
  readonly contentType: string;
  readonly etag: string;
  readonly cacheControl: string;
}

/** By file name: `index.html`, `favicon.svg`, `app-<hash>.js`, `app-<hash>.css`. */
export type AssetMap = ReadonlyMap<string, Asset>;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

let loading: Promise<AssetMap> | null = null;

/** The page's files; rejects with HQL_NOT_FOUND when neither built files nor sources exist. */
export function loadAssets(): Promise<AssetMap> {
  if (loading === null) {
    loading = load();
    loading.catch(() => {
      loading = null; // a failed build may succeed later (a missing file put back)
    });
  }
  return loading;
}

async function load(): Promise<AssetMap> {
  const built = fileURLToPath(new URL('./ui/', import.meta.url));
  if (existsSync(`${built}index.html`)) {
    return toMap(
      readdirSync(built).map((name) => ({ name, bytes: new Uint8Array(readFileSync(`${built}${name}`)) })),
    );
  }
  const script = new URL('../../scripts/build-dashboard.mjs', import.meta.url);
  if (!existsSync(fileURLToPath(script)))
    throw new HiqliteError(
      'HQL_NOT_FOUND',
      'the dashboard page is not built: run `npm run build` (dist/dashboard/ui is missing)',
      { retryable: false },
    );
  const m = (await import(script.href)) as {
    buildDashboardAssets(): Promise<{ name: string; bytes: Uint8Array }[]>;
  };
  return toMap(await m.buildDashboardAssets());
}

function toMap(files: readonly { name: string; bytes: Uint8Array }[]): AssetMap {
  const out = new Map<string, Asset>();
  for (const { name, bytes } of files) {
    const ext = name.slice(name.lastIndexOf('.') + 1);
    const contentType = CONTENT_TYPES[ext];
    if (contentType === undefined) continue;
    const gz = ext === 'svg' || bytes.byteLength < 512 ? null : new Uint8Array(gzipSync(bytes, { level: 9 }));
    out.set(name, {
      bytes,
      gzip: gz,
      contentType,
      etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`,
      // Hashed names never change content: cached for a year. The page itself is revalidated,
      // so a new version of the node serves its new script at once.
      cacheControl: /^app-[A-Za-z0-9]+\.(js|css)$/.test(name)
        ? 'public, max-age=31536000, immutable'
        : name === 'index.html'
          ? 'no-cache'
          : 'public, max-age=86400',
    });
  }
  return out;
}
