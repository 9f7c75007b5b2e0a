// The dashboard's page: src/dashboard/ui (preact, TSX) bundled by esbuild into one script and one
// stylesheet with content hashes in their names, plus index.html and the favicon. `npm run build`
// writes them to dist/dashboard/ui (shipped in the package); a node running from the TypeScript
// sources builds them in memory on first use (src/dashboard/assets.ts), so tests and `npm start`
// need no build step.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const uiDir = join(root, 'src', 'dashboard', 'ui');

/** The files of the page: [{ name, bytes }]. */
export async function buildDashboardAssets() {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(uiDir, 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    entryNames: 'app-[hash]',
    outdir: join(root, '.tmp', 'dashboard-out'),
    write: false,
    legalComments: 'none',
    sourcemap: false,
    logLevel: 'silent',
  });
  const files = result.outputFiles.map((f) => ({ name: basename(f.path), bytes: f.contents }));
  const js = files.find((f) => f.name.endsWith('.js'));
  const css = files.find((f) => f.name.endsWith('.css'));
  if (js === undefined || css === undefined)
    throw new Error('dashboard build: no script or stylesheet came out');
  const html = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    '<title>hiqlite dashboard</title>',
    '<link rel="icon" href="/dashboard/favicon.svg" type="image/svg+xml">',
    `<link rel="stylesheet" href="/dashboard/assets/${css.name}">`,
    `<script type="module" src="/dashboard/assets/${js.name}"></script>`,
    '</head>',
    '<body><div id="app"></div></body>',
    '</html>',
    '',
  ].join('\n');
  return [
    ...files,
    { name: 'index.html', bytes: new TextEncoder().encode(html) },
    { name: 'favicon.svg', bytes: new Uint8Array(readFileSync(join(uiDir, 'favicon.svg'))) },
  ];
}

/** Writes the page into `outDir`; returns a one-line summary of its size. */
export async function writeDashboardAssets(outDir) {
  const files = await buildDashboardAssets();
  await mkdir(outDir, { recursive: true });
  for (const f of files) await writeFile(join(outDir, f.name), f.bytes);
  const code = files.filter((f) => /\.(js|css)$/.test(f.name));
  const min = code.reduce((n, f) => n + f.bytes.byteLength, 0);
  const gz = code.reduce((n, f) => n + gzipSync(f.bytes, { level: 9 }).byteLength, 0);
  return `dashboard: ${code.map((f) => f.name).join(' + ')}: ${(min / 1024).toFixed(1)} KiB minified, ${(gz / 1024).toFixed(1)} KiB gzip`;
}
