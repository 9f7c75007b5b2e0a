#!/usr/bin/env node
// Runs every test file with node:test through tsx. node:test on Node 20 expands no globs and
// skips .ts files in directories, so the file list is built here.
// Usage: node scripts/test.mjs [--only <substring>] [extra node --test flags]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
let only = null;
const passThrough = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = args[++i];
  else passThrough.push(args[i]);
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = walk('test').filter((f) => only === null || f.includes(only));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...passThrough, ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
