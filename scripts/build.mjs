#!/usr/bin/env node
// `npm run build`, also run by `prepare` (npm ci / npm install in this folder, npm pack, npm
// publish, installs from git): compiles src/ to dist/, which package.json's `exports` and `bin`
// point at. dist/ is removed first so that a deleted source file never ships as a stale .js.
import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDashboardAssets } from './build-dashboard.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(dist, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`build: tsc failed (exit ${r.status ?? r.signal}); dist/ is incomplete`);
  process.exit(1);
}
// The `hiqlite` binary: npm makes it executable when it installs the package, but `npx hiqlite`
// and ./dist/server/cli.js in this folder need the bit too.
chmodSync(join(dist, 'server', 'cli.js'), 0o755);
// The dashboard's page (preact, bundled by esbuild), served by src/dashboard/assets.ts.
// On stderr: `npm pack --json` runs this build (prepare) and its stdout must stay JSON.
console.error(await writeDashboardAssets(join(dist, 'dashboard', 'ui')));
