#!/usr/bin/env node
/**
 * Builds hiqlite's SQLite extension (native/interrupt: query deadlines, and the bound on a
 * write's values) at install time. Never fails the install: a cache-only node works without it,
 * and a node with SQLite refuses to start with the fix in its message (docs/ARCHITECTURE.md,
 * "Reads and writes that never end").
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'native', 'build');
const source = join(root, 'native', 'interrupt', 'hq_interrupt.c');

function main() {
  if (process.platform === 'win32') {
    return 'not built on Windows';
  }
  let include;
  try {
    const require = createRequire(import.meta.url);
    include = join(dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3');
  } catch {
    return 'better-sqlite3 not found';
  }
  mkdirSync(out, { recursive: true });
  const darwin = process.platform === 'darwin';
  const file = join(out, darwin ? 'hq_interrupt.dylib' : 'hq_interrupt.so');
  const cc = process.env.CC || 'cc';
  const args = ['-O2', '-fPIC', darwin ? '-dynamiclib' : '-shared', '-I', include, '-o', file, source];
  if (!darwin) args.push('-lpthread', '-ldl');
  try {
    execFileSync(cc, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return `${cc} failed: ${
      String(e.stderr ?? e.message)
        .trim()
        .split('\n')[0]
    }`;
  }
  return null;
}

const failure = main();
if (failure !== null) {
  console.warn(
    `hiqlite: its SQLite extension was not built (${failure}): a node with SQLite will not start without it (a cache-only node will). Install a C compiler and run \`npm rebuild hiqlite\`.`,
  );
}
